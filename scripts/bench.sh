#!/usr/bin/env bash
# Benchmark (reports, never fails on a number): drives strobe-emu at rising event rates with
# one strobe worker thread and reports SSE events/s that strobe received, the dataplane
# worker's CPU nanoseconds per event (its thread CPU time / events received), and the gap
# between the kernel receive stamp and strobe's own clock read (p50/p99). On a 2-core
# machine the emulator shares the cores, so the highest rate is the emulator's ceiling.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
printf "%12s %14s %14s %16s %16s\n" concurrency "events/s" "CPU ns/event" "kernel->user p50" "kernel->user p99"
printf "%12s %14s %14s %16s %16s\n" "" "" "" "us" "us"
for c in ${CONCURRENCY:-8 32 128 256}; do
    run="$OUT/c$c"
    build/control/strobe slt --out "$run" --concurrency "$c" --phase-s "${PHASE_S:-6}" \
        --ramp-s 1 --threads 1 --input-tokens 50 --output-tokens 2000 --ignore-eos \
        --emu-args "--step-us 250 --step-us-per-seq 0 --max-batch 100000 --prefill-tps 1e9" \
        >/dev/null 2>"$OUT/err$c"
    python3 - "$run/results.json" "$OUT/err$c" "$c" <<'PY'
import json, re, sys
ph = json.load(open(sys.argv[1]))["phases"][0]
ns = float(re.search(r"dataplane CPU (\d+) ns per SSE event", open(sys.argv[2]).read()).group(1))
gap = ph["kernel_stamp_to_userspace_read_us"]
print("%12s %14.0f %14.0f %16.1f %16.1f" % (sys.argv[3], ph["output_tokens_in_window"] / ph["window_s"],
                                            ns, gap["p50"], gap["p99"]))
PY
done
