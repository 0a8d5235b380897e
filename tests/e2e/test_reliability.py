"""Reliability: every emulator fault mode at once at 1,000 concurrent sessions (no crash, no
hang, every failure accounted with its reason, sent = succeeded + failed in every window,
the validity flag down as methodology.md demands); SIGINT, SIGTERM and SIGKILL at random
moments (the log stays readable, `strobe analyze` works on it); a full disk (a clear error
and a readable log); too many sessions for RLIMIT_NOFILE or RLIMIT_AS refused up front; a
tokenizer.json too large for the memory said to be so, not bad JSON; the API key in no
output, log, result or report, also when a server echoes it back (a 401 body, a streamed
chunk, a calibration answer)."""
import glob
import json
import os
import random
import re
import signal
import subprocess
import tempfile
import time

import common
from common import check

FAST = "--step-us 4000 --step-us-per-seq 1 --max-batch 4000 --prefill-tps 100000000"
KINDS = ["reset", "http500", "http503", "http429", "malformed", "error-event", "stall",
         "slow-first-byte", "endless-headers"]


def fault_campaign(tmp):
    faults = ",".join("%s=0.02" % k for k in KINDS if k not in ("stall", "slow-first-byte")) + \
        ",stall=0.02:6,slow-first-byte=0.02:0.5"
    run = os.path.join(tmp, "faults")
    # started here so that its counters can be read after the run; its faults come from one
    # seeded stream in the order requests arrive, and with seed 2 the first three (strobe's
    # calibration probes) draw none: every fault it counts fell on a measured request
    # the idle timeout (4 s) sits between the stall (6 s) and the longest an unfaulted request
    # waits for its first byte on a loaded machine: with 1,000 connections opened in the 1 s
    # ramp, a sanitizer-built emulator sharing two cores with a CPU hog left some requests
    # unread for over 2 s (classed idle-timeout, never counted by the emulator), on either
    # transport
    with common.emulator(*FAST.split(), "--faults", faults, "--seed", "2") as port:
        t0 = time.time()
        r = common.run_strobe("slt", "--out", run, "--threads", "1", "--concurrency", "1000", "--phase-s", "4",
                              "--ramp-s", "1", "--input-tokens", "100", "--output-tokens", "30", "--ignore-eos",
                              "--idle-timeout-s", "4", "--request-timeout-s", "8", "--drain-s", "10",
                              "--tokenizer", "none", "--url", "http://127.0.0.1:%d" % port, "--model", "m",
                              timeout=300)
        took = time.time() - t0
        m = common.emu_metrics(port)
    check(r.returncode == 4 and "the run is not valid" in r.stderr,
          "1,000 sessions under every fault mode: the run ends normally, exit 4 (not valid: "
          "failures above 1 %)", 4, (r.returncode, r.stderr[-400:]))
    res = json.load(open(os.path.join(run, "results.json")))
    ph = res["phases"][0]
    classes = {f["class"]: (f["requests"], f["example"]) for f in ph["failures"]}
    print("faults: %d sent in the window, %d ok, %d failed in %.0f s; classes %s" % (
        ph["requests_sent"], ph["requests_succeeded"], ph["requests_failed"], took,
        {k: v[0] for k, v in classes.items()}))
    check(took < 120, "no hang: the run ends within its phase, drain and timeouts", "< 120 s", took)
    print("emulator's faults:", common.emu_faults(m))
    common.check_received("1,000 sessions under faults", res, m, common.calibration_probes(res))
    # a stall (6 s) outlasts --idle-timeout-s 4; endless header lines hold the request until
    # --request-timeout-s 8, inside the 10 s drain; a 0.5 s slow first byte fails nothing
    common.check_faults("1,000 sessions under faults", ph, m,
                        {"stall": "idle-timeout", "endless-headers": "timeout"})
    for cls in ("connection-reset", "http-500", "http-503", "http-429", "malformed-chunk", "error-event",
                "idle-timeout"):
        check(cls in classes and classes[cls][1], "failure class %s recorded with a reason" % cls, cls, list(classes))
    v = res["validity"]
    # and names the classes, most common first with its count (it named none)
    top = max(classes, key=lambda c: classes[c][0]) if classes else "?"
    check(v["valid"] is False and any("failed, more than 1 %" in n and "(%s: " % top in n for n in v["notes"]),
          "more than 1 %% failed: the run says it is not valid, and why, naming %s first" % top, False, v)


def children(pid):
    """The processes strobe started (its built-in emulator), read before it is signalled."""
    out = []
    for task in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            out += [int(c) for c in open(task).read().split()]
        except OSError:
            pass
    return out


def stop_leftovers(pids):
    """Stops what this test's strobe started if it outlived strobe (it should not: strobe
    stops its emulator, and a killed strobe's emulator gets SIGTERM from the kernel), by
    process id only: other test runs on the machine have their own emulators."""
    for pid in pids:
        try:
            if "strobe-emu" in open("/proc/%d/cmdline" % pid).read():
                os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


def interruptions(tmp):
    rnd = random.Random(int(os.environ.get("STROBE_TEST_SEED", "7")))
    for i, sig in enumerate([signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL] * 2):
        run = os.path.join(tmp, "sig%d" % i)
        p = subprocess.Popen([common.STROBE, "slt", "--out", run, "--threads", "1", "--concurrency", "200",
                              "--phase-s", "4", "--ramp-s", "0.5", "--input-tokens", "100", "--output-tokens", "40",
                              "--ignore-eos", "--tokenizer", "none", "--emu-args", FAST],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait = rnd.uniform(0.3, 5.5)
        time.sleep(wait)
        emus = children(p.pid)
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
        stop_leftovers(emus)
        # strobe's start line ("... log in RUN") follows its signal handlers; before it, on a
        # busy machine still calibrating or creating the log, a signal's default action ends
        # strobe: nothing was measured yet, and a log already created must still be readable
        started = " log in " in err
        logged = started or os.path.exists(os.path.join(run, "events.bin"))
        if sig == signal.SIGKILL:
            exit_ok = p.returncode == -9
        else:  # 0: the signal came after the run had ended
            exit_ok = p.returncode in (0, 3) or (not started and p.returncode == -sig)
        a = common.run_strobe("analyze", run)
        ok = not logged or (a.returncode == 0 and os.path.exists(os.path.join(run, "results.json")))
        res = json.load(open(os.path.join(run, "results.json"))) if logged and ok else {}
        print("%s after %.1f s%s: exit %d, analyze %d, complete %s" % (
            sig.name, wait, "" if started else " (before the run started)", p.returncode, a.returncode,
            res.get("complete")))
        check(exit_ok and ok, "%s at a random moment (%.1f s): the log stays readable and analyze works" % (sig.name, wait),
              0, (p.returncode, a.returncode, a.stderr[-200:], err[-200:]))


def hangup_under_nohup(tmp):
    """Under nohup (SIGHUP ignored when strobe starts) a hangup does not stop the run: strobe
    ends SIGHUP's runs as interrupted only where the signal was not already ignored."""
    run = os.path.join(tmp, "nohup")
    p = subprocess.Popen([common.STROBE, "slt", "--out", run, "--threads", "1", "--concurrency", "2",
                          "--phase-s", "2", "--ramp-s", "0.2", "--input-tokens", "50", "--output-tokens", "20",
                          "--tokenizer", "none"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    time.sleep(1.5)
    p.send_signal(signal.SIGHUP)
    _, err = p.communicate(timeout=120)
    res = json.load(open(os.path.join(run, "results.json"))) if p.returncode == 0 else {}
    check(p.returncode == 0 and res.get("interrupted") is False,
          "SIGHUP under nohup: the run goes on to its end", (0, False),
          (p.returncode, res.get("interrupted"), err[-200:]))


def full_disk(tmp):
    script = """
set -e
mount -t tmpfs -o size=3m tmpfs "$1"
set +e
"$2" slt --out "$1/run" --threads 1 --concurrency 64 --phase-s 8 --ramp-s 0.5 --input-tokens 100 \
    --output-tokens 2000 --ignore-eos --tokenizer none --emu-args "--step-us 500 --max-batch 4000 --prefill-tps 100000000" 2>"$3/stderr"
echo $? > "$3/rc"
cp -r "$1/run" "$3/copy"
"""
    mnt = os.path.join(tmp, "small")
    os.mkdir(mnt)
    r = subprocess.run(["unshare", "-m", "bash", "-c", script, "x", mnt, common.STROBE, tmp],
                       capture_output=True, text=True, timeout=180)
    if r.returncode:
        print("full disk NOT TESTED: cannot mount a small tmpfs in a mount namespace (%s)" % r.stderr.strip()[-200:])
        return
    rc = int(open(os.path.join(tmp, "rc")).read())
    err = open(os.path.join(tmp, "stderr")).read()
    print("full disk: exit %d; %s" % (rc, [l for l in err.splitlines() if "disk" in l or "write" in l][:2]))
    # said when it happens, with the cause, and the run stops then (it ran its phases to the end
    # and said only "disk full?" when it closed)
    said = "the event log cannot be written (writing" in err and "No space left on device): the run stops" in err
    check(rc == 1 and said, "a full disk: the run stops at once, exit 1, saying why", (1, True), (rc, err[-300:]))
    stale = [f for f in os.listdir(os.path.join(tmp, "copy")) if f.endswith(".tmp")]
    check(not stale, "a full disk leaves no half-written results (*.tmp)", [], stale)
    a = common.run_strobe("analyze", os.path.join(tmp, "copy"))
    check(a.returncode == 0, "the log written up to the full disk is readable", 0, a.stderr[-300:])


def fd_limit(tmp):
    r = subprocess.run(["prlimit", "--nofile=512:512", common.STROBE, "slt", "--out", os.path.join(tmp, "fd"),
                        "--concurrency", "4000", "--phase-s", "1", "--tokenizer", "none"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "RLIMIT_NOFILE" in r.stderr and "ulimit -n" in r.stderr,
          "4,000 sessions with 512 descriptors: refused up front, saying what to raise", 2, r.stderr[-300:])


def memory_limit(tmp):
    # 2,000 sessions need about 136 MiB by strobe's own estimate: refused under a 100 MiB limit
    if os.environ.get("STROBE_SANITIZED") == "1":
        print("memory limit NOT TESTED here: AddressSanitizer cannot start under RLIMIT_AS")
        return
    r = subprocess.run(["prlimit", "--as=104857600", common.STROBE, "slt", "--out", os.path.join(tmp, "mem"),
                        "--concurrency", "2000", "--phase-s", "1", "--tokenizer", "none"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "RLIMIT_AS" in r.stderr and "MiB" in r.stderr,
          "sessions that would not fit the memory limit: refused up front, saying what to lower", 2,
          r.stderr[-300:])


def threads_that_cannot_start(tmp):
    """A thread strobe cannot start (a low ulimit -v, a cgroup's pids.max) is refused in one
    sentence, with nothing left behind, never a crash or a run with a worker missing (which
    measured half the load and called it valid): tests/fail_thread refuses the n-th
    pthread_create of strobe's, for n over the event log's thread, both workers, the
    telemetry thread (--server-metrics) and the analysis threads (which fall back to fewer)."""
    lib = os.environ.get("STROBE_FAIL_THREAD_LIB")
    if not lib or not os.path.exists(lib):
        check(False, "the thread-refusing preload is built (tests/fail_thread)", "a library", lib)
        return
    env = dict(os.environ, LD_PRELOAD=lib)
    if os.environ.get("STROBE_SANITIZED") == "1":  # the preload comes before ASan's runtime
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    refused = []
    for n in range(1, 9):
        run = os.path.join(tmp, "threads%d" % n)
        env["STROBE_FAIL_THREAD"] = str(n)
        r = subprocess.run([common.STROBE, "slt", "--out", run, "--threads", "2", "--concurrency", "4",
                            "--phase-s", "1", "--ramp-s", "0.3", "--input-tokens", "50", "--output-tokens", "20",
                            "--tokenizer", "none", "--server-metrics", "auto"],
                           capture_output=True, text=True, timeout=120, env=env)
        last = [l for l in r.stderr.splitlines() if not l.startswith("strobe-emu")][-1:] or [""]
        left = os.listdir(run) if os.path.isdir(run) else []
        made = os.path.isdir(run)
        if r.returncode == 1:
            refused.append(last[0])
            check("cannot start" in last[0] and not made,
                  "pthread_create %d refused: one sentence saying what could not start, no folder left" % n,
                  ("cannot start ...", False), (last[0][-200:], left))
            continue
        started = [int(m) for m in re.findall(r"worker \d: (\d+) requests started", r.stderr)]
        valid = r.returncode == 0 and json.load(open(os.path.join(run, "results.json")))["validity"]["valid"]
        check(valid and len(started) == 2 and all(started),
              "pthread_create %d refused after the run's threads started: a valid run, both workers "
              "sending" % n, (True, "two workers > 0"), (r.returncode, started, r.stderr[-200:]))
    kinds = ["the event log's thread", "worker 0 of 2", "worker 1 of 2", "the telemetry thread"]
    check(all(any(k in m for m in refused) for k in kinds), "the log's thread, each worker and the "
          "telemetry thread, refused, each refuse the run naming itself", kinds, refused)


def tokenizer_out_of_memory(tmp):
    """A tokenizer.json that cJSON cannot hold in memory is said to be that, not bad JSON."""
    if os.environ.get("STROBE_SANITIZED") == "1":
        print("tokenizer out of memory NOT TESTED here: AddressSanitizer cannot start under RLIMIT_AS")
        return
    path = os.path.join(tmp, "big-tokenizer.json")
    # 12 MB of vocabulary: about 80 MiB of parsed JSON, past a 100 MiB address-space limit
    with open(path, "w") as f:
        f.write('{"model":{"vocab":{' + ",".join('"t%d":%d' % (i, i) for i in range(700000)) + "}}}")
    tokenize = [common.STROBE, "tokenize", "--tokenizer", path]
    r = subprocess.run(["prlimit", "--as=104857600", *tokenize], input="hi", capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 1 and "out of memory while loading tokenizer.json" in r.stderr and
          "not valid JSON" not in r.stderr,
          "a tokenizer.json too large for the memory limit: out of memory, said so", 1,
          r.stderr.strip()[-300:])
    r = subprocess.run(tokenize, input="hi", capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "no ByteLevel pre-tokenizer" in r.stderr,
          "the same file without the limit parses (and is refused for what it lacks)", 1,
          r.stderr.strip()[-300:])


def secrets(tmp):
    key = "sk-strobe-reliability-%d" % os.getpid()
    env = dict(os.environ, STROBE_API_KEY=key)
    run = os.path.join(tmp, "secret")
    r = common.run_strobe("slt", "--out", run, "--threads", "1", "--concurrency", "4", "--phase-s", "1",
                          "--ramp-s", "0.2", "--input-tokens", "100", "--output-tokens", "10", "--ignore-eos",
                          "--tokenizer", "none", "--emu-args", FAST, env=env)
    rep = os.path.join(tmp, "report")
    r2 = common.run_strobe("report", run, "-o", rep, env=env)
    a = common.run_strobe("analyze", run, env=env)
    leaked = [f for f in glob.glob(os.path.join(run, "*")) + glob.glob(os.path.join(rep, "**", "*"), recursive=True)
              if os.path.isfile(f) and key.encode() in open(f, "rb").read()]
    outputs = r.stdout + r.stderr + r2.stdout + r2.stderr + a.stdout + a.stderr
    check(r.returncode == 0 and not leaked and key not in outputs,
          "the API key appears in no output, log, result or report", [], leaked)


def secrets_echoed(tmp):
    """A server that echoes the Authorization header: in a 401 body, and inside the streamed
    content of a 200. The key must be blanked out of stdout, stderr and every file of the run
    (bodies.bin included), with the same length so the log's body offsets stay valid."""
    key = "sk-test-echoed-%d-0123456789abcdef" % os.getpid()
    env = dict(os.environ, STROBE_API_KEY=key)
    n = [0]

    def auth(head):
        return [l for l in head.split(b"\r\n") if l.lower().startswith(b"authorization:")][0].decode()

    def respond(head, body):
        if common.is_probe(body):  # calibration is served well
            return common.sse_answer(len(body) // 4)
        n[0] += 1
        if n[0] % 2:
            msg = json.dumps({"error": {"message": "bad key: " + auth(head)}}).encode()
            return b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" \
                % len(msg) + msg
        return common.sse_answer(len(body) // 4, texts=("you sent ", auth(head), " ok"))

    run = os.path.join(tmp, "echoed")
    with common.canned_server(respond) as srv:
        r = common.run_strobe("slt", "--url", "http://127.0.0.1:%d" % srv.port, "--model", "m", "--out", run,
                              "--threads", "1", "--concurrency", "2", "--phase-s", "1", "--ramp-s", "0.2",
                              "--input-tokens", "100", "--output-tokens", "3", "--tokenizer", "none", env=env)
        echoed = n[0]
    a = common.run_strobe("analyze", run, env=env)
    leaked = [f for f in glob.glob(os.path.join(run, "*"))
              if os.path.isfile(f) and key.encode() in open(f, "rb").read()]
    outputs = r.stdout + r.stderr + a.stdout + a.stderr
    bodies = open(os.path.join(run, "bodies.bin"), "rb").read() if os.path.exists(os.path.join(run, "bodies.bin")) else b""
    check(echoed >= 2 and b"Bearer " + b"*" * len(key) in bodies,
          "the server echoed the key in 401 bodies and streamed content (blanked to '*' in bodies.bin)",
          ">= 2 echoes", echoed)
    check(not leaked and key not in outputs, "an echoed API key appears in no output or file of the run",
          [], (leaked, [l for l in outputs.splitlines() if key in l][:2]))
    res = json.load(open(os.path.join(run, "results.json"))) if os.path.exists(os.path.join(run, "results.json")) else {}
    fails = {f["class"]: f["example"] for p in res.get("phases", []) for f in p.get("failures", [])}
    check("http-401" in fails and "bad key: Authorization: Bearer ***" in fails["http-401"],
          "the 401's reason is kept, with the key blanked", "http-401", fails)

    # the key echoed in a calibration answer: control's own message is blanked too
    def refuse(head, body):
        msg = json.dumps({"error": {"message": "bad key: " + auth(head)}}).encode()
        return b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" \
            % len(msg) + msg
    with common.canned_server(refuse) as srv:
        r = common.run_strobe("slt", "--url", "http://127.0.0.1:%d" % srv.port, "--model", "m",
                              "--out", os.path.join(tmp, "echoed-cal"), "--tokenizer", "none", env=env)
    check(r.returncode == 1 and "bad key: Authorization: Bearer ***" in r.stderr and key not in r.stdout + r.stderr,
          "a 401 echoing the key at calibration: exit 1, its message printed with the key blanked", 1,
          (r.returncode, r.stderr[-300:]))


def secrets_in_every_chunk(tmp):
    """A server that echoes the API key in a field before the content of every chunk but the
    first, whose field begins as the key does: keyed against it (dataplane/body_key.h), the
    next chunk would hold the key's tail in its own bytes, which no redaction matches. Bodies
    that hold the key are stored whole: no 8-byte piece of the key's tail is in bodies.bin, and
    the analysis reads every chunk."""
    tail = "%d-0123456789abcdef" % os.getpid()
    key = "sk-every-chunk-" + tail
    env = dict(os.environ, STROBE_API_KEY=key)

    def respond(head, body):
        if common.is_probe(body):
            return common.sse_answer(len(body) // 4)
        auth = [l for l in head.split(b"\r\n") if l.lower().startswith(b"authorization:")][0].decode()
        texts = ["w"] * 12  # the same content: the first two chunks differ in the field alone
        # the first chunk's field holds a string that begins as the key does: a body keyed
        # against it would keep the key's tail in its own bytes
        near = "Authorization: Bearer sk-every-chunk-" + "z" * len(tail)
        ev = [{"id": "x", "object": "chat.completion.chunk", "debug": auth if i else near,
               "choices": [{"index": 0, "delta": {"content": t}}]} for i, t in enumerate(texts)]
        ev.append({"id": "x", "object": "chat.completion.chunk", "choices": [],
                   "usage": {"prompt_tokens": len(body) // 4, "completion_tokens": len(texts)}})
        payload = ("".join("data: %s\n\n" % json.dumps(e) for e in ev) + "data: [DONE]\n\n").encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n"
                % len(payload) + payload)

    run = os.path.join(tmp, "every-chunk")
    with common.canned_server(respond) as srv:
        r = common.run_strobe("slt", "--url", "http://127.0.0.1:%d" % srv.port, "--model", "m", "--out", run,
                              "--threads", "1", "--concurrency", "2", "--phase-s", "1", "--ramp-s", "0.2",
                              "--input-tokens", "100", "--output-tokens", "12", "--tokenizer", "none", env=env)
    path = os.path.join(run, "bodies.bin")
    bodies = open(path, "rb").read() if os.path.exists(path) else b""
    pieces = [tail[i:i + 8] for i in range(len(tail) - 7) if tail[i:i + 8].encode() in bodies]
    check(r.returncode == 0 and bodies.count(b"Bearer " + b"*" * len(key)) >= 12 and not pieces,
          "the key echoed before the content of every chunk: blanked whole in each, no piece of it in bodies.bin",
          (0, ">= 12 blanked", []), (r.returncode, bodies.count(b"Bearer " + b"*" * len(key)), pieces[:3]))
    res = json.load(open(os.path.join(run, "results.json"))) if os.path.exists(os.path.join(run, "results.json")) else {}
    ph = (res.get("phases") or [{}])[0]
    check(ph.get("requests_failed_whole_phase") == 0 and ph.get("output_tokens", {}).get("min") == 12,
          "every request of those reads whole (12 tokens each)", 12,
          (ph.get("requests_failed_whole_phase"), ph.get("output_tokens", {}).get("min")))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        fault_campaign(tmp)
        interruptions(tmp)
        hangup_under_nohup(tmp)
        fd_limit(tmp)
        memory_limit(tmp)
        threads_that_cannot_start(tmp)
        tokenizer_out_of_memory(tmp)
        secrets(tmp)
        secrets_echoed(tmp)
        secrets_in_every_chunk(tmp)
        if os.geteuid() == 0:
            full_disk(tmp)
        else:
            print("full disk NOT TESTED: mounting a small tmpfs needs root")
    common.done()
