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

# Emulator pacing: 3,000 tokens/s per query (333 us steps) x 64 queries, read by strobe; how
# late the emulator sent its chunks (send - schedule, its own stamps). A figure of the
# emulator on this machine, not a test: a busy machine shows here (tests/e2e/test_emu.py
# checks only that no chunk leaves early and that every token arrives).
pace="$OUT/pacing"
build/control/strobe slt --out "$pace" --concurrency 64 --phase-s "${PHASE_S:-6}" --ramp-s 1 \
    --threads 1 --input-tokens 100 --output-tokens 300 --ignore-eos --tokenizer none \
    --emu-args "--step-us 333 --step-us-per-seq 0 --max-batch 64 --prefill-tps 1e9" >/dev/null 2>&1
echo
python3 - "$pace/results.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))["phases"][0]["emulator_send_minus_schedule_us"]
print("emulator pacing, 3,000 tokens/s x 64 streams: send - schedule p50 %.1f us, p99 %.1f us, "
      "max %.1f us over %d chunks" % (p["p50"], p["p99"], p["max"], p["n"]))
PY

# Tokenizers: throughput on real agent text (all message texts of the mini-swe-agent
# recordings in tests/data/trajectories, repeated to about 32 MB), file load included; then
# what per-chunk counting adds to the analysis of a run (strobe analyze with and without the
# tokenizer).
python3 - tests/data/trajectories "$OUT/text.txt" <<'PY'
import glob, json, sys
parts = []
for f in sorted(glob.glob(sys.argv[1] + "/mini-swe-agent/*/*/*.json")):
    for m in json.load(open(f)).get("messages", []):
        for k in ("content", "reasoning_content"):
            v = m.get(k)
            if isinstance(v, str): parts.append(v)
            elif isinstance(v, list): parts += [p["text"] for p in v if isinstance(p, dict) and isinstance(p.get("text"), str)]
text = "".join(parts)
open(sys.argv[2], "w").write(text * max(1, round(32e6 / max(len(text), 1))))
PY
echo
printf "%-28s %10s %12s %10s\n" tokenizer MB tokens "MB/s"
for tok in tokenizers/o200k_base.tiktoken tokenizers/deepseek_v3/tokenizer.json; do
    python3 - "$tok" "$OUT/text.txt" <<'PY'
import os, subprocess, sys, time
t0 = time.monotonic()
n = subprocess.run(["build/control/strobe", "tokenize", "--count", "--tokenizer", sys.argv[1]],
                   stdin=open(sys.argv[2], "rb"), capture_output=True, check=True).stdout.strip()
dt = time.monotonic() - t0
mb = os.path.getsize(sys.argv[2]) / 1e6
print("%-28s %10.1f %12s %10.1f" % (os.path.basename(os.path.dirname(sys.argv[1])) + "/" + os.path.basename(sys.argv[1])
      if "deepseek" in sys.argv[1] else os.path.basename(sys.argv[1]), mb, n.decode(), mb / dt))
PY
done
last=${CONCURRENCY:-256}; run="$OUT/c${last##* }"
python3 - "$run" <<'PY'
import json, subprocess, sys, time
for tok in ("none", None):
    t0 = time.monotonic()
    subprocess.run(["build/control/strobe", "analyze", sys.argv[1]] + (["--tokenizer", tok] if tok else []),
                   check=True, capture_output=True)
    dt = time.monotonic() - t0
    ph = json.load(open(sys.argv[1] + "/results.json"))["phases"][0]
    print("analyze, tokenizer %-6s %9d chunks in the window  %6.2f s" % (tok or "o200k", ph["tokens_per_chunk"]["chunks"], dt))
PY
