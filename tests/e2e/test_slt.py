"""strobe slt against strobe-emu: accuracy against the closed forms, exact token counts in
both usage styles, faults accounted, analyze reproduces results, interruption, bad input,
the API key never written."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import common
from common import check

# prefill is made fast here so that the serial prefill queue (whose closed form is a
# mean-value approximation) does not blur the check of strobe's own accuracy
MODEL = ["--step-us", "5000", "--step-us-per-seq", "20", "--prefill-tps", "100000000",
         "--max-batch", "256"]


def slt(run, *args, env=None):
    return common.run_strobe("slt", "--out", run, "--threads", "1", *args, env=env)


# 20 ms decode steps: 2 % of a TTFT is then 0.4 ms, above the timer jitter a shared 2-core
# VM adds to the emulator's own schedule (0.1-0.25 ms seen), so the check measures strobe
ACCURACY_MODEL = ["--step-us", "20000", "--step-us-per-seq", "20", "--prefill-tps", "100000000",
                  "--max-batch", "256"]


def accuracy(tmp):
    for conc in (1, 8, 64):
        run = os.path.join(tmp, "acc%d" % conc)
        # started here, not by strobe, so that its own request count can be read afterwards
        with common.emulator(*ACCURACY_MODEL) as port:
            r = slt(run, "--concurrency", str(conc), "--phase-s", "5", "--ramp-s", "1",
                    "--input-tokens", "1000", "--output-tokens", "30", "--ignore-eos",
                    "--url", "http://127.0.0.1:%d" % port, "--model", "m")
            m = common.emu_metrics(port)
        check(r.returncode == 0, "c=%d run succeeds" % conc, 0, (r.returncode, r.stderr[-300:]))
        res = json.load(open(os.path.join(run, "results.json")))
        ph = res["phases"][0]
        cap = common.capacity(*ACCURACY_MODEL, "--concurrency", str(conc), "--prompt-tokens", "1000",
                              "--output-tokens", "30")["closed_loop"]
        speed, ttft = ph["output_speed_tokens_per_s"]["p50"], ph["ttft_s"]["p50"]
        # at c=1 the engine is idle when a request arrives; otherwise the formula's TTFT holds
        want_ttft = cap["ttft_idle_s"] if conc == 1 else cap["ttft_s"]
        late = common.lateness_s(ph)
        print("c=%d: speed %.2f (truth %.2f) tokens/s, TTFT %.5f (truth %.5f) s; emulator late "
              "by up to %.2f ms (p99)" % (conc, speed, cap["output_speed_tokens_per_s"], ttft,
                                          want_ttft, late * 1e3))
        if common.TIMING:
            # a late first or last token moves a request's speed by at most the lateness over
            # its 29 decode steps
            tol = 0.02 + late * cap["output_speed_tokens_per_s"] / 29
            check(abs(speed / cap["output_speed_tokens_per_s"] - 1) < tol,
                  "c=%d output speed within %.1f%% of the emulator's truth (2%% + its lateness)"
                  % (conc, tol * 100), cap["output_speed_tokens_per_s"], speed)
            # the closed form has no wake-up latency; an idle emulator on this shared VM takes
            # 0.2-0.8 ms to wake for a request, which is real server time strobe rightly counts;
            # a loaded machine adds the emulator's lateness, never makes a token early
            err = max(0.02 * want_ttft, 0.001)
            check(want_ttft - err < ttft < want_ttft + err + late,
                  "c=%d TTFT within 2%% (or 1 ms of wake-up), plus the emulator's lateness, of the "
                  "truth" % conc, want_ttft, ttft)
        common.check_received("c=%d" % conc, res, m, common.calibration_probes(res))
        check(ph["requests_failed_whole_phase"] == 0, "c=%d: none failed" % conc, 0,
              ph["failures"])


def usage_styles(tmp):
    # the event log written each way: direct where the file system takes it (the default), else
    # plain with the reason; --log-writes plain through the page cache. Analysis reads both.
    for style, writes in (("final-chunk", "direct"), ("finish-chunk", "plain")):
        run = os.path.join(tmp, style)
        r = slt(run, "--concurrency", "4", "--phase-s", "2", "--ramp-s", "0.5",
                "--output-tokens", "37", "--ignore-eos", "--input-tokens", "300",
                "--log-writes", writes, "--emu-args", "--step-us 2000 --usage-style " + style)
        said = [l for l in r.stderr.splitlines() if l.startswith("strobe: event log written ")]
        want = ("strobe: event log written direct (O_DIRECT, ",
                "strobe: event log written plain (through the page cache: ") \
            if writes == "direct" else ("strobe: event log written plain (through the page "
                                        "cache)",)
        check(len(said) == 1 and said[0].startswith(want),
              "--log-writes %s: stderr says how the log was written" % writes, want, said)
        res = json.load(open(os.path.join(run, "results.json")))
        ph = res["phases"][0]
        out = ph["output_tokens"]
        check(r.returncode == 0 and out["min"] == 37 and out["max"] == 37 and
              ph["requests_output_estimated"] == 0,
              "%s: every request counted exactly 37 output tokens from usage" % style,
              37, (out["min"], out["max"]))
        inp = ph["input_tokens"]
        check(abs(inp["p50"] - 300) <= 3, "%s: calibrated prompt is 300 +- 3 tokens" % style,
              300, inp["p50"])


def faults_and_analyze(tmp):
    run = os.path.join(tmp, "faults")
    spec = "reset=0.05,http500=0.05,http503=0.03,http429=0.03,malformed=0.05,error-event=0.05," \
           "stall=0.03:3,slow-first-byte=0.03:0.2,endless-headers=0.03"
    # the emulator draws its faults from one seeded stream in the order requests arrive; with
    # seed 2 its first three requests, the calibration probes, draw none, so every fault it
    # counts fell on a measured request. No ramp: failures by class are the window's, and
    # the window then holds all but the few requests started as it closed.
    with common.emulator("--step-us", "2000", "--faults", spec, "--seed", "2") as port:
        r = slt(run, "--concurrency", "16", "--phase-s", "4", "--ramp-s", "0",
                "--output-tokens", "40", "--input-tokens", "200", "--idle-timeout-s", "1.5",
                "--request-timeout-s", "3", "--url", "http://127.0.0.1:%d" % port, "--model", "m")
        m = common.emu_metrics(port)
    check(r.returncode == 4 and "the run is not valid" in r.stderr,
          "faulty server: the run goes on to the end, exit 4 (not valid)", 4,
          (r.returncode, r.stderr[-400:]))
    res = json.load(open(os.path.join(run, "results.json")))
    ph = res["phases"][0]
    print("emulator's faults:", common.emu_faults(m))
    common.check_received("faults", res, m, common.calibration_probes(res))
    # a stall (3 s) outlasts --idle-timeout-s 1.5; endless header lines keep the connection
    # busy until --request-timeout-s 3; a 0.2 s slow first byte fails nothing
    common.check_faults("faults", ph, m, {"stall": "idle-timeout", "endless-headers": "timeout"})
    classes = {f["class"] for f in res["phases"][0]["failures"]}
    print("failure classes seen:", sorted(classes))
    for want in ("http-500", "http-503", "http-429", "connection-reset", "malformed-chunk",
                 "error-event", "idle-timeout", "timeout"):
        check(want in classes, "faults: %s recorded with its reason" % want, want, sorted(classes))
    check(all(f["example"] for f in ph["failures"]), "every failure class carries a reason",
          "a reason each", [f for f in ph["failures"] if not f["example"]])
    check(not res["validity"]["valid"], "a run with many failures is marked not valid", False,
          res["validity"])
    before = open(os.path.join(run, "results.json")).read()
    csv_before = open(os.path.join(run, "results.csv")).read()
    os.remove(os.path.join(run, "results.json"))
    a = common.run_strobe("analyze", run)
    check(a.returncode == 0, "strobe analyze succeeds", 0, a.stderr)
    after = open(os.path.join(run, "results.json")).read()
    csv_after = open(os.path.join(run, "results.csv")).read()
    check(after == before and csv_after == csv_before,
          "strobe analyze reproduces results.json and results.csv byte for byte", (True, True),
          (after == before, csv_after == csv_before))
    # the log read over 1 and over 2 threads: the same bytes (faults give failed requests,
    # error events and torn streams, which the chunk scanner leaves to the full parser)
    by_threads = []
    for t in ("1", "2"):
        a = common.run_strobe("analyze", run, "--threads", t)
        check(a.returncode == 0 and "over %s thread" % t in a.stdout,
              "strobe analyze --threads %s succeeds and says so" % t, 0,
              (a.returncode, a.stdout[-300:], a.stderr[-300:]))
        by_threads.append(open(os.path.join(run, "results.json")).read())
    check(by_threads[0] == by_threads[1] == before,
          "results.json over 1 and 2 analysis threads is the live run's, byte for byte",
          (True, True), (by_threads[0] == before, by_threads[1] == before))


def interrupt(tmp):
    run = os.path.join(tmp, "sigint")
    with common.emulator("--step-us", "3000") as port:
        p = subprocess.Popen([common.STROBE, "slt", "--out", run, "--threads", "1",
                              "--concurrency", "8", "--phase-s", "30", "--ramp-s", "0.5",
                              "--output-tokens", "200", "--input-tokens", "100",
                              "--url", "http://127.0.0.1:%d" % port, "--model", "m"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(30)
        m = common.emu_metrics(port)
    check(p.returncode == 3, "SIGINT: exit status 3", 3, p.returncode)
    res = json.load(open(os.path.join(run, "results.json")))
    ph = res["phases"][0]
    check(res["interrupted"] and not res["complete"], "SIGINT: results marked interrupted",
          (True, False), (res["interrupted"], res["complete"]))
    check(ph["requests_sent_whole_phase"] > 0 and ph["output_tokens_in_window"] > 0,
          "SIGINT: what was received is kept", "> 0 requests and tokens",
          (ph["requests_sent_whole_phase"], ph["output_tokens_in_window"]))
    # a request strobe wrote just before the signal may not have been read by the emulator
    # when strobe closed its connection: at most the 8 in flight
    sent, retried = common.sent_whole_run(res)
    got = common.emu_received(m) - common.calibration_probes(res)
    check(sent - 8 <= got <= sent + retried,
          "SIGINT: the emulator received what strobe logged as sent, but for at most the 8 in "
          "flight", "%d..%d" % (sent - 8, sent + retried), got)
    classes = {f["class"] for f in ph["failures"]}
    check("interrupted" in classes, "SIGINT: in-flight requests recorded as interrupted", "interrupted", classes)
    a = common.run_strobe("analyze", run)
    check(a.returncode == 0, "strobe analyze reads an interrupted run", 0, a.stderr[-300:])


def sigkill(tmp):
    run = os.path.join(tmp, "sigkill")
    p = subprocess.Popen([common.STROBE, "slt", "--out", run, "--threads", "1",
                          "--concurrency", "8", "--phase-s", "30", "--ramp-s", "0.5",
                          "--output-tokens", "200", "--input-tokens", "100",
                          "--url", "http://127.0.0.1:1", "--model", "x"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate(timeout=60)
    check(p.returncode == 1 and "calibration" in err and err.strip().endswith("."),
          "an unreachable --url: exit 1 with one sentence", 1, err.strip())
    with common.emulator("--step-us", "3000") as port:
        p = subprocess.Popen([common.STROBE, "slt", "--out", run, "--threads", "1",
                              "--concurrency", "8", "--phase-s", "30", "--ramp-s", "0.5",
                              "--output-tokens", "200", "--input-tokens", "100",
                              "--url", "http://127.0.0.1:%d" % port, "--model", "x"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        p.kill()
        p.wait()
    a = common.run_strobe("analyze", run)
    res = json.load(open(os.path.join(run, "results.json")))
    check(a.returncode == 0 and not res["complete"] and res["phases"],
          "SIGKILL: the log stays readable and analyze reports the run as incomplete",
          (0, False, "phases"), (a.returncode, res["complete"], len(res["phases"])))


def emulator_start_retry(tmp):
    """A port found free can be taken before the built-in emulator binds it (any loopback
    connect() on the machine draws from the same range); strobe then starts it again on
    another port. A stand-in strobe-emu next to a copy of strobe fails its first two starts
    as a taken port does (exit status 1), then runs the real emulator."""
    d = os.path.join(tmp, "retry")
    os.mkdir(d)
    shutil.copy(common.STROBE, os.path.join(d, "strobe"))
    starts = os.path.join(d, "starts")
    fake = os.path.join(d, "strobe-emu")
    with open(fake, "w") as f:
        f.write('#!/bin/sh\necho "$2" >> %s\n'
                '[ "$(wc -l < %s)" -gt 2 ] && exec %s "$@"\n'
                'echo "strobe-emu: cannot listen on $2: Address already in use; pick another --listen port." >&2\n'
                'exit 1\n' % (starts, starts, os.path.abspath(common.EMU)))
    os.chmod(fake, 0o755)
    r = subprocess.run([os.path.join(d, "strobe"), "slt", "--out", os.path.join(tmp, "retry-run"),
                        "--threads", "1", "--concurrency", "1", "--phase-s", "1", "--ramp-s", "0.2",
                        "--output-tokens", "5", "--input-tokens", "50", "--tokenizer", "none"],
                       capture_output=True, text=True, timeout=120)
    tries = open(starts).read().split() if os.path.exists(starts) else []
    check(r.returncode == 0 and len(tries) == 3,
          "the built-in emulator's port taken twice: strobe starts it on another port, the run goes on",
          (0, 3), (r.returncode, tries, r.stderr[-300:]))


def bad_command_lines():
    cases = [["slt"], ["slt", "--out", "/tmp/x", "--concurrency", "0"],
             ["slt", "--out", "/tmp/x", "--phase-s", "abc"], ["slt", "--nope"],
             ["slt", "--out", "/tmp/x", "--url", "ftp://h", "--model", "m"],
             ["slt", "--out", "/tmp/x", "--url", "http://h"], ["frobnicate"], ["analyze"],
             ["analyze", "/tmp/x", "--threads", "0"], ["analyze", "/tmp/x", "--threads", "two"],
             ["slt", "--out", "/tmp/x", "--extra-body", "[1]", "--emu-args", "--step-us 1000"]]
    for c in cases:
        r = common.run_strobe(*c)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) >= 1 and lines[-1].endswith("."),
              "bad command line %r: status 2 and a sentence" % " ".join(c), 2,
              (r.returncode, r.stderr.strip()[-200:]))


def cost(tmp):
    run = os.path.join(tmp, "cost")
    r = slt(run, "--concurrency", "1,8,32", "--phase-s", "2", "--ramp-s", "0.5",
            "--output-tokens", "50", "--input-tokens", "200", "--accelerator-type", "TPU v6e",
            "--accelerators", "8", "--reference-speed", "170", "--power", "emu",
            "--emu-args", "--step-us 5000 --step-us-per-seq 50")
    res = json.load(open(os.path.join(run, "results.json")))
    ph = res["phases"]
    pts = [(p["output_speed_tokens_per_s"]["p50"], p["system_output_tokens_per_s"]) for p in ph]
    want = None
    for (s0, t0), (s1, t1) in zip(pts, pts[1:]):
        if (170 - s0) * (170 - s1) <= 0 and s0 != s1:
            want = t0 + (170 - s0) / (s1 - s0) * (t1 - t0)
            break
    c = res["cost"]
    check(r.returncode == 0 and want is not None and
          abs(c["system_output_tokens_per_s_at_reference"] - want) < 1e-6 and
          abs(c["usd_per_million_tokens"] - 8 * 2.70 / (want * 3600) * 1e6) < 1e-9,
          "cost per million tokens at the reference speed from the shipped TPU v6e price",
          want, c.get("system_output_tokens_per_s_at_reference"))
    # the table says it too (it was only in results.json)
    line = "cost: $%.2f per million output tokens" % c["usd_per_million_tokens"]
    check(line in r.stdout and "8 accelerators at $2.70 per hour" in r.stdout,
          "the table prints the cost per million tokens", line,
          [l for l in r.stdout.splitlines() if l.startswith("cost")])
    power = [l for l in r.stdout.splitlines() if l.strip().startswith("power: accelerators")]
    check(len(power) == 3 and all(" W mean, " in l and "per output token" in l for l in power),
          "the table prints each phase's power and energy per output token", 3, power)
    r = common.run_strobe("slt", "--out", os.path.join(tmp, "nocost"), "--accelerator-type", "H100")
    check(r.returncode == 2 and "--price-per-hour" in r.stderr,
          "an accelerator without a price: a sentence saying what to give", (2, "--price-per-hour"),
          (r.returncode, r.stderr.strip()[-200:]))


def secret(tmp):
    run = os.path.join(tmp, "secret")
    key = "sk-strobe-test-SECRET-8f3a91"
    env = dict(os.environ, STROBE_API_KEY=key)
    r = slt(run, "--concurrency", "2", "--phase-s", "1", "--ramp-s", "0.2", "--output-tokens",
            "10", "--input-tokens", "50", "--emu-args", "--step-us 1000", env=env)
    leaked = key in r.stdout or key in r.stderr
    for name in os.listdir(run):
        leaked = leaked or key.encode() in open(os.path.join(run, name), "rb").read()
    check(r.returncode == 0 and not leaked,
          "the API key appears in no output, log or result file", (0, False), (r.returncode, leaked))


def ipv6_and_threads(tmp):
    run = os.path.join(tmp, "ipv6")
    with common.emulator(*MODEL, host="::1") as port:
        r = common.run_strobe("slt", "--url", "http://[::1]:%d" % port, "--model", "m",
                              "--out", run, "--threads", "2", "--concurrency", "16",
                              "--phase-s", "3", "--ramp-s", "0.5", "--output-tokens", "60",
                              "--input-tokens", "500", "--ignore-eos")
        m = common.emu_metrics(port, host="::1")
    check(r.returncode == 0, "IPv6 [::1] with 2 worker threads: run succeeds", 0, r.stderr[-300:])
    res = json.load(open(os.path.join(run, "results.json")))
    ph = res["phases"][0]
    common.check_received("IPv6, 2 threads", res, m, common.calibration_probes(res))
    cap = common.capacity(*MODEL, "--concurrency", "16", "--prompt-tokens", "500",
                          "--output-tokens", "60")["closed_loop"]
    speed = ph["output_speed_tokens_per_s"]["p50"]
    tol = 0.02 + common.lateness_s(ph) * cap["output_speed_tokens_per_s"] / 59
    check(ph["requests_failed_whole_phase"] == 0 and
          (not common.TIMING or abs(speed / cap["output_speed_tokens_per_s"] - 1) < tol),
          "IPv6, 2 threads: no failures, speed within 2% (+ the emulator's lateness)",
          cap["output_speed_tokens_per_s"], speed)


def two_thousand_streams(tmp):
    run = os.path.join(tmp, "c2000")
    with common.emulator("--step-us", "20000", "--step-us-per-seq", "0", "--max-batch", "4000",
                         "--prefill-tps", "1e9") as port:
        r = common.run_strobe("slt", "--out", run, "--threads", "2", "--concurrency", "2000",
                              "--phase-s", "3", "--ramp-s", "1", "--output-tokens", "25",
                              "--input-tokens", "100", "--ignore-eos",
                              "--url", "http://127.0.0.1:%d" % port, "--model", "m")
        m = common.emu_metrics(port)
    check(r.returncode == 0, "2,000 concurrent streams: run succeeds", 0, r.stderr[-300:])
    res = json.load(open(os.path.join(run, "results.json")))
    ph = res["phases"][0]
    common.check_received("2,000 streams", res, m, common.calibration_probes(res))
    out = ph["output_tokens"]
    print("2,000 streams: %d requests over the phase, %d failed, output tokens min %d max %d"
          % (ph["requests_sent_whole_phase"], ph["requests_failed_whole_phase"], out["min"], out["max"]))
    check(ph["requests_sent_whole_phase"] >= 2000 and ph["requests_failed_whole_phase"] == 0 and
          out["min"] == 25 and out["max"] == 25 and ph["requests_output_estimated"] == 0,
          "2,000 concurrent streams complete with exactly 25 tokens each", (">= 2000", 0, 25, 25, 0),
          (ph["requests_sent_whole_phase"], ph["requests_failed_whole_phase"], out["min"], out["max"],
           ph["requests_output_estimated"]))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        bad_command_lines()
        emulator_start_retry(tmp)
        accuracy(tmp)
        ipv6_and_threads(tmp)
        two_thousand_streams(tmp)
        usage_styles(tmp)
        faults_and_analyze(tmp)
        interrupt(tmp)
        sigkill(tmp)
        secret(tmp)
        cost(tmp)
    common.done()
