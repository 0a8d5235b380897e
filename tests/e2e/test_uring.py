"""--transport uring: the transport-level end-to-end checks of the kernel transport run again
over io_uring (accuracy against the emulator's closed forms from test_slt.py, the fault
classes from test_reliability.py; test_http.py and test_tls.py run whole under
STROBE_TEST_TRANSPORT=uring from meson.build), plus what only this transport has: every
stream byte-exact with kernel stamps on both receive paths (multishot, and the single-shot
fallback forced by STROBE_URING_DISABLE), the one-sentence refusal where io_uring is
unavailable, and 10,000 concurrent sessions on one worker. Skipped (77) when strobe was built
without liburing or the kernel forbids io_uring here."""
import json
import os
import sys
import tempfile

os.environ["STROBE_TEST_TRANSPORT"] = "uring"  # before common reads it

import common  # noqa: E402
from common import check  # noqa: E402
import test_reliability  # noqa: E402
import test_slt  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
O200K = os.path.join(ROOT, "tokenizers", "o200k_base.tiktoken")
LEAK = "not given back"


def available(tmp):
    """None when strobe can run --transport uring here, else why not."""
    r = common.run_strobe("slt", "--out", os.path.join(tmp, "probe"), "--url", "http://127.0.0.1:1",
                          "--model", "m", "--connect-timeout-s", "1", timeout=60)
    if "built without io_uring" in r.stderr or "use --transport kernel" in r.stderr:
        return r.stderr.strip()
    return None


def uring_run(tmp, name, emu_args, conc, tokens, *extra, env=None):
    """One slt run against an emulator started here; (returncode, stderr, results, metrics)."""
    run = os.path.join(tmp, name)
    with common.emulator(*emu_args) as port:
        r = common.run_strobe("slt", "--out", run, "--threads", "1", "--concurrency", str(conc),
                              "--input-tokens", "200", "--output-tokens", str(tokens), "--ignore-eos",
                              "--url", "http://127.0.0.1:%d" % port, "--model", "m", *extra,
                              env=env, timeout=300)
        m = common.emu_metrics(port)
    res = json.load(open(os.path.join(run, "results.json"))) if r.returncode == 0 else None
    return r, res, m


def exact_streams(tmp, name, conc, env=None, path="io_uring transport"):
    """Every request of `conc` concurrent streams answered in full, every chunk's text what
    the emulator sent (bytes intact and in order), every event stamped by the kernel."""
    emu = ["--step-us", "10000", "--step-us-per-seq", "0", "--max-batch", "4000", "--prefill-tps", "1e9"]
    r, res, m = uring_run(tmp, name, emu, conc, 30, "--phase-s", "3", "--ramp-s", "1",
                          "--tokenizer", O200K, env=env)
    check(r.returncode == 0, "%s: the run succeeds" % name, 0, (r.returncode, r.stderr[-400:]))
    check(path in r.stderr, "%s: the start line says which path runs (%s)" % (name, path), path,
          [x for x in r.stderr.splitlines() if "io_uring" in x])
    check(LEAK not in r.stderr, "%s: every receive buffer given back to the ring" % name, "no warning",
          r.stderr[-300:])
    if not res:
        return
    ph = res["phases"][0]
    common.check_received(name, res, m, common.calibration_probes(res))
    common.check_exact_streams(name, ph, conc)
    src = res["timestamps"]["events_by_source"]
    check(src["kernel"] > 0 and sum(src.values()) == src["kernel"],
          "%s: every event stamped by the kernel (SO_TIMESTAMPING through the ring)" % name, "kernel", src)


def fallback(tmp):
    env = dict(os.environ, STROBE_URING_DISABLE="multishot,defer-taskrun")
    exact_streams(tmp, "single-shot fallback", 200, env=env, path="single-shot recvmsg")
    env = dict(os.environ, STROBE_URING_DISABLE="io_uring")
    r = common.run_strobe("slt", "--out", os.path.join(tmp, "no-uring"), "--threads", "1", "--phase-s", "1",
                          env=env, timeout=120)
    lines = [x for x in r.stderr.splitlines() if "io_uring" in x]
    check(r.returncode == 1 and len(lines) == 1 and lines[0].endswith("use --transport kernel."),
          "io_uring unavailable: exit 1, one sentence saying to use --transport kernel", 1,
          (r.returncode, r.stderr[-300:]))
    # a misspelt name would test the path it was meant to turn off
    env = dict(os.environ, STROBE_URING_DISABLE="multishot,defer_taskrun")
    r = common.run_strobe("slt", "--out", os.path.join(tmp, "misspelt"), "--threads", "1", "--phase-s", "1",
                          env=env, timeout=120)
    check(r.returncode == 1 and "names 'defer_taskrun', which is not one of" in r.stderr,
          "STROBE_URING_DISABLE with a misspelt name: exit 1 naming it", 1, (r.returncode, r.stderr[-300:]))


def ten_thousand_sessions(tmp):
    """10,000 streams held at once by one worker's ring: a short phase, every request
    completed, the emulator received exactly what strobe sent."""
    emu = ["--step-us", "250000", "--step-us-per-seq", "0", "--max-batch", "12000", "--prefill-tps", "1e9"]
    r, res, m = uring_run(tmp, "c10000", emu, 10000, 4, "--phase-s", "3", "--ramp-s", "2",
                          "--tokenizer", "none", "--drain-s", "10")
    check(r.returncode == 0, "10,000 sessions: the run succeeds", 0, (r.returncode, r.stderr[-400:]))
    check(LEAK not in r.stderr, "10,000 sessions: every receive buffer given back", "no warning", r.stderr[-300:])
    if not res:
        return
    ph = res["phases"][0]
    out = ph["output_tokens"]
    print("10,000 sessions: %d requests over the phase, %d failed, output tokens min %d max %d" % (
        ph["requests_sent_whole_phase"], ph["requests_failed_whole_phase"], out["min"], out["max"]))
    common.check_received("10,000 sessions", res, m, common.calibration_probes(res))
    check(ph["requests_sent_whole_phase"] >= 10000 and ph["requests_failed_whole_phase"] == 0 and
          out["min"] == 4 and out["max"] == 4,
          "10,000 concurrent sessions: every request completed with its 4 tokens", (">= 10000", 0, 4, 4),
          (ph["requests_sent_whole_phase"], ph["requests_failed_whole_phase"], out["min"], out["max"]))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        why = available(tmp)
        if why:
            print("SKIP: --transport uring cannot run here: %s" % why)
            sys.exit(77)
        exact_streams(tmp, "1,000 streams", 1000)
        fallback(tmp)
        test_slt.accuracy(tmp)
        test_reliability.fault_campaign(tmp)
        ten_thousand_sessions(tmp)
    common.done()
