#!/usr/bin/env bash
# Set up, build, and run the main job (an SLT run) against the built-in emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
OUT=${OUT:-runs/demo-$(date +%Y%m%d-%H%M%S)}
mkdir -p runs
exec build/control/strobe slt --out "$OUT" --concurrency 1,8,64 --phase-s 20 --ramp-s 5 \
    --emu-args "--profile emu/profiles/sram-like.json"
