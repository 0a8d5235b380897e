"""Open-loop arrivals (slt --rate, --arrival, --schedule, --max-in-flight): the requests fall
due by the process asked for (Poisson counts, constant gaps, gamma's spread, a schedule's exact
times), dealt over the workers; latency runs from when each was due; the dispatch lag is
reported and bounds validity; the in-flight cap holds requests and counts them; bad flags are
refused in one sentence."""
import json
import math
import os
import struct
import tempfile

import common
from common import check

EMU = "--step-us 2000 --step-us-per-seq 0 --max-batch 512 --prefill-tps 1e8"


def slt(run, *args, emu=EMU, lag="1"):
    """lag: the run's --max-dispatch-lag-s; the checks of the arrival process itself give 3 s,
    as a machine loaded to a load average of 10 delayed dispatches by 1.3-1.5 s at p99 (the
    run then rightly says it is not valid, which is not what those checks are about)."""
    return common.run_strobe("slt", "--out", run, "--threads", "2", "--input-tokens", "100",
                             "--output-tokens", "50", "--ignore-eos", "--emu-args", emu,
                             "--max-dispatch-lag-s", lag, *args, timeout=300)


def scheduled_times(run):
    """(phase, t_sched ns) of every request, from the log's REC_REQUEST_SENT records."""
    data = open(os.path.join(run, "events.bin"), "rb").read()
    _, hlen = struct.unpack_from("<II", data, 8)
    out, at = [], 16 + hlen
    while at + 64 <= len(data):
        if data[at] == 1:
            t_sched, = struct.unpack_from("<q", data, at + 16)
            phase, = struct.unpack_from("<q", data, at + 40)
            out.append((phase, t_sched))
        at += 64
    return out


def gaps_s(times):
    t = sorted(times)
    return [(b - a) / 1e9 for a, b in zip(t, t[1:])]


def poisson(tmp):
    run = os.path.join(tmp, "poisson")
    r = slt(run, "--rate", "40,80", "--phase-s", "3", "--ramp-s", "0.5", lag="3")
    check(r.returncode == 0, "slt --rate 40,80", 0, r.stderr[-400:])
    res = json.load(open(os.path.join(run, "results.json")))
    check("arrivals:" in r.stdout, "the table prints each phase's arrivals", "arrivals:", r.stdout[-500:])
    check(res["run"]["config"]["arrival"]["process"] == "poisson", "the header names the process",
          "poisson", res["run"]["config"].get("arrival"))
    times = scheduled_times(run)
    for ph, rate in zip(res["phases"], (40, 80)):
        a = ph["arrival"]
        due = ph["requests_sent"]
        expected = rate * ph["window_s"]
        # Poisson counts: within 5 standard deviations of rate x window
        check(abs(due - expected) <= 5 * math.sqrt(expected),
              "rate %d: requests due in the window" % rate, "%.0f +- %.0f" % (expected, 5 * math.sqrt(expected)), due)
        check(a["rate_per_s"] == rate and a["requests_held_by_max_in_flight"] == 0 and
              a["requests_due_never_sent"] == 0,
              "rate %d: the phase names its rate, none held" % rate, rate, a)
        check(a["dispatch_lag_s"]["n"] == due and a["dispatch_lag_s"]["min"] >= 0,
              "rate %d: every request's dispatch lag is known and not negative" % rate, due, a["dispatch_lag_s"])
        g = gaps_s(t for p, t in times if p == ph["phase"])
        mean, cv = sum(g) / len(g), 0
        cv = math.sqrt(sum((x - mean) ** 2 for x in g) / len(g)) / mean
        check(abs(mean * rate - 1) < 0.3 and 0.7 < cv < 1.3,
              "rate %d: gaps between due times look exponential (mean 1/R, CV 1)" % rate,
              "mean %.4f, CV 1" % (1 / rate), "mean %.4f, CV %.2f" % (mean, cv))
        # TTFT runs from when the request was due: never below the emulator's first step
        check(ph["ttft_s"]["min"] > 0 and ph["ttft_s"]["n"] > 0, "rate %d: TTFT measured" % rate, "> 0", ph["ttft_s"])
    before = open(os.path.join(run, "results.json"), "rb").read()
    a = common.run_strobe("analyze", run)
    check(a.returncode in (0, 4) and open(os.path.join(run, "results.json"), "rb").read() == before,
          "strobe analyze reproduces an open-loop run", "same bytes", a.stderr[-300:])


def constant_and_gamma(tmp):
    run = os.path.join(tmp, "constant")
    r = slt(run, "--rate", "50", "--arrival", "constant", "--phase-s", "2", "--ramp-s", "0",
            lag="3")
    check(r.returncode == 0, "slt --arrival constant", 0, r.stderr[-300:])
    g = gaps_s(t for _, t in scheduled_times(run))
    check(g and all(abs(x - 0.02) < 2e-6 for x in g),
          "constant: every gap is 1/R over both workers", "0.020000 s",
          "%.6f to %.6f" % (min(g), max(g)) if g else "no gaps")
    run = os.path.join(tmp, "gamma")
    r = slt(run, "--rate", "100", "--arrival", "gamma:2", "--phase-s", "4", "--ramp-s", "0",
            lag="3")
    check(r.returncode == 0, "slt --arrival gamma:2", 0, r.stderr[-300:])
    g = gaps_s(t for _, t in scheduled_times(run))
    mean = sum(g) / len(g)
    cv = math.sqrt(sum((x - mean) ** 2 for x in g) / len(g)) / mean
    check(1.4 < cv < 2.8 and abs(mean * 100 - 1) < 0.35,
          "gamma:2: gaps of mean 1/R and coefficient of variation about 2", "CV 2",
          "mean %.4f, CV %.2f over %d gaps" % (mean, cv, len(g)))


def schedule_and_cap(tmp):
    sched = os.path.join(tmp, "schedule.txt")
    offsets = [0, 0.05, 0.1, 0.1, 0.1, 0.4, 0.75, 1.0]
    with open(sched, "w") as f:
        f.write("# a burst of three at 0.1 s\n")
        for x in reversed(offsets):  # any order: sorted on load
            f.write("%.6f\n" % (1700000000 + x))  # Unix times become offsets
    run = os.path.join(tmp, "schedule")
    r = slt(run, "--schedule", sched)
    check(r.returncode == 0, "slt --schedule", 0, r.stderr[-300:])
    t = sorted(t for _, t in scheduled_times(run))
    got = [round((x - t[0]) / 1e9, 6) for x in t]
    check(got == offsets, "a schedule's requests fall due at exactly its times", offsets, got)

    # requests of 50 tokens at 10 ms per step take 0.5 s: at 20/s about 10 would be in flight
    run = os.path.join(tmp, "cap")
    r = slt(run, "--rate", "20", "--max-in-flight", "2", "--phase-s", "2", "--ramp-s", "0",
            "--server-metrics", "auto", "--server-metrics-rate", "20",
            emu="--step-us 10000 --step-us-per-seq 0 --max-batch 64 --prefill-tps 1e8")
    # the cap lets through 4 of the 20 requests a second: the rest pile up unsent, and the
    # run says it did not carry the load it was asked to
    check(r.returncode == 4 and "were never sent before the phase ended" in r.stdout,
          "slt --max-in-flight 2 at 5x what it lets through: not valid, and says why",
          "exit 4", (r.returncode, r.stdout[:300]))
    ph = json.load(open(os.path.join(run, "results.json")))["phases"][0]
    held = ph["arrival"]["requests_held_by_max_in_flight"]
    check(held > 0, "requests due at the cap are counted as held", "> 0", held)
    unsent = ph["arrival"]["requests_due_never_sent"]
    # (those due in the last --max-dispatch-lag-s, 1 s here, may rightly be unsent yet)
    check(unsent >= 5, "arrivals due but never sent are counted", ">= 5", unsent)
    running = ph["server"]["requests_running"]["max"]
    check(running <= 2, "the server never saw more than the cap in flight", "<= 2", running)
    check(ph["ttft_s"]["p50"] > 0.2, "a held request's TTFT includes its wait for a slot",
          "> 0.2 s", ph["ttft_s"]["p50"])


def validity(tmp):
    run = os.path.join(tmp, "behind")
    r = common.run_strobe("slt", "--out", run, "--threads", "1", "--input-tokens", "100",
                          "--output-tokens", "20", "--emu-args", EMU, "--rate", "50",
                          "--phase-s", "1", "--ramp-s", "0", "--max-dispatch-lag-s", "0.000000001")
    check(r.returncode == 4 and "fell behind its arrival schedule" in r.stdout,
          "a phase whose dispatch lag passes the bound is not valid", "exit 4, says why",
          (r.returncode, r.stdout[:300]))


def bad_input(tmp):
    cases = [
        (["--rate", "0"], "--rate must be a list"),
        (["--rate", "10,x"], "--rate must be a list"),
        (["--rate", "10", "--concurrency", "4"], "give one of them"),
        (["--rate", "10", "--schedule", "/nonexistent"], "not both"),
        (["--schedule", "/nonexistent/file"], "cannot be read"),
        (["--schedule", tmp], "is it a directory"),
        (["--arrival", "gamma:x", "--rate", "5"], "coefficient of variation"),
        (["--arrival", "uniform", "--rate", "5"], "poisson, gamma:CV or constant"),
        (["--arrival", "poisson"], "need --rate or --schedule"),
        (["--max-in-flight", "4"], "need --rate or --schedule"),
    ]
    bad = os.path.join(tmp, "bad.txt")
    open(bad, "w").write("0.1\nsoon\n")
    cases.append((["--schedule", bad], "line 2 is not a time"))
    empty = os.path.join(tmp, "empty.txt")
    open(empty, "w").write("# nothing\n")
    cases.append((["--schedule", empty], "holds no times"))
    for args, want in cases:
        r = common.run_strobe("slt", "--out", os.path.join(tmp, "never"), *args)
        check(r.returncode == 2 and want in r.stderr, "refused: %s" % " ".join(args),
              "exit 2 with '%s'" % want, (r.returncode, r.stderr.strip()[-200:]))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        poisson(tmp)
        constant_and_gamma(tmp)
        schedule_and_cap(tmp)
        validity(tmp)
        bad_input(tmp)
    common.done()


if __name__ == "__main__":
    main()
