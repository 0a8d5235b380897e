#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, build-fuzz/) and runs each for
# FUZZ_SECONDS (default 20: the smoke run of CI; for a campaign, e.g. FUZZ_SECONDS=3600),
# seeded from real captures, the recordings in tests/data/trajectories and
# tests/fuzz/regressions/ (inputs that once failed, kept so they are run every time). Corpora grow in fuzz-corpus/ (kept between
# runs); a crash leaves its input in fuzz-corpus/crash-* and fails the run.
# Prints one line per target and ends with "fuzz: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-20}
if ! command -v clang >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "ok installed"; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libclang-rt-14-dev >/dev/null || true
fi
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dwerror=false --buildtype=debugoptimized >/dev/null || { echo "fuzz: 0 passed, 1 failed"; exit 1; }
fi
targets="fuzz_sse fuzz_http fuzz_worker fuzz_tokenizer fuzz_events fuzz_chunk_scan fuzz_prom_text fuzz_replay fuzz_config fuzz_import"
ninja -C build-fuzz $(for t in $targets; do echo tests/fuzz/$t; done) >/dev/null || { echo "fuzz: the fuzz build failed"; echo "fuzz: 0 passed, 1 failed"; exit 1; }

# seeds: real captures and data, only added when missing
C=fuzz-corpus
mkdir -p $C
for t in $targets; do mkdir -p $C/$t; cp -n tests/fuzz/regressions/$t/* $C/$t/ 2>/dev/null; done
cp -n tests/data/*.sse $C/fuzz_sse/ 2>/dev/null
cp -n tests/data/*.sse tests/data/chunks/*.sse $C/fuzz_events/ 2>/dev/null
python3 - "$C" <<'PY'
import glob, os, sys
# whole responses, as the emulator sends them: chunked SSE, and a JSON error; the workers read
# the same, and two in a row exercise a kept-alive connection's reuse
c = sys.argv[1]
def put(target, name, data):
    p = os.path.join(c, target, name)
    if not os.path.exists(p):
        open(p, "wb").write(data)
err = b'{"error":{"message":"overloaded","type":"server_error","code":503}}'
error503 = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n" % len(err) + err
for t in ("fuzz_http", "fuzz_worker"):
    put(t, "error503", error503)
# one event's data per input for the chunk scanner: every line of the captures
for f in glob.glob("tests/data/*.sse") + glob.glob("tests/data/chunks/*.sse"):
    for i, line in enumerate(open(f, "rb").read().split(b"\n")):
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            put("fuzz_chunk_scan", "%s-%d" % (os.path.basename(f), i), line[6:])
# the servers' expositions, as written from their documented metric names
for f in glob.glob("tests/data/prometheus/*.txt"):
    put("fuzz_prom_text", os.path.basename(f), open(f, "rb").read())
for f in glob.glob("tests/data/*.sse"):
    body = open(f, "rb").read()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 300]), body[i:i + 300]) for i in range(0, len(body), 300))
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n"
    name = os.path.basename(f)
    put("fuzz_http", name, resp)
    put("fuzz_worker", name, resp)
    put("fuzz_worker", "pair-" + name, resp + error503)
    # a leading \r: one request after the other, and the liveness check misses the closed
    # connection, so the second is retried on a new one (fuzz_worker.c)
    put("fuzz_worker", "retry-" + name, b"\r" + resp)
PY
cp -n control/workload/prices.json $C/fuzz_config/ 2>/dev/null
python3 - "$C" tests/data/trajectories <<'PY'
import glob, json, os, sys
c, traj = sys.argv[1:3]
def put(target, name, data):
    p = os.path.join(c, target, name)
    if not os.path.exists(p):
        open(p, "wb").write(data)
for i, line in enumerate(open("tests/data/tokenizer/o200k_base.jsonl")):
    if i % 10 == 0:
        put("fuzz_tokenizer", "text%d" % i, json.loads(line)["text"].encode())
put("fuzz_tokenizer", "harmony", b"<|start|>assistant<|channel|>final<|message|>hi<|end|>")
for f in glob.glob(os.path.join(traj, "aa-agentperf-local/*/traces/*.jsonl")):
    put("fuzz_replay", os.path.basename(f), open(f, "rb").read())
minis = sorted(glob.glob(os.path.join(traj, "mini-swe-agent/*/*/*.json")), key=os.path.getsize)[:4]
for i, f in enumerate(minis):
    put("fuzz_import", "mini%d" % i, b"\x00" + open(f, "rb").read())
for i, f in enumerate(sorted(glob.glob(os.path.join(traj, "swe-agent/**/*.traj"), recursive=True),
                             key=os.path.getsize)[:4]):
    put("fuzz_import", "swe%d" % i, b"\x01" + open(f, "rb").read())
PY

passed=0; failed=0
for t in $targets; do
    log=$(mktemp)
    STROBE_FUZZ_TOKENIZER=$PWD/tokenizers/o200k_base.tiktoken \
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        build-fuzz/tests/fuzz/$t -max_total_time="$SECONDS_EACH" -close_fd_mask=3 -rss_limit_mb=4096 \
        -artifact_prefix=$C/crash-$t- $C/$t >"$log" 2>&1
    rc=$?
    stats=$(grep -E "^#[0-9]+.*DONE" "$log" | tail -1 | sed -E 's/^#([0-9]+).*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*exec\/s: ([0-9]+).*/\1 executions, coverage \2 edges, \3 features, corpus \4, \5 exec\/s/')
    if [ $rc -eq 0 ]; then
        echo "$t: ${stats:-no statistics} in ${SECONDS_EACH} s: ok"
        passed=$((passed + 1))
    else
        echo "$t: FAILED (exit $rc); the input is in $C/crash-$t-*:"
        grep -E "ERROR|SUMMARY|runtime error" "$log" | head -5
        failed=$((failed + 1))
    fi
    rm -f "$log"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
