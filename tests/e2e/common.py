"""Helpers for strobe's end-to-end tests: start strobe-emu on a free loopback port, run
strobe, talk raw HTTP. Standard library only. Every server a test starts is stopped by the
test (context managers), and only loopback addresses are used."""
import contextlib
import http.client
import json
import os
import re
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time

BUILD = os.environ.get("STROBE_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
STROBE = os.environ.get("STROBE_BIN", os.path.join(BUILD, "control", "strobe"))
EMU = os.environ.get("STROBE_EMU_BIN", os.path.join(BUILD, "emu", "strobe-emu"))
DATA = os.path.join(os.path.dirname(__file__), "..", "data")
# real recordings copied into the repository (tests/data/README.md says from where), so a
# fresh clone tests on its own
TRAJ = os.path.join(DATA, "trajectories")
AA_MINI = os.path.join(TRAJ, "aa-agentperf-local", "aa-mini-v1")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=5.0, host="127.0.0.1"):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited at start with status %s" % proc.returncode)
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not listen on port %d" % port)


def start_emulator(*args, host="127.0.0.1"):
    """Starts strobe-emu on a port the kernel picks (--listen HOST:0) and reads the port from
    its start line: a port guessed free could be taken by another process (another test run
    on the same machine) before the emulator binds it. Returns (process, port)."""
    listen = "[%s]:0" % host if ":" in host else "%s:0" % host
    proc = subprocess.Popen([EMU, "--listen", listen, *args], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    m = re.search(r"listening on .*:(\d+), model ", line)
    if not m:
        proc.kill()
        rest = proc.stderr.read()
        proc.wait(10)
        proc.stderr.close()
        raise RuntimeError("strobe-emu did not start: %s" % (line + rest).strip())
    port = int(m.group(1))
    try:
        wait_port(port, proc, host=host)
    except RuntimeError:
        stop_emulator(proc)
        raise
    return proc, port


def stop_emulator(proc):
    proc.terminate()
    proc.wait(10)
    proc.stderr.close()


@contextlib.contextmanager
def emulator(*args, host="127.0.0.1"):
    proc, port = start_emulator(*args, host=host)
    try:
        yield port
    finally:
        stop_emulator(proc)


def capacity(*args):
    out = subprocess.run([EMU, "--capacity", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


# STROBE_TEST_TRANSPORT=uring (tests/e2e/meson.build) runs a test's measuring commands over
# that transport instead of the default one, so one test checks every transport
TRANSPORT = os.environ.get("STROBE_TEST_TRANSPORT")


def with_transport(args):
    """A strobe command line with --transport added when the tests run over another one."""
    if TRANSPORT and args and args[0] in ("slt", "agents") and "--transport" not in args:
        return [*args, "--transport", TRANSPORT]
    return list(args)


def run_strobe(*args, timeout=600, env=None):
    return subprocess.run([STROBE, *with_transport(args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def post(port, path, body, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def get(port, path, host="127.0.0.1"):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def parse_metrics(text):
    """Prometheus text as {series: value}; a labelled series keeps its labels in its key
    ('strobe_emu_faults_injected_total{kind="reset"}')."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def emu_metrics(port, host="127.0.0.1"):
    """strobe-emu's own counters (GET /metrics): the server's side of what strobe reports."""
    status, data = get(port, "/metrics", host=host)
    if status != 200:
        raise RuntimeError("strobe-emu's /metrics answered %d" % status)
    return parse_metrics(data.decode())


def emu_received(m):
    """Generation requests the emulator received (parsed), from emu_metrics()."""
    return int(m["strobe_emu_requests_total"])


def emu_faults(m):
    """Faults the emulator injected, by kind (reset, http500, ...), from emu_metrics()."""
    pre = 'strobe_emu_faults_injected_total{kind="'
    return {k[len(pre):-2]: int(v) for k, v in m.items() if k.startswith(pre)}


# strobe's failure class for each emulator fault that fails a request whatever the timeouts;
# stall and endless-headers fail one only when they outlast --idle-timeout-s and
# --request-timeout-s (idle-timeout and timeout), slow-first-byte only past both
FAULT_CLASS = {"reset": "connection-reset", "http500": "http-500", "http503": "http-503",
               "http429": "http-429", "malformed": "malformed-chunk", "error-event": "error-event"}


def calibration_probes(res):
    """Calibration requests strobe slt sends before its phases (each answered at its first
    try, as a server without faults does): with a tokenizer one probe measures the chat
    template and a second confirms; without one, three probes fit the slope."""
    return 2 if "server_prompt_tokens_confirmed" in res["run"]["calibration"] else 3


def sent_whole_run(res):
    """Requests strobe sent over all its phases (ramp, window and drain), and how many of
    them it sent a second time on a new connection."""
    ph = res["phases"]
    return (sum(p["requests_sent_whole_phase"] for p in ph),
            sum(p["requests_retried_on_new_connection_whole_phase"] for p in ph))


def check_received(what, res, m, probes):
    """The emulator (its metrics m) received exactly what strobe says it sent: every request
    of every phase (ramp, window, drain), `probes` requests before the phases (calibration,
    agents' ignore_eos probe), and once more each request strobe sent again on a new
    connection."""
    sent, retried = sent_whole_run(res)
    got = emu_received(m)
    check(got == sent + retried + probes,
          "%s: the emulator received what strobe sent (%d over the phases + %d retried + %d "
          "before them)" % (what, sent, retried, probes), sent + retried + probes, got)


def check_faults(what, ph, m, timeouts):
    """A run's one phase (ph) against the faults the emulator (its metrics m) injected, all
    on measured requests (no calibration probe drew one). `timeouts` gives the class of each
    fault that fails a request by outlasting a timeout ({"stall": "idle-timeout", ...});
    slow-first-byte must fail none. Over the phase, the failures are exactly the injected
    failing faults (a request sent again on a new connection failed its first try by one).
    strobe gives failures by class for the window only: each class's count there is at most
    its kind's fault count, and short of it by at most the failures outside the window."""
    faults = emu_faults(m)
    kinds = dict(FAULT_CLASS, **timeouts)
    injected = sum(faults[k] for k in kinds)
    failed, retried = ph["requests_failed_whole_phase"], ph["requests_retried_on_new_connection_whole_phase"]
    check(failed + retried == injected,
          "%s: the phase's failures (+ retried) are the faults the emulator injected" % what,
          injected, (failed, retried, faults))
    window = {f["class"]: f["requests"] for f in ph["failures"]}
    check(set(window) <= set(kinds.values()),
          "%s: every failure class in the window is one an injected fault explains" % what,
          sorted(set(kinds.values())), sorted(window))
    outside = failed - ph["requests_failed"]
    for kind, cls in sorted(kinds.items()):
        n = window.get(cls, 0)
        if n == 0 and faults[kind] == 0:
            continue  # a kind not injected, and its class not seen
        check(n <= faults[kind] <= n + outside,
              "%s: %s in the window (%d) are the emulator's %s faults, give or take the %d "
              "failures outside the window" % (what, cls, n, kind, outside),
              "%d..%d" % (n, n + outside), faults[kind])


def skip_unless_dpdk(why_root, emulator_too=False):
    """Exits 77 (skipped) unless this is root and strobe (and, when asked, strobe-emu) was
    built with DPDK and lwIP."""
    if os.geteuid() != 0:
        print("SKIP: %s need root" % why_root)
        raise SystemExit(77)
    probe = run_strobe("slt", "--out", "/nonexistent/x", "--transport", "dpdk", "--threads", "1",
                       "--local-ip", "10.0.0.2")
    lacking = "built without DPDK" in probe.stderr
    if emulator_too:
        emu = subprocess.run([EMU, "--transport", "dpdk"], capture_output=True, text=True)
        lacking = lacking or "built without DPDK" in emu.stderr
    if lacking:
        print("SKIP: strobe%s was built without DPDK and lwIP" % (" or strobe-emu" if emulator_too else ""))
        raise SystemExit(77)


def check_exact_streams(what, ph, conc, tokens=30):
    """A phase of `conc` streams against strobe-emu with --ignore-eos and `tokens` output
    tokens: none failed, every answer exactly `tokens` by usage, and every chunk's text what
    the emulator sent, in order (the tokenizer's count against the emulator's truth)."""
    out, c = ph["output_tokens"], ph["tokens_per_chunk"]
    truth = c.get("against_emulator_truth", {})
    check(ph["requests_sent_whole_phase"] >= conc and ph["requests_failed_whole_phase"] == 0,
          "%s: %d concurrent streams, none failed" % (what, conc), (">= %d" % conc, 0),
          (ph["requests_sent_whole_phase"], ph["requests_failed_whole_phase"], ph["failures"]))
    check(out["min"] == tokens and out["max"] == tokens and ph["requests_output_estimated"] == 0,
          "%s: every answer exactly %d tokens by usage" % (what, tokens), (tokens, tokens, 0),
          (out["min"], out["max"], ph["requests_output_estimated"]))
    check(truth.get("chunks_compared") == c["chunks"] > 0 and truth.get("chunks_differing") == 0,
          "%s: every chunk's text is what the emulator sent (bytes intact, in order)" % what, 0,
          truth)


def event_body(bodies, off, length, c):
    """A record's body from bodies.bin's bytes: an event's keyed body (its c's top bit,
    dataplane/body_key.h) put together from its key's bytes and its own."""
    stored = bodies[off:off + length]
    if c >= 0 or length < 16:
        return stored
    key_off, key_len, prefix, suffix = struct.unpack_from("<QIHH", stored, 0)
    key = bodies[key_off:key_off + key_len]
    return key[:prefix] + stored[16:] + key[key_len - suffix:]


def sse_events(data):
    """Data payloads of an SSE body."""
    out = []
    for block in data.decode().split("\n\n"):
        lines = [l[6:] for l in block.split("\n") if l.startswith("data: ")]
        if lines:
            out.append("\n".join(lines))
    return out


def normalise(text):
    """Blanks what legitimately differs between runs: ids, creation time, truth stamps."""
    text = re.sub(r'"created":\d+', '"created":0', text)
    text = re.sub(r'"x_emu_(sent|sched)_ns":\d+', r'"x_emu_\1_ns":0', text)
    text = re.sub(r'-emu-\d+"', '-emu-N"', text)
    return text


def read_request(sock, buf):
    """One HTTP request from sock: (head, body, rest), or (None, None, b"") at EOF."""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return None, None, b""
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(rest) < length:
        d = sock.recv(65536)
        if not d:
            return None, None, b""
        rest += d
    return head, rest[:length], rest[length:]


def sse_answer(prompt_tokens, texts=("alpha", " beta", " gamma"), headers=b"Content-Type: text/event-stream\r\n"):
    """A whole streamed chat answer (Content-Length framing): one event per text, usage, [DONE]."""
    ev = [{"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": t}}]}
          for t in texts]
    ev.append({"id": "x", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(texts)}})
    payload = ("".join("data: %s\n\n" % json.dumps(e) for e in ev) + "data: [DONE]\n\n").encode()
    return b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: %d\r\n\r\n" % len(payload) + payload


def is_probe(body):
    """strobe's calibration probes ask for one output token."""
    try:
        return json.loads(body).get("max_tokens") == 1
    except ValueError:
        return False


class _Canned(socketserver.BaseRequestHandler):
    def handle(self):
        buf = b""
        while True:
            head, body, buf = read_request(self.request, buf)
            if head is None:
                return
            self.server.requests.append((head, body))
            self.request.sendall(self.server.respond(head, body))


class _CannedServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@contextlib.contextmanager
def canned_server(respond):
    """A loopback HTTP/1.1 server (keep-alive) answering each request with respond(head, body)
    (the whole response's bytes); .requests records (head, body) of each, .port is its port."""
    srv = _CannedServer(("127.0.0.1", 0), _Canned)
    srv.respond = respond
    srv.requests = []
    srv.port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def lateness_s(phase):
    """How late the emulator sent its chunks in a phase (its send - schedule p99, in seconds,
    from the truth stamps strobe records). On a busy machine the emulator wakes late: real
    server time that a client rightly measures, but that no closed form holds. Accuracy
    checks against the closed forms allow this much on top of their tolerance, so they stay
    tight on an idle machine and hold on a loaded one."""
    pace = phase.get("emulator_send_minus_schedule_us") or {}
    return max(pace.get("p99") or 0, 0) / 1e6


# Sanitizer builds run instrumented code several times slower: tests still check
# correctness there, but not timing accuracy (the optimised build checks that).
TIMING = os.environ.get("STROBE_SANITIZED") != "1"

failures = []


def check(cond, what, expected, got):
    """One check: on failure, says what was expected and what came instead."""
    if cond:
        print("ok   " + what)
    else:
        print("FAIL %s: expected %s, got %s" % (what, expected, got))
        failures.append(what)


def done():
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all checks passed")
