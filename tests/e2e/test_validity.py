"""Run validity and the exit status, and the rules a run keeps whatever its flags:
a run that measured nothing (a server that never answers, streams without end, or fails every
request: 401, 502, a JSON 200, a gzip body) is not valid and exits 4 with one sentence, whose
failure class is on a failure line; a final usage no stream can have (negative, zero for visible
output, 2^62) fails its request, vLLM's early zero does not; tokens of failed requests count in
no throughput; empty distributions are n/a (table) and null (JSON);
an agents window opens only after every agent has started (the warm-up is extended, said and
recorded); AA's fractional-millisecond delays are accepted; --threads is capped at the cores;
--out is checked before anything starts; SIGINT during calibration says what happened, and
during the final analysis stops it; a server that dies mid-phase does not hang the run, and
the verdict names its failure classes with their counts, the most common first; the built-in
emulator dying mid-run stops the run at once as an error (exit 1) that says how it died."""
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

import common
from common import check


def chunk(obj):
    return ("data: %s\n\n" % json.dumps(obj)).encode()


def stream_body(n_words, words=3, completion_tokens=None, early_usage=False):
    """completion_tokens: the final usage's count (words when None); early_usage: vLLM's usage
    with completion_tokens 0 on the role chunk, before the real count."""
    role = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    if early_usage:
        role["usage"] = {"prompt_tokens": n_words + 12, "completion_tokens": 0}
    out = [chunk(role)]
    for i in range(words):
        out.append(chunk({"object": "chat.completion.chunk",
                          "choices": [{"index": 0, "delta": {"content": " w%d" % i}}]}))
    final = words if completion_tokens is None else completion_tokens
    out.append(chunk({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": n_words + 12, "completion_tokens": final}}))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


# a final usage.completion_tokens no stream of three words can have
BAD_USAGE = {"usage-negative": -5, "usage-zero": 0, "usage-huge": 2 ** 62}


class Handler(socketserver.BaseRequestHandler):
    """Answers calibration probes (max_tokens 1) properly; every other request per `mode`."""
    mode = "ok"

    def send_stream(self, payload):
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(payload) + payload)

    def handle(self):
        buf = b""
        try:
            while True:
                head, body, buf = common.read_request(self.request, buf)
                if head is None:
                    return
                req = json.loads(body)
                text = json.dumps(req.get("messages", req.get("prompt", "")))
                n_words = len(text.split())
                mode = self.mode if req.get("max_tokens") != 1 else "ok"
                if mode == "401-then-502":
                    # the first class to occur (listed first) is not the most common one
                    mode = "401" if self.server.count() == 0 else "502"
                if mode == "ok":
                    self.send_stream(stream_body(n_words))
                elif mode in BAD_USAGE:
                    self.send_stream(stream_body(n_words, completion_tokens=BAD_USAGE[mode]))
                elif mode == "usage-vllm":
                    self.send_stream(stream_body(n_words, early_usage=True))
                elif mode == "hang":
                    time.sleep(30)
                    return
                elif mode == "endless":
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                         b"Transfer-Encoding: chunked\r\n\r\n")
                    end = time.time() + 30
                    while time.time() < end:
                        c = chunk({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": " x"}}]})
                        self.request.sendall(b"%x\r\n%s\r\n" % (len(c), c))
                        time.sleep(0.02)
                    return
                elif mode in ("401", "502"):
                    err = b'{"error":{"message":"refused by the test server"}}'
                    self.request.sendall(b"HTTP/1.1 %s Nope\r\nContent-Type: application/json\r\n"
                                         b"Content-Length: %d\r\n\r\n" % (mode.encode(), len(err)) + err)
                elif mode == "json200":
                    ans = json.dumps({"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                                      "usage": {"prompt_tokens": 5, "completion_tokens": 1}}).encode()
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                         b"Content-Length: %d\r\n\r\n" % len(ans) + ans)
                elif mode == "gzip":
                    import gzip
                    z = gzip.compress(stream_body(n_words))
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                         b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(z) + z)
                elif mode == "cut":
                    # five answer tokens, then the connection dies mid-response: a failed request
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                         b"Transfer-Encoding: chunked\r\n\r\n")
                    for i in range(5):
                        c = chunk({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": " t%d" % i}}]})
                        self.request.sendall(b"%x\r\n%s\r\n" % (len(c), c))
                        time.sleep(0.01)
                    return
        except (BrokenPipeError, ConnectionResetError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    served = 0
    lock = threading.Lock()

    def count(self):
        """How many measured requests this server answered before this one."""
        with self.lock:
            n, self.served = self.served, self.served + 1
        return n


def serve(mode):
    handler = type("H", (Handler,), {"mode": mode})
    srv = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def slt_against(mode, run, *extra):
    srv = serve(mode)
    try:
        return common.run_strobe("slt", "--url", "http://127.0.0.1:%d" % srv.server_address[1],
                                 "--model", "m", "--out", run, "--concurrency", "1", "--phase-s", "1",
                                 "--ramp-s", "0.3", "--drain-s", "1.5", "--idle-timeout-s", "20",
                                 "--request-timeout-s", "20", "--tokenizer", "none", "--threads", "1",
                                 *extra, timeout=120)
    finally:
        srv.shutdown()
        srv.server_close()


def runs_that_measured_nothing(tmp):
    r = slt_against("ok", os.path.join(tmp, "ok"))
    res = json.load(open(os.path.join(tmp, "ok", "results.json")))
    check(r.returncode == 0 and res["validity"]["valid"] and r.stdout.startswith("valid: yes"),
          "a server that answers: exit 0, valid, and the table says so first", 0,
          (r.returncode, res["validity"], r.stdout[:80]))
    for mode, what in (("hang", "accepts and never answers"), ("endless", "streams without end"),
                       ("401", "answers 401"), ("502", "answers 502"),
                       ("json200", "answers a JSON 200"), ("gzip", "answers a gzip body"),
                       ("cut", "cuts every stream after five tokens")):
        run = os.path.join(tmp, mode)
        r = slt_against(mode, run)
        res = json.load(open(os.path.join(run, "results.json"))) if os.path.exists(os.path.join(run, "results.json")) else {}
        v = res.get("validity", {})
        sentence = [l for l in r.stderr.splitlines() if "the run is not valid" in l]
        check(r.returncode == 4 and not v.get("valid", True) and v.get("why_not_valid") and
              len(sentence) == 1 and sentence[0].endswith("."),
              "a server that %s: exit 4, not valid, one sentence why" % what, 4,
              (r.returncode, v.get("why_not_valid"), r.stderr[-300:]))
        check("valid: NO" in r.stdout.splitlines()[0] if r.stdout else False,
              "%s: the table's first line says not valid" % mode, "valid: NO ...", r.stdout[:120])
        ph = res.get("phases", [{}])[0]
        failures_shown(mode, r, res)
        if mode in ("hang", "cut", "401"):
            check(ph.get("system_output_tokens_per_s") == 0,
                  "%s: tokens of failed requests count in no throughput" % mode, 0,
                  ph.get("system_output_tokens_per_s"))
            ttft = ph.get("ttft_s", {})
            row = [l for l in r.stdout.splitlines() if l.strip().startswith("0 ")]
            check(ttft.get("n") == 0 and ttft.get("p50") is None and row and "n/a" in row[0],
                  "%s: an empty TTFT distribution is null in JSON and n/a in the table" % mode,
                  "null, n/a", (ttft, row[:1]))


def verdict_classes(why):
    """The failure classes a verdict names with their counts, as [(class, count), ...], from
    "... failed (connect: 84, connection-reset: 4)"; [] when it names none."""
    if "failed (" not in why and "completed (" not in why:
        return []
    inside = why.rsplit("(", 1)[1].rstrip(")")
    return [(m.group(1), int(m.group(2))) for m in re.finditer(r"([\w-]+): (\d+)", inside)]


def failures_shown(mode, r, res):
    """A verdict that some requests failed names their classes with their counts, the most
    common first, as results.json counts them (the window's, or the whole phase's when they
    failed in the ramp or drain), and its first class is on a failure line of the table."""
    why = res.get("validity", {}).get("why_not_valid") or ""
    named = verdict_classes(why)
    if not named:
        return
    ph = res["phases"][0]
    whole = "all %d of its requests failed" % ph["requests_sent_whole_phase"] in why
    counted = {f["class"]: f["requests"] for f in ph["failures_whole_phase" if whole else "failures"]}
    counts = [n for _, n in named]
    check(all(counted.get(c) == n for c, n in named) and counts == sorted(counts, reverse=True) and
          counts[0] == max(counted.values()),
          "%s: the verdict names the failure classes with results.json's counts, the most common "
          "first" % mode, sorted(counted.items(), key=lambda kv: -kv[1]), why)
    cls = named[0][0]
    lines = [l for l in r.stdout.splitlines() if "failures" in l and cls in l]
    check(lines, "%s: the verdict's first failure class (%s) is on a failure line" % (mode, cls),
          cls, r.stdout[-400:])


def most_common_class_first(tmp):
    """A phase whose first request fails as http-401 and every later one as http-502: the
    verdict names http-502 first, with its count, not the class that happened to occur first."""
    run = os.path.join(tmp, "401-then-502")
    r = slt_against("401-then-502", run)
    res = json.load(open(os.path.join(run, "results.json")))
    ph = res["phases"][0]
    why = res["validity"].get("why_not_valid") or ""
    n = ph["requests_sent_whole_phase"]
    want = "all %d of its requests failed (http-502: %d, http-401: 1)" % (n, n - 1)
    check(r.returncode == 4 and n >= 2 and want in why and want in r.stderr,
          "all of a phase's requests failed: the verdict names the most common class first, "
          "with the counts", want, (r.returncode, why))
    failures_shown("401-then-502", r, res)


def impossible_usage(tmp):
    """A server whose final usage no stream can have (negative, 0 tokens for visible output,
    2^62) fails its requests as bad-usage: never a negative or absurd speed, exit 4; vLLM's
    completion_tokens 0 on an early chunk before the real count is fine."""
    for mode, n in sorted(BAD_USAGE.items()):
        run = os.path.join(tmp, mode)
        r = slt_against(mode, run)
        res = json.load(open(os.path.join(run, "results.json")))
        ph = res["phases"][0]
        classes = {f["class"] for f in ph["failures_whole_phase"]}
        speed = ph["output_speed_tokens_per_s"]
        check(r.returncode == 4 and not res["validity"]["valid"] and classes == {"bad-usage"} and
              ph["requests_succeeded_whole_phase"] == 0 and "bad-usage" in r.stdout,
              "usage.completion_tokens %d: every request fails as bad-usage, not valid, exit 4" % n,
              (4, {"bad-usage"}), (r.returncode, classes, res["validity"].get("why_not_valid")))
        check(ph["system_output_tokens_per_s"] >= 0 and (speed["p50"] is None or speed["p50"] >= 0),
              "usage.completion_tokens %d: no negative throughput or speed" % n, ">= 0",
              (ph["system_output_tokens_per_s"], speed["p50"]))
        failures_shown(mode, r, res)
    run = os.path.join(tmp, "usage-vllm")
    r = slt_against("usage-vllm", run)
    res = json.load(open(os.path.join(run, "results.json")))
    check(r.returncode == 0 and res["validity"]["valid"],
          "usage with completion_tokens 0 on the role chunk, the real count last (vLLM): valid",
          0, (r.returncode, res["validity"].get("why_not_valid")))


def agents(tmp, name, *args):
    out = os.path.join(tmp, name)
    r = common.run_strobe("agents", "--trajectories", common.AA_MINI, "--out", out,
                          "--slo-speed", "1", "--slo-ttft", "100", "--threads", "1",
                          "--min-trajectories", "0", "--min-per-agent", "0", "--tool-time", "0.05",
                          "--tokenizer", "none", "--emu-args", "--step-us 500", *args, timeout=300)
    res = json.load(open(os.path.join(out, "results.json"))) if os.path.exists(os.path.join(out, "results.json")) else {}
    return r, res


def window_after_every_start(tmp):
    # 4 agents spread over 3 s: the last starts 2.25 s in, after a 0.5 s warm-up
    r, res = agents(tmp, "stagger", "--start-agents", "4", "--max-agents", "4", "--stagger-s", "3",
                    "--warmup-s", "0.5", "--window-s", "1")
    it = (res.get("iterations") or [{}])[0]
    check(r.returncode == 0 and it.get("warmup_extended") is True and it.get("warmup_s", 0) >= 2.25,
          "agents: the window opens only after every agent has started (warm-up extended and "
          "recorded)", ">= 2.25 s, extended", (r.returncode, it.get("warmup_s"), it.get("warmup_extended"),
                                                r.stderr[-300:]))
    check("warm-up is extended" in r.stderr, "agents: the extension is said in a line", True, r.stderr[-400:])
    r, res = agents(tmp, "nostagger", "--start-agents", "2", "--max-agents", "2", "--stagger-s", "0.2",
                    "--warmup-s", "1", "--window-s", "1")
    it = (res.get("iterations") or [{}])[0]
    check(r.returncode == 0 and it.get("warmup_extended") is False and 1.0 <= it.get("warmup_s", 0) < 30,
          "agents: a stagger inside the warm-up keeps the warm-up as given", "1 s, not extended",
          (r.returncode, it.get("warmup_s"), it.get("warmup_extended")))


def fractional_delays(tmp):
    d = os.path.join(tmp, "aa-fractional")
    shutil.copytree(common.AA_MINI, d)
    man = json.load(open(os.path.join(d, "manifest.json")))
    for t in man["tasks"]:
        t["total_recorded_tool_delay_ms"] = 351.825774
    json.dump(man, open(os.path.join(d, "manifest.json"), "w"))
    trace = os.path.join(d, man["tasks"][0]["trace"])
    lines = [json.loads(l) for l in open(trace) if l.strip()]
    for l in lines:
        l["simulated_tool_delay_ms_after"] = 12.5
    open(trace, "w").write("".join(json.dumps(l) + "\n" for l in lines))
    out = os.path.join(tmp, "frac-run")
    r = common.run_strobe("agents", "--trajectories", d, "--out", out, "--slo-speed", "1",
                          "--slo-ttft", "100", "--threads", "1", "--start-agents", "1",
                          "--max-agents", "1", "--warmup-s", "0.2", "--window-s", "1",
                          "--stagger-s", "0", "--min-trajectories", "0", "--min-per-agent", "0",
                          "--tokenizer", "none", "--emu-args", "--step-us 500", timeout=300)
    check(r.returncode == 0, "AA's fractional-millisecond delays are accepted", 0, r.stderr[-300:])
    man["tasks"][0]["total_recorded_tool_delay_ms"] = -0.5
    json.dump(man, open(os.path.join(d, "manifest.json"), "w"))
    r = common.run_strobe("agents", "--trajectories", d, "--out", out + "2", "--slo-speed", "1",
                          "--slo-ttft", "100")
    check(r.returncode == 2 and "must be a number of milliseconds from 0 to 1e12" in r.stderr,
          "a negative delay is refused by name", 2, r.stderr[-300:])


def threads_and_out(tmp):
    cores = len(os.sched_getaffinity(0))
    r = common.run_strobe("slt", "--out", os.path.join(tmp, "t"), "--threads", str(cores + 1))
    check(r.returncode == 2 and ("give 1 to %d" % cores) in r.stderr,
          "--threads above the cores is refused with a sentence", 2, r.stderr[-200:])
    f = os.path.join(tmp, "a-file")
    open(f, "w").write("x")
    for out, word in ((f, "is not a directory"), (os.path.join(tmp, "ok"), "already holds a run"),
                      (os.path.join(tmp, "no", "such"), "does not exist")):
        r = common.run_strobe("slt", "--out", out)
        check(r.returncode == 2 and word in r.stderr and "emulator" not in r.stderr,
              "--out checked before the emulator starts: %s" % word, 2, r.stderr[-200:])


def sigint_during_calibration(tmp):
    srv = serve("ok")
    # a server that accepts and never answers: calibration waits on it
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    run = os.path.join(tmp, "calib")
    p = subprocess.Popen([common.STROBE, "slt", "--url", "http://127.0.0.1:%d" % hang.getsockname()[1],
                          "--model", "m", "--out", run, "--tokenizer", "none"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    hang.close()
    srv.shutdown()
    srv.server_close()
    check(p.returncode == 3 and "interrupted during calibration" in err and not os.path.exists(run),
          "SIGINT during calibration: exit 3, says so, writes no run", 3, (p.returncode, err[-300:]))


class StderrLines:
    """Reads a process's stderr on a thread, so that a test waits for a line, never a fixed
    time, and never hangs on a process that stops writing."""

    def __init__(self, proc):
        self.lines, self.cond = [], threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self.thread.start()

    def _read(self, f):
        for line in f:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait(self, pattern, timeout):
        """The first line matching the regular expression, or None after timeout seconds."""
        end = time.time() + timeout
        with self.cond:
            while True:
                hit = next((l for l in self.lines if re.search(pattern, l)), None)
                if hit or time.time() >= end:
                    return hit
                self.cond.wait(min(0.5, end - time.time()))

    def text(self):
        self.thread.join(10)
        with self.cond:
            return "".join(self.lines)


def finish(p, err, timeout=120):
    """(stdout, stderr, exit status, seconds it took) once p has ended. Its stdout (the table)
    is read after the end: it fits in a pipe, and StderrLines alone reads stderr."""
    t0 = time.time()
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    took = time.time() - t0
    out = p.stdout.read()
    p.stdout.close()
    return out, err.text(), p.returncode, took


# eight streams of 4 s each, a progress line every 0.2 s to wait on: a kill lands mid-phase
DYING = ["--output-tokens", "2000", "--ignore-eos", "--threads", "1", "--tokenizer", "none", "--progress-s", "0.2"]
STREAMING = r"in flight [1-9]"


def server_dies_mid_phase(tmp):
    """A server (strobe-emu at --url) killed mid-phase: every new connect is refused at once.
    strobe must not spin on failing starts: the phase ends on time, the run is not valid, and
    the verdict names the refused connects, the most common class, first."""
    run = os.path.join(tmp, "dies")
    emu, port = common.start_emulator("--step-us", "2000")
    p = subprocess.Popen([common.STROBE, "slt", "--url", "http://127.0.0.1:%d" % port, "--model",
                          "strobe-emu", "--out", run, "--concurrency", "8", "--phase-s", "4",
                          "--ramp-s", "0.5", "--drain-s", "2", *DYING],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = StderrLines(p)
    streaming = err.wait(STREAMING, 60)
    emu.kill()
    emu.wait(10)
    emu.stderr.close()
    out, text, rc, took = finish(p, err)
    refused = "refused: is the server running?" in out
    check(streaming and rc == 4 and refused and took < 60,
          "a server that dies mid-phase: the phase still ends, refused connects are failures, exit 4",
          "exit 4 within the phase and drain", (rc, "%.1f s" % took, text[-300:]))
    res = json.load(open(os.path.join(run, "results.json"))) if os.path.exists(os.path.join(run, "results.json")) else {}
    ph = (res.get("phases") or [{}])[0]
    counted = {f["class"]: f["requests"] for f in ph.get("failures_whole_phase", [])}
    why = res.get("validity", {}).get("why_not_valid") or ""
    check(verdict_classes(why)[:1] == [("connect", counted.get("connect"))],
          "a server that dies mid-phase: the verdict names the refused connects first, with their "
          "count", "(connect: %s, ...)" % counted.get("connect"), why)
    failures_shown("dies", subprocess.CompletedProcess([], rc, out, text), res)


def builtin_emulator_dies(tmp):
    """The built-in emulator killed (SIGKILL) in the first of three long phases: strobe says at
    once that it exited and how, stops the run there (the later phases are not run against a
    closed port), keeps and computes what it measured, and exits 1 with the reason."""
    run = os.path.join(tmp, "emu-dies")
    p = subprocess.Popen([common.STROBE, "slt", "--out", run, "--concurrency", "8,16,32",
                          "--phase-s", "20", "--ramp-s", "0.5", "--drain-s", "2",
                          "--emu-args", "--step-us 2000", *DYING],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = StderrLines(p)
    streaming = err.wait(STREAMING, 60)
    kids = subprocess.run(["pgrep", "-P", str(p.pid), "-x", "strobe-emu"], capture_output=True,
                          text=True).stdout.split()
    t_kill = time.time()
    for k in kids:
        os.kill(int(k), signal.SIGKILL)
    said = err.wait(r"^strobe: the built-in emulator \(strobe-emu\) exited during the run: "
                    r"killed by signal 9", 30)
    out, text, rc, _ = finish(p, err, timeout=200)
    took = time.time() - t_kill  # the run left would take over 40 s
    check(streaming and len(kids) == 1 and said,
          "the built-in emulator killed mid-run: strobe says at once that it exited, and how",
          "strobe: the built-in emulator (strobe-emu) exited during the run: killed by signal 9 ...",
          (kids, text[-400:]))
    res = json.load(open(os.path.join(run, "results.json"))) if os.path.exists(os.path.join(run, "results.json")) else {}
    phases = [ph["phase"] for ph in res.get("phases", [])]
    reason = [l for l in text.splitlines() if l.startswith("strobe slt: the built-in emulator")]
    check(rc == 1 and phases == [0] and res.get("interrupted") and len(reason) == 1 and
          "killed by signal 9" in reason[0] and "(INCOMPLETE: the built-in emulator exited)" in out and
          took < 30,
          "the built-in emulator killed mid-run: the run stops in that phase, results kept, exit 1 "
          "with the reason", (1, [0], "< 30 s"),
          (rc, phases, res.get("interrupted"), "%.1f s" % took, reason, out[-200:]))
    why = res.get("validity", {}).get("why_not_valid") or ""
    check("built-in emulator exited" in why,
          "the built-in emulator killed mid-run: the validity sentence names it as a possible cause",
          "stopped early (interrupted, or its built-in emulator exited)", why)


def drain_cut(tmp):
    """Requests still streaming when the drain ends are cut as drain-limit, and their failure
    line says how to let them finish."""
    run = os.path.join(tmp, "drain")
    r = common.run_strobe("slt", "--out", run, "--concurrency", "2", "--phase-s", "1", "--ramp-s", "0.2",
                          "--drain-s", "0.5", "--output-tokens", "2000", "--ignore-eos", "--threads", "1",
                          "--tokenizer", "none", "--emu-args", "--step-us 2000", timeout=120)
    res = json.load(open(os.path.join(run, "results.json")))
    ph = res["phases"][0]
    cut = [f for f in ph["failures"] + ph["failures_whole_phase"] if f["class"] == "drain-limit"]
    check(cut and all("--drain-s" in f["example"] for f in cut),
          "requests cut by the drain: drain-limit, the example says to raise --drain-s",
          "--drain-s", (r.returncode, ph["failures"], ph["failures_whole_phase"]))


def sigint_during_analysis(tmp):
    """Ctrl-C while the results are computed stops the analysis at once; the log is complete,
    and `strobe analyze` computes the same results later."""
    run = os.path.join(tmp, "analysis")
    p = subprocess.Popen([common.STROBE, "slt", "--out", run, "--threads", "1", "--concurrency", "64",
                          "--phase-s", "8", "--ramp-s", "0.5", "--input-tokens", "100",
                          "--output-tokens", "300", "--ignore-eos", "--tokenizer", "none",
                          "--emu-args", "--step-us 500 --max-batch 4000 --prefill-tps 100000000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = []
    for line in p.stderr:
        err.append(line)
        if "computing the results from the event log" in line:
            p.send_signal(signal.SIGINT)
            break
    try:
        out, rest = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, rest = p.communicate()
    err = "".join(err) + rest
    check(p.returncode == 3 and "analysis stopped" in err and ("strobe analyze " + run) in err,
          "Ctrl-C during the final analysis stops it and says how to finish it", 3,
          (p.returncode, err[-300:]))
    a = common.run_strobe("analyze", run)
    check(a.returncode == 0 and os.path.exists(os.path.join(run, "results.json")),
          "the interrupted analysis is done later by strobe analyze", 0, (a.returncode, a.stderr[-200:]))


def main():
    tmp = tempfile.mkdtemp(prefix="strobe-validity-")
    try:
        runs_that_measured_nothing(tmp)
        impossible_usage(tmp)
        most_common_class_first(tmp)
        server_dies_mid_phase(tmp)
        builtin_emulator_dies(tmp)
        threads_and_out(tmp)
        sigint_during_calibration(tmp)
        sigint_during_analysis(tmp)
        drain_cut(tmp)
        fractional_delays(tmp)
        window_after_every_start(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    common.done()


if __name__ == "__main__":
    main()
