"""HTTP/1.1 response cases through strobe's real worker path, against a canned server on
loopback: chunked bodies with chunk extensions and trailers, Content-Length bodies,
bodies ended by Connection: close, keep-alive reuse, and events dribbled a byte at a time;
and two misbehaving servers: a second response glued to the first in the same write (it is not
the request's: it must not add events, and the connection must not be reused), and a status
line whose status is not one (HTTP/1.1 00), which must fail as http-parse, not succeed; the
same status line answering the calibration probe (the one-shot client shares the workers'
response parsing) fails calibration saying so, exit 1.
Large events: a 300 KB tool-call chunk arrives whole in the event log; with a small
--max-event-bytes the request fails as event-too-long, naming the flag.
Kept-alive connections the server closes: one that closes after every response while
advertising keep-alive (llama-server), at concurrency 1 and 4, and one that closes
connections idle for 0.3 s: every request succeeds; a request sent on a connection that turns
out dead is sent once more on a new one, and counted."""
import contextlib
import errno
import functools
import json
import os
import socket
import socketserver
import struct
import sys
import tempfile
import threading
import time

import common
from common import check


def sse_body(prompt_tokens, completion_tokens=3):
    ev = []
    ev.append({"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    for w in ("alpha", " beta", " gamma"):
        ev.append({"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": w}}]})
    ev.append({"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    ev.append({"id": "x", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}})
    text = "".join("data: %s\r\n\r\n" % json.dumps(e) for e in ev) + ": done soon\r\n\r\ndata: [DONE]\r\n\r\n"
    return text.encode()


TOOL_ARGS = 300 * 1000


@functools.lru_cache(maxsize=None)
def tool_chunk():
    """A chunk carrying 300 KB of tool-call arguments (JSON-escaped), the same every time."""
    words = ("alpha", "beta", "gamma", "delta", "path", "src/main.c", "{\\\"k\\\": 1}", "line\\n")
    out, n, i = [], 0, 0
    while n < TOOL_ARGS:
        out.append(words[(i * 7 + i // 5) % len(words)] + " ")
        n += len(out[-1])
        i += 1
    args = "".join(out)[:TOOL_ARGS].rstrip("\\")  # never end inside an escape
    return ('{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":'
            '[{"index":0,"function":{"arguments":"%s"}}]}}]}' % args)


@functools.lru_cache(maxsize=None)
def tool_body(prompt_tokens):
    ev = [json.dumps({"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {
        "role": "assistant", "tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                             "function": {"name": "write_file", "arguments": ""}}]}}]}),
          tool_chunk(),
          json.dumps({"id": "x", "object": "chat.completion.chunk",
                      "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
          json.dumps({"id": "x", "object": "chat.completion.chunk", "choices": [],
                      "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 3}})]
    return ("".join("data: %s\n\n" % e for e in ev) + "data: [DONE]\n\n").encode()


def read_log(run):
    """The event log's records (dicts) and bodies.bin."""
    raw = open(os.path.join(run, "events.bin"), "rb").read()
    hl = struct.unpack_from("<I", raw, 12)[0]
    names = ("type", "ts_source", "worker", "len", "req_id", "t", "t2", "off", "a", "b", "c")
    recs = [dict(zip(names, struct.unpack_from("<BBHIQqqQqqq", raw, at)))
            for at in range(16 + hl, len(raw) - 63, 64)]
    return recs, open(os.path.join(run, "bodies.bin"), "rb").read()


REC_SENT, REC_EVENT, REC_END, REC_RETRY = 1, 2, 3, 8


def with_length(payload):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n"
            % len(payload) + payload)


class Handler(socketserver.BaseRequestHandler):
    mode = "chunked"

    def handle(self):
        buf = b""
        self.server.connections += 1
        if self.server.mode == "idleclose":
            self.request.settimeout(0.3)  # a connection idle this long is closed
        while True:
            try:
                _, body, buf = common.read_request(self.request, buf)
            except socket.timeout:
                return
            if body is None:
                return
            self.server.requests += 1
            payload = sse_body(len(body) // 4)
            mode = self.server.mode
            probe = b'"max_tokens":1,' in body or b'"max_tokens":1}' in body
            if mode == "badstatus" and probe:
                mode = "length"  # calibration is served well; the measured requests are not
            if mode == "badprobe":
                mode = "badstatus"  # the calibration probe too
            s = self.request
            if mode == "huge" and probe:
                mode = "length"  # calibration is served as usual
            if mode == "huge":
                # one event longer than half the log's default 32 MiB ring, under a raised
                # --max-event-bytes
                s.sendall(with_length(b"data: " + huge_chunk() + b"\n\ndata: [DONE]\n\n"))
                continue
            if mode == "toolcall":
                payload = tool_body(len(body) // 4)
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(0, len(payload), 16384):
                    part = payload[i:i + 16384]
                    s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                s.sendall(b"0\r\n\r\n")
            elif mode in ("closeafter", "idleclose"):
                # keep-alive advertised as llama-server does
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\n"
                          b"Keep-Alive: timeout=5, max=100\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
                if mode == "closeafter":
                    return  # socketserver closes the connection
            elif mode == "chunked":
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(0, len(payload), 50):
                    part = payload[i:i + 50]
                    s.sendall(b"%x;ext=v%d\r\n" % (len(part), i) + part + b"\r\n")
                s.sendall(b"0\r\nX-Trailer: done\r\n\r\n")
            elif mode == "length":
                s.sendall(with_length(payload))
            elif mode in ("close", "badstatus"):
                status = b"200" if mode == "close" else b"00"
                s.sendall(b"HTTP/1.1 " + status + b" OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                return
            elif mode == "glued":
                s.sendall(with_length(payload) + with_length(sse_body(len(body) // 4, 7)))
            elif mode == "dribble":
                s.sendall(with_length(payload)[:-len(payload)])
                for i in range(len(payload)):
                    s.sendall(payload[i:i + 1])
                    if i % 97 == 0:
                        time.sleep(0.0005)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    connections = 0
    requests = 0  # whole requests read (probes included)

    def handle_error(self, request, client_address):
        # strobe closing a connection mid-response (event-too-long, a bad status line) is
        # expected here
        e = sys.exc_info()[1]
        if not isinstance(e, ConnectionError) and getattr(e, "errno", None) != errno.ENOTCONN:
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serving(mode):
    srv = Server(("127.0.0.1", 0), Handler)
    srv.mode = mode
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def slt(port, run, *extra):
    return common.run_strobe("slt", "--url", "http://127.0.0.1:%d/v1" % port, "--model", "canned",
                             "--out", run, "--input-tokens", "200", "--output-tokens", "3",
                             "--threads", "1", "--tokenizer", "none", *extra, timeout=180)


def large_events(tmp):
    """A 300 KB tool-call chunk: whole by default; event-too-long under a 64 KiB limit."""
    with serving("toolcall") as srv:
        run = os.path.join(tmp, "toolcall")
        r = slt(srv.server_address[1], run, "--concurrency", "2", "--phase-s", "1", "--ramp-s", "0.2")
        check(r.returncode == 0, "toolcall: run succeeds", 0, r.stderr[-300:])
        ph = json.load(open(os.path.join(run, "results.json")))["phases"][0]
        check(ph["requests_sent_whole_phase"] >= 2 and ph["requests_failed_whole_phase"] == 0,
              "toolcall: every request with a 300 KB chunk succeeded", 0,
              (ph["requests_failed_whole_phase"], ph["failures"]))
        recs, bodies = read_log(run)
        want = tool_chunk().encode()
        big = [x for x in recs if x["type"] == REC_EVENT and x["len"] > 100000]
        ends = [x for x in recs if x["type"] == REC_END]
        check(len(big) == len(ends) and len(big) >= 2 and
              all(bodies[x["off"]:x["off"] + x["len"]] == want for x in big),
              "toolcall: each request's 300 KB event is in the log byte for byte",
              len(ends), [(x["len"], bodies[x["off"]:x["off"] + x["len"]] == want) for x in big][:4])

        run = os.path.join(tmp, "toolcall-small")
        r = slt(srv.server_address[1], run, "--concurrency", "2", "--phase-s", "1", "--ramp-s", "0.2",
                "--max-event-bytes", "64K")
        res = json.load(open(os.path.join(run, "results.json")))
        ph = res["phases"][0]
        reasons = {x["class"]: x for x in ph["failures"]}
        check(ph["requests_sent_whole_phase"] >= 2 and
              ph["requests_failed_whole_phase"] == ph["requests_sent_whole_phase"],
              "toolcall under --max-event-bytes 64K: every request failed",
              ph["requests_sent_whole_phase"], ph["requests_failed_whole_phase"])
        check(list(reasons) == ["event-too-long"] and "65536" in reasons["event-too-long"]["example"]
              and "--max-event-bytes" in reasons["event-too-long"]["example"],
              "toolcall under 64K: classed event-too-long, naming the limit and the flag",
              "event-too-long", reasons)
        recs, _ = read_log(run)
        cut = [x["len"] for x in recs if x["type"] == REC_EVENT and x["len"] >= 65536]
        check(not cut, "toolcall under 64K: the cut event is not in the log", [], cut[:4])
        check(res["run"]["config"].get("max_event_bytes") == 65536, "the limit is in the run's config",
              65536, res["run"]["config"].get("max_event_bytes"))
        r = slt(srv.server_address[1], os.path.join(tmp, "bad"), "--max-event-bytes", "1x")
        check(r.returncode == 2 and "--max-event-bytes" in r.stderr, "a bad --max-event-bytes: exit 2, named",
              2, (r.returncode, r.stderr[-200:]))


@functools.lru_cache(maxsize=None)
def huge_chunk():
    """A 17 MB content chunk."""
    return json.dumps({"id": "x", "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {"content": "a" * 17000000}}]}).encode()


def huge_event(tmp):
    """A 17 MB event under --max-event-bytes 64M: longer than the event log's default ring
    takes whole (16 MiB); its worker used to wait for room in the ring for ever."""
    with serving("huge") as srv:
        run = os.path.join(tmp, "huge")
        r = slt(srv.server_address[1], run, "--concurrency", "1", "--phase-s", "1", "--ramp-s", "0.2",
                "--max-event-bytes", "64M", "--request-timeout-s", "30")
        # on a busy machine a 1 s phase may hold no whole request (exit 4, not valid); what
        # matters is that the run ends and logs the events
        check(r.returncode in (0, 4), "a 17 MB event under --max-event-bytes 64M: the run ends",
              "0 or 4", (r.returncode, r.stderr[-300:]))
        recs, bodies = read_log(run)
        want = huge_chunk()
        big = [x for x in recs if x["type"] == REC_EVENT and x["len"] > 1000000]
        check(big and all(bodies[x["off"]:x["off"] + x["len"]] == want for x in big),
              "the 17 MB events are in the log byte for byte", "> 0 whole",
              [(x["len"], bodies[x["off"]:x["off"] + x["len"]] == want) for x in big][:4])


def bad_probe(tmp):
    """The calibration probe answered with HTTP/1.1 00: not a status, so calibration fails
    naming it (before the one-shot client shared the workers' response parsing, the body was
    taken for the server's error text)."""
    with serving("badprobe") as srv:
        r = slt(srv.server_address[1], os.path.join(tmp, "badprobe"))
        want = "HTTP status 0 is not a status (100-599)"
        check(r.returncode == 1 and "calibration request" in r.stderr and want in r.stderr,
              "badprobe: calibration fails with exit 1, saying the status is not one",
              (1, want), (r.returncode, r.stderr[-300:]))


def retry_invariants(name, run):
    """Every request sent on a reused connection failed there (the server closes them all)
    and was retried once on a new one; results count those retries."""
    res = json.load(open(os.path.join(run, "results.json")))
    recs, _ = read_log(run)
    sent = {x["req_id"]: x for x in recs if x["type"] == REC_SENT}
    retries = [x for x in recs if x["type"] == REC_RETRY]
    retried = {x["req_id"] for x in retries}
    reused = {i for i, x in sent.items() if x["c"] == 1}
    counted = sum(p["requests_retried_on_new_connection_whole_phase"] for p in res["phases"])
    check(len(retries) == len(retried) and retried <= set(sent),
          "%s: at most one retry per request, each after its request was sent" % name,
          (len(retried), "sent first"), (len(retries), sorted(retried - set(sent))[:4]))
    return res, reused, retried, counted


def closed_connections(tmp):
    # llama-server: keep-alive advertised, the connection closed after every response
    with serving("closeafter") as srv:
        run = os.path.join(tmp, "closeafter")
        r = slt(srv.server_address[1], run, "--concurrency", "1,4", "--phase-s", "1", "--ramp-s", "0.2")
        check(r.returncode == 0, "closeafter: run succeeds", 0, r.stderr[-300:])
        res, reused, retried, counted = retry_invariants("closeafter", run)
        for ph in res["phases"]:
            check(ph["requests_sent_whole_phase"] >= 4 and ph["requests_failed_whole_phase"] == 0,
                  "closeafter at concurrency %d: every request succeeded" % ph["concurrency"],
                  0, (ph["requests_failed_whole_phase"], ph["requests_sent_whole_phase"], ph["failures"]))
        check(reused == retried and counted == len(retried),
              "closeafter: each request sent on a closed connection was retried, and counted "
              "(the others saw the close before sending)", (len(reused), len(reused)),
              (len(retried), counted))
    # a server that closes connections idle for 0.3 s, under a ladder that leaves some idle
    with serving("idleclose") as srv:
        run = os.path.join(tmp, "idleclose")
        r = slt(srv.server_address[1], run, "--concurrency", "3,1,3", "--phase-s", "1", "--ramp-s", "0.2")
        check(r.returncode == 0, "idleclose: run succeeds", 0, r.stderr[-300:])
        res, reused, retried, counted = retry_invariants("idleclose", run)
        for ph in res["phases"]:
            check(ph["requests_sent_whole_phase"] >= 3 and ph["requests_failed_whole_phase"] == 0,
                  "idleclose at concurrency %d: every request succeeded" % ph["concurrency"],
                  0, (ph["requests_failed_whole_phase"], ph["failures"]))
        check(counted == len(retried) and srv.connections > 4,
              "idleclose: idle connections were closed and replaced, retries counted",
              "> 4 connections", (srv.connections, len(retried), counted))
    # the same server under agents: each turn comes 0.5 s of tool time after the last answer
    if not os.path.isdir(common.AA_MINI):
        print("skip idleclose under agents: no %s" % common.AA_MINI)
        return
    with serving("idleclose") as srv:
        run = os.path.join(tmp, "idleclose-agents")
        r = common.run_strobe("agents", "--url", "http://127.0.0.1:%d" % srv.server_address[1],
                              "--model", "canned", "--trajectories", common.AA_MINI, "--out", run,
                              "--slo-speed", "0", "--slo-ttft", "100", "--max-agents", "2",
                              "--warmup-s", "0", "--stagger-s", "0.1", "--window-s", "2",
                              "--min-trajectories", "0", "--min-per-agent", "0", "--tool-time", "0.5",
                              "--threads", "1", "--tokenizer", "none", timeout=120)
        check(r.returncode == 0, "idleclose under agents: run succeeds", 0, r.stderr[-300:])
        res, reused, retried, counted = retry_invariants("idleclose under agents", run)
        its = res["iterations"]
        check(its and sum(i["requests"] for i in its) >= 4 and
              sum(i["requests_failed"] for i in its) == 0 and
              sum(i["requests_retried_on_new_connection"] for i in its) <= len(retried),
              "idleclose under agents: every request succeeded on connections the server had "
              "closed while the agent ran its tool", 0, [(i["requests"], i["requests_failed"]) for i in its])
        check(srv.connections > 4, "idleclose under agents: idle connections were replaced",
              "> 4", srv.connections)


def case(tmp, mode):
    srv = Server(("127.0.0.1", 0), Handler)
    srv.mode = mode
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        run = os.path.join(tmp, mode)
        r = common.run_strobe("slt", "--url", "http://127.0.0.1:%d/v1" % srv.server_address[1],
                              "--model", "canned", "--out", run, "--concurrency", "3",
                              "--phase-s", "1", "--ramp-s", "0.2", "--input-tokens", "200",
                              "--output-tokens", "3", "--threads", "1", timeout=120)
        want = 4 if mode == "badstatus" else 0  # every request fails: the run is not valid
        check(r.returncode == want, "%s: run ends with exit %d" % (mode, want), want, r.stderr[-300:])
        res = json.load(open(os.path.join(run, "results.json")))
        ph = res["phases"][0]
        # the server's own count: strobe sends nothing it does not log, and a glued second
        # response makes it send nothing more
        sent, retried = common.sent_whole_run(res)
        probes = common.calibration_probes(res)
        check(srv.requests == sent + retried + probes,
              "%s: the server read exactly the requests strobe logged (%d + %d retried) and its %d "
              "calibration probes" % (mode, sent, retried, probes), sent + retried + probes, srv.requests)
        if mode == "badstatus":
            reasons = {x["class"]: x for x in ph["failures"]}
            check(ph["requests_sent_whole_phase"] > 3 and
                  ph["requests_failed_whole_phase"] == ph["requests_sent_whole_phase"],
                  "badstatus: every request failed", ph["requests_sent_whole_phase"],
                  ph["requests_failed_whole_phase"])
            check(list(reasons) == ["http-parse"] and "not a status" in reasons["http-parse"]["example"],
                  "badstatus: classed http-parse, saying why", "http-parse", reasons)
            return
        check(ph["requests_sent_whole_phase"] > 3 and ph["requests_failed_whole_phase"] == 0,
              "%s: every request succeeded" % mode, 0, ph["requests_failed_whole_phase"])
        check(ph["output_tokens"]["min"] == 3 and ph["output_tokens"]["max"] == 3 and
              ph["requests_output_estimated"] == 0, "%s: 3 output tokens from usage" % mode, (3, 3, 0),
              (ph["output_tokens"]["min"], ph["output_tokens"]["max"], ph["requests_output_estimated"]))
        check(abs(ph["input_tokens"]["p50"] - 200) <= 2, "%s: prompt calibrated to 200 tokens" % mode,
              200, ph["input_tokens"]["p50"])
    finally:
        srv.shutdown()
        srv.server_close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("chunked", "length", "close", "dribble", "glued", "badstatus"):
            case(tmp, mode)
        bad_probe(tmp)
        large_events(tmp)
        huge_event(tmp)
        closed_connections(tmp)
    common.done()
