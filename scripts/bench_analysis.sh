#!/usr/bin/env bash
# Benchmark of the analysis (reports, never fails on a number): records a short real run
# against strobe-emu (64 streams), replicates its records with fresh request ids and shifted
# times into logs of 1 M and 10 M events (build/analysis/strobe-log-replicate; 100 M with
# BENCH_100M=1, its bodies shared when the disk is short: see the tool), and times
# `strobe analyze` on each with and without the tokenizer, over 1 and 2 threads, under the
# bench lock. Prints events/s (wall and per CPU second), peak memory (ru_maxrss), whether
# results.json is the same bytes over 1 and 2 threads, and then the time of each iteration's
# analysis alone in a 13-iteration log (strobe-bench-iterations): a search's analysis is
# linear in its length when that time does not grow with the iteration.
# With REAL_S=N it also records a real run of N seconds against the emulator unpaced (64
# streams of 3,000 tokens: about 8 M events in 56 s on the development VM, its lags and gaps
# those of one long run, not of copies) and times its analysis alike.
# Temporary logs go to $BENCH_DIR (default: a folder under /tmp) and are deleted at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
ninja -C build >/dev/null || { echo "bench_analysis: the build failed"; exit 0; }
S=build/control/strobe
REP=build/analysis/strobe-log-replicate
ITER=build/analysis/strobe-bench-iterations
TOK=tokenizers/o200k_base.tiktoken
OUT=$(mktemp -d "${BENCH_DIR:-/tmp}/strobe-bench-analysis.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
LOCK=/tmp/strobe-bench.lock

if ! $S slt --out "$OUT/src" --concurrency 64 --phase-s 4 --ramp-s 1 --threads 1 \
        --input-tokens 200 --output-tokens 300 --ignore-eos \
        --emu-args "--profile emu/profiles/gpu-like.json" >/dev/null 2>"$OUT/src.err"; then
    echo "bench_analysis: the source run failed:"; tail -3 "$OUT/src.err"; exit 0
fi

# Times `strobe analyze` on log $1 with and without the tokenizer, over 1 and 2 threads ($2:
# "--share-bodies" when its bodies are shared, for the note).
time_log() {
    local log=$1 share=$2
    for tok in none "$TOK"; do
        [ "$tok" != none ] && [ ! -f "$tok" ] && continue
        name=$([ "$tok" = none ] && echo none || basename "$tok" .tiktoken)
        for t in 1 2; do
            line=$(flock "$LOCK" $S analyze "$log" --tokenizer "$tok" --threads "$t" | tail -1)
            cp "$log/results.json" "$OUT/results$t.json"
            same="-"
            [ "$t" = 2 ] && { cmp -s "$OUT/results1.json" "$OUT/results2.json" && same=yes || same=NO; }
            python3 - "$line" "$name" "$t" "$same" "$share" <<'PY'
import re, sys
line, name, t, same, share = sys.argv[1:6]
m = re.search(r"analysis: ([\d.]+) s over \d+ threads? \(([\d.]+) s of CPU\), (\d+) events.*?"
              r"([\d.]+) M events/s, ([\d.]+) M events per CPU second, peak memory ([\d.]+) MiB", line)
if not m:
    print("unreadable: " + line)
else:
    wall, cpu, ev, eps, ecpu, peak = m.groups()
    print("%11s %10s %8s %9s %9s %12s %14s %10s %9s%s" % (ev, name, t, wall, cpu, eps, ecpu, peak, same,
          " (bodies shared)" if share else ""))
PY
        done
    done
}

sizes=${SIZES:-"1000000 10000000"}
[ "${BENCH_100M:-0}" = 1 ] && sizes="$sizes 100000000"
printf "%11s %10s %8s %9s %9s %12s %14s %10s %9s\n" events tokenizer threads "wall" "CPU" \
    "events/s" "events/CPU s" "peak" "same json"
printf "%11s %10s %8s %9s %9s %12s %14s %10s %9s\n" "" "" "" s s M M MiB ""
for n in $sizes; do
    log="$OUT/log$n"
    share=""
    # records 64 B and bodies about 270 B per event; keep 4 GB free
    need=$(( n * 340 / 1000000 + 4000 ))
    free=$(df -Pm "$OUT" | awk 'NR == 2 { print $4 }')
    if [ "$free" -lt "$need" ]; then
        share="--share-bodies"
        need=$(( n * 64 / 1000000 + 4000 ))
        if [ "$free" -lt "$need" ]; then
            echo "$n events: skipped, $free MB free on $(dirname "$OUT") and $need MB needed"
            continue
        fi
    fi
    $REP "$OUT/src" "$log" "$n" $share >/dev/null || { echo "$n events: replication failed"; continue; }
    time_log "$log" "$share"
    rm -rf "$log"
done

if [ "${REAL_S:-0}" != 0 ]; then
    if $S slt --out "$OUT/real" --concurrency 64 --phase-s "$REAL_S" --ramp-s 1 --threads 1 \
            --input-tokens 200 --output-tokens 3000 --ignore-eos \
            --emu-args "--step-us 0 --step-us-per-seq 0 --prefill-tps 100000000" \
            >/dev/null 2>"$OUT/real.err"; then
        echo "a real run of $REAL_S s (not replicated):"
        time_log "$OUT/real" ""
    else
        echo "bench_analysis: the real run failed:"; tail -3 "$OUT/real.err"
    fi
    rm -rf "$OUT/real"
fi

echo
echo "agents: each iteration's analysis alone, 13 iterations of about 77,000 events each"
$REP "$OUT/src" "$OUT/iter" 1000000 --phases 13 >/dev/null && flock "$LOCK" $ITER "$OUT/iter"
exit 0
