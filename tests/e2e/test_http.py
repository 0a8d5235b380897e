"""HTTP/1.1 response cases through strobe's real worker path, against a canned server on
loopback: chunked bodies with chunk extensions and trailers, Content-Length bodies,
bodies ended by Connection: close, keep-alive reuse, and events dribbled a byte at a time;
and two misbehaving servers: a second response glued to the first in the same write (it is not
the request's: it must not add events, and the connection must not be reused), and a status
line whose status is not one (HTTP/1.1 00), which must fail as http-parse, not succeed."""
import json
import os
import socket
import socketserver
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


def with_length(payload):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n"
            % len(payload) + payload)


class Handler(socketserver.BaseRequestHandler):
    mode = "chunked"

    def read_request(self, buf):
        while b"\r\n\r\n" not in buf:
            d = self.request.recv(65536)
            if not d:
                return None, b""
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(rest) < length:
            d = self.request.recv(65536)
            if not d:
                return None, b""
            rest += d
        return rest[:length], rest[length:]

    def handle(self):
        buf = b""
        while True:
            body, buf = self.read_request(buf)
            if body is None:
                return
            payload = sse_body(len(body) // 4)
            mode = self.server.mode
            probe = b'"max_tokens":1,' in body or b'"max_tokens":1}' in body
            if mode == "badstatus" and probe:
                mode = "length"  # calibration is served well; the measured requests are not
            s = self.request
            if mode == "chunked":
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
        check(r.returncode == 0, "%s: run succeeds" % mode, 0, r.stderr[-300:])
        ph = json.load(open(os.path.join(run, "results.json")))["phases"][0]
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
              ph["requests_output_estimated"] == 0, "%s: 3 output tokens from usage" % mode)
        check(abs(ph["input_tokens"]["p50"] - 200) <= 2, "%s: prompt calibrated to 200 tokens" % mode,
              200, ph["input_tokens"]["p50"])
    finally:
        srv.shutdown()
        srv.server_close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("chunked", "length", "close", "dribble", "glued", "badstatus"):
            case(tmp, mode)
    common.done()
