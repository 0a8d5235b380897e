#!/usr/bin/env bash
# Set up, build, and run every test (meson test), then the same suite under ASan+UBSan, then
# a short run of every fuzz target (scripts/fuzz.sh).
# Ends with the plain line "N passed, M failed"; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
# test-only: the report test looks at the page in headless Chromium; the format check needs
# clang-format (below)
if ! command -v chromium >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null || true
fi
passed=0; failed=0
# the tree matches .clang-format (one check)
if ! command -v clang-format >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang-format >/dev/null || true
fi
if scripts/format.sh --check; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
run_suite() { # $1 = build dir, $2 = label
    local log="$1/meson-logs/testlog.json"
    meson test -C "$1" --print-errorlogs --num-processes 1 "${@:3}"
    local p f
    p=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(sum(x["result"]=="OK" for x in r))' "$log" 2>/dev/null || echo 0)
    f=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(sum(x["result"]!="OK" and x["result"]!="SKIP" for x in r))' "$log" 2>/dev/null || echo 1)
    echo "$2: $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f))
}
run_suite build "default build"
if [ "${STROBE_SKIP_SANITIZE:-0}" != 1 ]; then
    if [ ! -f build-asan/build.ninja ]; then
        meson setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug >/dev/null
    fi
    if ninja -C build-asan >/dev/null; then
        STROBE_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            run_suite build-asan "ASan+UBSan build"
    else
        echo "the sanitizer build failed"; failed=$((failed + 1))
    fi
fi
# the fuzz targets' smoke run (scripts/fuzz.sh; FUZZ_SECONDS each, 20 by default)
if [ "${STROBE_SKIP_FUZZ:-0}" != 1 ]; then
    scripts/fuzz.sh | tee /tmp/strobe-fuzz.log
    line=$(tail -n 1 /tmp/strobe-fuzz.log)
    p=$(echo "$line" | sed -nE 's/^fuzz: ([0-9]+) passed, ([0-9]+) failed$/\1/p')
    f=$(echo "$line" | sed -nE 's/^fuzz: ([0-9]+) passed, ([0-9]+) failed$/\2/p')
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
