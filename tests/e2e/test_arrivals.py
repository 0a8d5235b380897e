"""Open-loop arrivals (slt --rate, --arrival, --schedule, --max-in-flight): the requests fall
due by the process asked for (Poisson counts, constant gaps, gamma's spread, a schedule's exact
times), dealt over the workers; latency runs from when each was due; the dispatch lag is
reported and bounds validity; the in-flight cap holds requests and counts them; bad flags are
refused in one sentence."""
import json
import math
import os
import signal
import struct
import subprocess
import tempfile
import time

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


def refused(tmp, name, text, want):
    """--schedule with a file holding `text` is refused at exit 2 with `want` in stderr (each
    in a folder of its own, so that one wrongly run cannot make the next fail for that)."""
    slug = "".join(c if c.isalnum() else "-" for c in name)
    path = os.path.join(tmp, slug + ".txt")
    open(path, "w").write(text)
    got = ends_promptly(tmp, "never-" + slug, ["--schedule", path], 60)
    check(got is not None and got[0] == 2 and want in got[2], "refused: a schedule %s" % name,
          "exit 2 with '%s'" % want,
          "still running after 60 s" if got is None else (got[0], got[2].strip()[-300:]))


def schedule_long_lines(tmp):
    """A line is one time however long it is (a 256-character buffer split it into two
    arrivals, and the line numbers of later errors were off); a line past 4096 characters is
    refused naming it."""
    sched = os.path.join(tmp, "long.txt")
    open(sched, "w").write("0\n1." + "0" * 300 + "\n")
    run = os.path.join(tmp, "long")
    r = slt(run, "--schedule", sched)
    check(r.returncode == 0, "slt --schedule with a 302-character line", 0, r.stderr[-300:])
    res = json.load(open(os.path.join(run, "results.json")))
    n = res["run"]["config"]["arrival"].get("scheduled_arrivals")
    t = sorted(t for _, t in scheduled_times(run))
    check(n == 2 and [round((x - t[0]) / 1e9, 6) for x in t] == [0, 1],
          "a 302-character line is one arrival", "2 arrivals at 0 and 1 s",
          (n, [(x - t[0]) / 1e9 for x in t]))
    refused(tmp, "with a bad line after a long one", "0\n1." + "0" * 300 + "\nsoon\n",
            "line 3 is not a time")
    refused(tmp, "with a line of 5002 characters", "0\n1." + "0" * 5000 + "\n",
            "line 2 is over 4096 characters")


def schedule_out_of_range(tmp):
    """A time that cannot be placed on the int64 ns timeline is refused naming its line (1e300
    made a measured window of -9223372036.9 s)."""
    refused(tmp, "with a time of 1e300 s", "0\n1e300\n1\n", "line 2: 1e+300 s is neither")
    refused(tmp, "with a time of 2e11 s", "# trace\n200000000000\n", "line 2: 2e+11 s")
    refused(tmp, "mixing offsets and Unix times", "1700000000\n0.5\n1700000001\n",
            "from line 2 (0.5 s) to line 3")


def schedule_without_spread(tmp):
    """A schedule whose times are all the same has a measured window of 0 s: refused at load,
    saying why."""
    refused(tmp, "whose times are all equal", "# burst\n5\n5\n5\n",
            "holds 3 times, all within 1 ns of line 2's")
    refused(tmp, "of one time", "1700000000.25\n", "holds one time (line 1)")
    refused(tmp, "of times 2e-261 s apart", "0\n0." + "0" * 260 + "2\n",
            "a window needs arrivals spread over time")


def ends_promptly(tmp, name, args, limit_s):
    """Runs slt with args; (returncode, stdout, stderr), or None after killing it (its whole
    session, the emulator child too) when it runs past limit_s."""
    p = subprocess.Popen([common.STROBE, *common.with_transport(
        ["slt", "--out", os.path.join(tmp, name), "--threads", "2", "--input-tokens", "70",
         "--output-tokens", "5", "--emu-args", EMU, *args])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=limit_s)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return None


def tiny_rates(tmp):
    """Gaps past int64's nanoseconds saturate to "never": a gap of 1e300 s overflowed to a due
    time far in the past, so every arrival was due at once (a 1 s phase sent 20,119 requests)
    and counting the unsent ones never ended."""
    start = time.monotonic()
    got = ends_promptly(tmp, "tiny", ["--rate", "1e-300", "--arrival", "constant",
                                      "--phase-s", "1", "--ramp-s", "0"], 60)
    took = time.monotonic() - start
    if got and got[0] == 2:
        check("--rate" in got[2], "--rate 1e-300 is refused naming --rate", "--rate", got[2][-300:])
    else:
        sent = None
        if got and os.path.exists(os.path.join(tmp, "tiny", "results.json")):
            sent = json.load(open(os.path.join(tmp, "tiny", "results.json")))["phases"][0][
                "requests_sent"]
        check(got is not None and sent == 0, "--rate 1e-300: a 1 s phase ends promptly, nothing "
              "sent", "ends, 0 sent", "killed after %.0f s" % took if got is None else (got[0], sent))
    # at CV 1e-300 gamma's shape is infinite and a draw never ended: the run hung at its start
    got = ends_promptly(tmp, "flat-gamma", ["--rate", "5", "--arrival", "gamma:1e-300"], 60)
    check(got is not None and got[0] == 2 and "coefficient of variation" in got[2],
          "refused: --arrival gamma:1e-300", "exit 2 naming the coefficient of variation",
          "killed after 60 s" if got is None else (got[0], got[2][-300:]))
    # gamma:100 at 1e-6/s: seed 26 draws 158 arrivals within the first second and then a gap of
    # 2.6e10 s, whose 2.6e19 ns overflowed int64 (a flood of thousands of requests, timeouts)
    run = os.path.join(tmp, "huge-gap")
    got = ends_promptly(tmp, "huge-gap", ["--rate", "1e-6", "--arrival", "gamma:100", "--seed",
                                          "26", "--phase-s", "1", "--ramp-s", "0",
                                          "--max-dispatch-lag-s", "3"], 120)
    check(got is not None, "gamma:100 at --rate 1e-6 (a gap of 2.6e10 s) ends promptly",
          "ends", "killed after 120 s")
    if got is None:
        return
    check(got[0] == 0, "gamma:100 at --rate 1e-6 runs", 0, (got[0], got[2][-300:]))
    ph = json.load(open(os.path.join(run, "results.json")))["phases"][0]
    t = [x for _, x in scheduled_times(run)]
    span = (max(t) - min(t)) / 1e9 if t else None
    check(len(t) == 158 and ph["requests_failed"] == 0 and
          ph["arrival"]["requests_due_never_sent"] == 0 and span < 1,
          "gamma:100 at --rate 1e-6: the 158 arrivals of the first second sent, none after",
          "158 sent within 1 s, none failed or unsent",
          (len(t), span, ph.get("requests_failed"), ph["arrival"]))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        poisson(tmp)
        constant_and_gamma(tmp)
        schedule_and_cap(tmp)
        validity(tmp)
        bad_input(tmp)
        schedule_long_lines(tmp)
        schedule_out_of_range(tmp)
        schedule_without_spread(tmp)
        tiny_rates(tmp)
    common.done()


if __name__ == "__main__":
    main()
