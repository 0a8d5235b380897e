"""Helpers for strobe's end-to-end tests: start strobe-emu on a free loopback port, run
strobe, talk raw HTTP. Standard library only. Every server a test starts is stopped by the
test (context managers), and only loopback addresses are used."""
import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

BUILD = os.environ.get("STROBE_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
STROBE = os.environ.get("STROBE_BIN", os.path.join(BUILD, "control", "strobe"))
EMU = os.environ.get("STROBE_EMU_BIN", os.path.join(BUILD, "tests", "emu", "strobe-emu"))
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


@contextlib.contextmanager
def emulator(*args, host="127.0.0.1"):
    port = free_port()
    listen = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    proc = subprocess.Popen([EMU, "--listen", listen, *args], stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, host=host)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def capacity(*args):
    out = subprocess.run([EMU, "--capacity", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def run_strobe(*args, timeout=600, env=None):
    return subprocess.run([STROBE, *args], capture_output=True, text=True, timeout=timeout, env=env)


def post(port, path, body, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


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


# Sanitizer builds run instrumented code several times slower: tests still check
# correctness there, but not timing accuracy (the optimised build checks that).
TIMING = os.environ.get("STROBE_SANITIZED") != "1"

failures = []


def check(cond, what, expected=None, got=None):
    if cond:
        print("ok   " + what)
    else:
        msg = "FAIL " + what
        if expected is not None or got is not None:
            msg += ": expected %s, got %s" % (expected, got)
        print(msg)
        failures.append(what)


def done():
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all checks passed")
