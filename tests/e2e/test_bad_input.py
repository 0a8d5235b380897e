"""Bad input gets one sentence and an exit status, never a crash: a directory where a file
is expected (every file-taking flag, and a replay whose manifest.json is a directory), bad
numbers (negative, overflowing, inf/nan, fractional counts) named by their flag,
--extra-body keys that would override strobe's own or change the answers' length or number,
--extra-body and --prices with text after their JSON, a negative table price, --price-basis
committed without a committed price, --emu-args --listen, a '#' in --model (the request JSON and
its cache-isolation nonce stay intact), --url with a query, credentials or the endpoint's
full path, a refused connection naming host and port, a 200 that is not an event stream
(JSON, gzip) failing with what arrived, `strobe import` into a non-empty directory, and
`strobe analyze` given a file, a missing path or a folder without a log, a damaged log said
to be damaged (a header longer than the file or not JSON, events.bin a directory, bodies.bin
cut short after the run ended), an empty --out, a server that never answers given one
--request-timeout-s (not one per retry), trajectory counts of 2^31 or more refused (they
wrapped), a turn recorded with 0 output tokens sent as max_tokens 1 with ignore_eos, and the
subcommand list: each listed one answers --help, none or an unknown one is exit 2.
Run under ASan too (meson's e2e suite in both builds): a crash there aborts, and fails."""
import gzip
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import common
from common import check


def run(*args, stdin=""):
    return subprocess.run([common.STROBE, *args], input=stdin, capture_output=True, text=True,
                          timeout=300)


def one_sentence(r):
    lines = [l for l in r.stderr.strip().splitlines() if not l.startswith("strobe-emu:")]
    return len(lines) == 1 and lines[0].endswith("."), lines[-1] if lines else ""


def tiny_replay(tmp):
    """A one-trajectory replay directory made by strobe import."""
    msgs = os.path.join(tmp, "chat.json")
    json.dump({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a" * 40}]},
              open(msgs, "w"))
    out = os.path.join(tmp, "replay")
    r = run("import", "--from", "openai-messages", msgs, "-o", out)
    assert r.returncode == 0, r.stderr
    return out


def directories(tmp):
    d = os.path.join(tmp, "a-directory")
    os.mkdir(d)
    replay = tiny_replay(tmp)
    bad_replay = os.path.join(tmp, "bad-replay")
    os.makedirs(os.path.join(bad_replay, "manifest.json"))
    dead = ["--url", "http://127.0.0.1:%d" % common.free_port(), "--model", "m"]
    agents = ["agents", "--slo-speed", "1", "--slo-ttft", "1"]
    out = lambda name: ["--out", os.path.join(tmp, "out-" + name)]
    cases = [
        ("slt --tokenizer DIR", ["slt", *out("tok"), "--tokenizer", d, *dead], 2, d),
        ("agents --tokenizer DIR", [*agents, "--trajectories", replay, *out("atok"), "--tokenizer", d, *dead], 2, d),
        ("slt --prices DIR", ["slt", *out("prices"), "--accelerator-type", "TPU v6e", "--prices", d, *dead], 2, d),
        ("slt --power file:DIR", ["slt", *out("power"), "--power", "file:" + d, "--tokenizer", "none", *dead], 2, d),
        ("tokenize --tokenizer DIR", ["tokenize", "--tokenizer", d], 1, d),
        ("agents: manifest.json is a directory", [*agents, "--trajectories", bad_replay, *out("man"), *dead], 2,
         os.path.join(bad_replay, "manifest.json")),
    ]
    for name, args, status, path in cases:
        r = run(*args)
        ok, line = one_sentence(r)
        check(r.returncode == status and ok and path in line and "Is a directory" in line,
              "%s: exit %d with one sentence naming the path and why" % (name, status), status,
              (r.returncode, r.stderr.strip()[-300:]))
    r = run("import", "--from", "mini-swe-agent", d, "-o", os.path.join(tmp, "imp"))
    ok, line = one_sentence(r)
    check(r.returncode == 1 and ok and ("skipped %s: cannot read it: Is a directory" % d) in r.stdout,
          "import of a directory: skipped saying why, exit 1 with a sentence", 1,
          (r.returncode, r.stdout.strip()[-200:], r.stderr.strip()[-200:]))


def import_into_nonempty(tmp):
    msgs = os.path.join(tmp, "chat2.json")
    json.dump({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "b" * 8}]},
              open(msgs, "w"))
    full = os.path.join(tmp, "full")
    os.mkdir(full)
    open(os.path.join(full, "keep.txt"), "w").write("x")
    r = run("import", "--from", "openai-messages", msgs, "-o", full)
    ok, line = one_sentence(r)
    check(r.returncode == 2 and ok and full in line and "not empty" in line and
          os.listdir(full) == ["keep.txt"], "import into a non-empty directory: refused, nothing written", 2,
          (r.returncode, r.stderr.strip()[-200:], os.listdir(full)))
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    r = run("import", "--from", "openai-messages", msgs, "-o", empty)
    check(r.returncode == 0, "import into an empty directory works", 0, r.stderr[-200:])


NUMBERS = [
    (["slt", "--phase-s", "-1"], "--phase-s: -1 is not a number >= 0"),
    (["slt", "--phase-s", "abc"], "--phase-s: 'abc' is not a number"),
    (["slt", "--phase-s", "inf"], "--phase-s: inf is not a finite number"),
    (["slt", "--ramp-s", "nan"], "--ramp-s: nan is not a finite number"),
    (["slt", "--phase-s", "1e400"], "--phase-s: 1e400 is too large (it overflows"),
    (["slt", "--threads", "1e400"], "--threads: 1e400 is too large (it overflows"),
    (["slt", "--threads", "99999999999999999999"], "--threads: 99999999999999999999 is too large (it overflows"),
    (["slt", "--threads", "1.5"], "--threads: 1.5 is not a whole number"),
    (["slt", "--concurrency", "99999999999999999999"], "--concurrency: 99999999999999999999 holds a number too large"),
    (["slt", "--max-concurrency", "99999999999999999999"], "--max-concurrency: 99999999999999999999 is too large (it overflows"),
    (["slt", "--output-tokens", "1e12"], "--output-tokens: 1e12 is not a whole number <= 100000000"),
    (["slt", "--request-timeout-s", "-3"], "--request-timeout-s: -3 is not a number >= 0"),
    (["slt", "--seed", "18446744073709551616"], "--seed: 18446744073709551616 is too large (it overflows"),
    (["slt", "--power-rate", "infinity"], "--power-rate: infinity is not a finite number"),
    # lists: an empty one or a trailing comma meant a closed-loop ladder of hours, a tiny rate
    # a flood of requests (its gaps overflowed)
    (["slt", "--rate", ""], "--rate must be a list like 5,10,20"),
    (["slt", "--rate", "5,"], "--rate must be a list like 5,10,20"),
    (["slt", "--rate", "1e-300"], "(at least 0.000001, at most 10000000), got '1e-300'"),
    (["slt", "--concurrency", "1,"], "--concurrency must be 'auto' or a list like 1,2,4"),
    (["slt", "--concurrency", ""], "--concurrency must be 'auto' or a list like 1,2,4"),
    # 0 meant "not given" and became 1 accelerator, or the table's price
    (["slt", "--accelerator-type", "TPU v6e", "--accelerators", "0"], "--accelerators: 0 is not a number above 0"),
    (["slt", "--accelerator-type", "TPU v6e", "--price-per-hour", "0"], "--price-per-hour: 0 is not a number above 0"),
    (["slt", "--accelerators", "8"], "--accelerators need --accelerator-type"),
    # one device read twice had its watts counted twice
    (["slt", "--power", "emu", "--power", "emu"], "--power emu is given twice"),
    (["agents", "--window-s", "inf"], "--window-s: inf is not a finite number"),
    (["agents", "--max-error-rate", "2"], "--max-error-rate: 2 is not a number <= 1"),
    (["agents", "--max-agents", "1e30"], "--max-agents: 1e30 is too large (it overflows"),
    # the custom tier won silently; a TTFT of 0 s failed every iteration and reported 0 agents
    (["agents", "--trajectories", common.AA_MINI, "--model-profile", "gpt-oss-120b", "--slo-speed", "1",
      "--slo-ttft", "100"], "--model-profile and --slo-speed/--slo-ttft both choose the SLO"),
    (["agents", "--trajectories", common.AA_MINI, "--slo-tier", "all", "--slo-speed", "1", "--slo-ttft", "100"],
     "--slo-tier and --slo-speed/--slo-ttft both choose the SLO"),
    (["agents", "--trajectories", common.AA_MINI, "--slo-speed", "1", "--slo-ttft", "0"],
     "--slo-ttft must be above 0 seconds"),
]


def numbers(tmp):
    for args, want in NUMBERS:
        r = run(args[0], "--out", os.path.join(tmp, "never"), *args[1:])
        ok, line = one_sentence(r)
        check(r.returncode == 2 and ok and want in line, "%s: exit 2 saying '%s'" % (" ".join(args), want), 2,
              (r.returncode, r.stderr.strip()[-300:]))


EXTRA = [
    ("slt", '{"messages":[]}', 'may not set "messages"'),
    ("slt", '{"prompt":"p"}', 'may not set "prompt"'),
    ("slt", '{"model":"other"}', 'may not set "model"'),
    ("slt", '{"stream":false}', 'may not set "stream"'),
    ("slt", '{"max_tokens":5}', 'may not set "max_tokens"'),
    ("slt", '{"stream_options":{"include_usage":false}}', "include_usage"),
    ("slt", '{"stream_options":true}', '"stream_options" must be a JSON object'),
    ("agents", '{"messages":[]}', 'may not set "messages"'),
    ("agents", '{"tools":[]}', 'may not set "tools"'),
    ("agents", '{"ignore_eos":false}', 'may not set "ignore_eos"'),
    # what changes the answers' length or number: every figure would follow it
    ("slt", '{"max_completion_tokens":1}', 'may not set "max_completion_tokens"'),
    ("slt", '{"n":3}', 'may not set "n"'),
    ("agents", '{"best_of":2}', 'may not set "best_of"'),
    # one object, each key once: the tail and the second value were dropped silently
    ("slt", '{"temperature":0}{"a":1}', """more follows it at byte offset 17 ('{"a":1}')"""),
    ("slt", '{"a":1} x', "more follows it at byte offset 8 ('x')"),
    ("slt", '{"a":1,"a":2}', 'sets "a" twice'),
    ("slt", '{"stream_options":{"include_usage":true,"include_usage":false}}', "stream_options.include_usage twice"),
]


def extra_body(tmp):
    # a server that refuses: a body let through fails in seconds, not after a whole run
    dead = ["--url", "http://127.0.0.1:%d" % common.free_port(), "--model", "m"]
    for cmd, extra, want in EXTRA:
        r = run(cmd, "--out", os.path.join(tmp, "never"), "--extra-body", extra, "--slo-speed", "1",
                "--slo-ttft", "1", "--trajectories", tmp) if cmd == "agents" else \
            run(cmd, "--out", os.path.join(tmp, "never"), "--extra-body", extra, *dead)
        ok, line = one_sentence(r)
        check(r.returncode == 2 and ok and want in line and "--extra-body" in line,
              "%s --extra-body %s: refused by name" % (cmd, extra), 2, (r.returncode, r.stderr.strip()[-300:]))


def prices_and_emu_args(tmp):
    """A price table's negative price or trailing text, --price-basis committed where the table
    has no committed price (it fell back to on-demand silently), and --emu-args' --listen
    (strobe waited 2 s on its own port) are refused in one sentence."""
    dead = ["--url", "http://127.0.0.1:%d" % common.free_port(), "--model", "m"]
    entry = '{"prices":[{"accelerator":"X1","on_demand_usd_per_accelerator_hour":%s}]}'
    cases = []
    for name, text, want in (("negative", entry % "-2.7", "the entry for 'X1' has on_demand_usd_per_accelerator_hour -2.7"),
                             ("trailing", entry % "2.7" + " x", "holds more after its JSON object at byte offset 75 ('x')"),
                             # a key or an accelerator given twice: the lookup read one of them
                             ("twice", '{"prices":[{"accelerator":"X1","on_demand_usd_per_accelerator_hour":2,'
                              '"on_demand_usd_per_accelerator_hour":3}]}',
                              "sets prices[0].on_demand_usd_per_accelerator_hour twice"),
                             ("listed", '{"prices":[%s,%s]}' % (
                                 '{"accelerator":"X1","on_demand_usd_per_accelerator_hour":2}',
                                 '{"accelerator":"x1","on_demand_usd_per_accelerator_hour":3}'),
                              "lists accelerator 'x1' twice")):
        path = os.path.join(tmp, "prices-%s.json" % name)
        open(path, "w").write(text)
        cases.append(("--prices with a %s price" % name, ["--accelerator-type", "X1", "--prices", path, *dead], 2, want))
    cases += [("--price-basis committed, none in the table",
               ["--accelerator-type", "TPU v6e", "--price-basis", "committed", *dead], 2,
               "has no 1-year committed price for 'TPU v6e'"),
              ("--emu-args --listen", ["--emu-args", "--listen 127.0.0.1:1"], 1,
               "--emu-args may not hold --listen: strobe chooses")]
    for name, args, status, want in cases:
        r = run("slt", "--out", os.path.join(tmp, "never"), *args)
        ok, line = one_sentence(r)
        check(r.returncode == status and ok and want in line, "%s: exit %d saying '%s'" % (name, status, want),
              status, (r.returncode, r.stderr.strip()[-300:]))


def slt_args(url, out, *more):
    return ["slt", "--url", url, "--out", out, "--concurrency", "2", "--phase-s", "1", "--ramp-s", "0.2",
            "--input-tokens", "100", "--output-tokens", "3", "--threads", "1", "--tokenizer", "none", *more]


def recording(tmp):
    """'#' in --model and in --extra-body, the endpoint's full path in --url, stream_options
    merged: every request is intact JSON with its own nonce."""
    def respond(head, body):
        return common.sse_answer(len(body) // 4)
    with common.canned_server(respond) as srv:
        out = os.path.join(tmp, "hash")
        r = run(*slt_args("http://127.0.0.1:%d/v1/chat/completions" % srv.port, out, "--model", "my#model",
                          "--extra-body", '{"user":"a#b","stream_options":{"continuous_usage_stats":true}}'))
        reqs = list(srv.requests)
    check(r.returncode == 0, "a '#' in --model and --extra-body: the run succeeds", 0, r.stderr[-400:])
    paths = {h.split(b"\r\n")[0] for h, _ in reqs}
    check(paths == {b"POST /v1/chat/completions HTTP/1.1"},
          "--url with /v1/chat/completions: requests go to that path, not doubled", "one path", paths)
    without = [h[:200] for h, _ in reqs if b"\r\nAccept-Encoding: identity\r\n" not in h]
    check(reqs and not without, "requests ask for an uncompressed body (Accept-Encoding: identity)",
          "in every request head", without[:1])
    bodies, bad = [], []
    for _, b in reqs:
        try:
            bodies.append(json.loads(b))
        except ValueError:
            bad.append(b[:200])
    check(reqs and not bad, "every request body is valid JSON", [], bad[:2])
    nonce = re.compile(r"^(\d ){32}")
    good = [j for j in bodies if j.get("model") == "my#model" and j.get("user") == "a#b" and
            j.get("stream_options") == {"include_usage": True, "continuous_usage_stats": True} and
            nonce.match(j["messages"][0]["content"])]
    check(len(good) == len(bodies), "model, extras and merged stream_options intact, the nonce leads the prompt",
          len(bodies), len(good))
    measured = [j["messages"][0]["content"][:64] for j in bodies if j.get("max_tokens") == 3]
    check(len(measured) > 2 and len(set(measured)) == len(measured), "every measured request has its own nonce",
          len(measured), len(set(measured)))
    if os.path.exists(os.path.join(out, "results.json")):
        res = json.load(open(os.path.join(out, "results.json")))
        ph = res["phases"][0]
        check(ph["requests_failed_whole_phase"] == 0, "no request failed", 0, ph.get("failures"))
        sent, retried = common.sent_whole_run(res)
        check(len(reqs) == sent + retried + 3,
              "the server received exactly the requests strobe logged and its 3 calibration probes",
              sent + retried + 3, len(reqs))


def urls(tmp):
    base = "http://127.0.0.1:%d" % common.free_port()
    cases = [
        (base + "/v1/chat/completions?api-version=1", 2, "has a query"),
        (base + "/v1#frag", 2, "has a fragment"),
        ("http://user:hunter2pass@127.0.0.1:9/v1", 2, "holds credentials"),
        (base + "/v1/completions", 2, "--url ends in /v1/completions but strobe slt sends to /v1/chat/completions"),
        (base, 1, "connection to %s refused: is the server running?" % base[7:]),
        # strtol took " 1" and "+1" for port 1
        ("http://127.0.0.1: 1", 2, "has a bad port ' 1': give a number from 1 to 65535"),
        ("http://127.0.0.1:+1", 2, "has a bad port '+1'"),
    ]
    for url, status, want in cases:
        r = run(*slt_args(url, os.path.join(tmp, "never"), "--model", "m"))
        ok, line = one_sentence(r)
        check(r.returncode == status and ok and want in line and "hunter2pass" not in r.stderr,
              "--url %s: exit %d saying '%s'" % (url, status, want), status, (r.returncode, r.stderr.strip()[-300:]))


def not_sse(tmp):
    """A 200 that is JSON or gzip fails saying what arrived; calibration is served well."""
    def json_answer(body):
        payload = json.dumps({"choices": [{"message": {"content": "hi"}}],
                              "usage": {"prompt_tokens": len(body) // 4, "completion_tokens": 1}}).encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % len(payload) + payload)

    def gzip_answer(body):
        sse = common.sse_answer(len(body) // 4)
        payload = gzip.compress(sse.partition(b"\r\n\r\n")[2])
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
                b"Content-Length: %d\r\n\r\n" % len(payload) + payload)

    modes = {"json": (json_answer, "not-event-stream", "the server sent Content-Type application/json, not text/event-stream"),
             "gzip": (gzip_answer, "not-event-stream", "the body is gzip-compressed (Content-Encoding: gzip); strobe asks for identity")}
    for mode, (answer, cls, want) in modes.items():
        def respond(head, body, answer=answer):
            return common.sse_answer(len(body) // 4) if common.is_probe(body) else answer(body)
        with common.canned_server(respond) as srv:
            out = os.path.join(tmp, "notsse-" + mode)
            r = run(*slt_args("http://127.0.0.1:%d" % srv.port, out, "--model", "m"))
        res = os.path.join(out, "results.json")
        ph = json.load(open(res))["phases"][0] if os.path.exists(res) else {}
        reasons = {x["class"]: x["example"] for x in ph.get("failures", [])}
        check(r.returncode == 4 and ph and ph["requests_failed_whole_phase"] == ph["requests_sent_whole_phase"] > 0
              and list(reasons) == [cls] and want in reasons[cls],
              "%s answers: every request fails as %s, saying '%s'" % (mode, cls, want), want,
              (r.returncode, reasons, r.stderr[-300:]))
    # a server that never streams: calibration stops, saying so
    with common.canned_server(lambda head, body: json_answer(body)) as srv:
        r = run(*slt_args("http://127.0.0.1:%d" % srv.port, os.path.join(tmp, "notsse-cal"), "--model", "m"))
    ok, line = one_sentence(r)
    check(r.returncode == 1 and ok and "Content-Type application/json, not text/event-stream" in line,
          "a JSON answer to calibration: exit 1 saying what arrived", 1, (r.returncode, r.stderr.strip()[-300:]))


def not_a_run(tmp):
    """`strobe analyze` given what is not a run's folder says so (not events.bin's error)."""
    afile = os.path.join(tmp, "a-file")
    open(afile, "w").write("x")
    empty = os.path.join(tmp, "empty-folder")
    os.makedirs(empty, exist_ok=True)
    for path, says in ((afile, "is not a folder"), (os.path.join(tmp, "missing"), "does not exist"),
                       (empty, "holds no events.bin")):
        r = run("analyze", path)
        ok, line = one_sentence(r)
        check(r.returncode == 1 and ok and says in line and "give the --out" in line.replace(
                  "give the folder of a run (the --out", "give the --out"),
              "analyze %s: exit 1 saying it %s and what to give" % (os.path.basename(path), says),
              (1, says), (r.returncode, line))


def empty_out(tmp):
    """--out "" is refused with the other bad options, before anything starts."""
    for cmd in (["slt"], ["agents", "--trajectories", tmp, "--slo-speed", "1", "--slo-ttft", "1"]):
        r = run(*cmd, "--out", "")
        ok, line = one_sentence(r)
        check(r.returncode == 2 and ok and "--out is empty" in line and "strobe-emu" not in r.stderr,
              "%s --out '': exit 2 saying it is empty, before the emulator starts" % cmd[0], 2,
              (r.returncode, r.stderr.strip()[-300:]))


def out_that_cannot_hold_a_run(tmp):
    """An --out too long for the files under it (the run failed at its end, or wrote cut names
    such as bodies.b), or in a place that refuses new folders though access() says writable
    (/proc, for root), is refused at parsing: exit 2 before the emulator starts."""
    cases = [(os.path.join(tmp, "d" * 4050), "characters long; at most 4000")]
    if os.geteuid() == 0:
        cases.append(("/proc/strobe-run", "cannot be created in /proc"))
    for out, want in cases:
        r = run("slt", "--out", out)
        ok, line = one_sentence(r)
        check(r.returncode == 2 and ok and want in line and "strobe-emu" not in r.stderr,
              "--out %s: exit 2 before the emulator starts" % out[:40], (2, want),
              (r.returncode, r.stderr.strip()[-300:]))


def input_below_template(tmp):
    """--input-tokens below what the nonce and the chat template alone take cannot be met: the
    run says so, and the header's expected_prompt_tokens is what was sent (it recorded the
    line's extrapolation below the template, 10 for prompts of 18 tokens)."""
    out = os.path.join(tmp, "tiny-prompt")
    r = run("slt", "--out", out, "--concurrency", "1", "--phase-s", "0.5", "--ramp-s", "0.1",
            "--input-tokens", "10", "--output-tokens", "3", "--threads", "1", "--tokenizer", "none")
    said = re.search(r"--input-tokens 10 cannot be met: .* every prompt is (\d+)", r.stderr)
    try:
        res = json.load(open(os.path.join(out, "results.json")))
        expected = res["run"]["calibration"]["expected_prompt_tokens"]
        sent = res["phases"][0]["input_tokens"]["p50"]
    except (OSError, ValueError, KeyError, IndexError):
        expected = sent = None
    check(r.returncode == 0 and said and int(said.group(1)) == expected == sent and sent > 10,
          "--input-tokens 10 below the template: said, and the header's expected count is what was sent",
          ("said", "expected == sent > 10"), (r.returncode, bool(said), expected, sent, r.stderr[-200:]))
    # sized by the tokenizer: no "the server's tokenizer or template differs" either (with no
    # filler words that comparison says nothing), and server_agrees is null, not false
    out = os.path.join(tmp, "tiny-prompt-tokenizer")
    r = run("slt", "--out", out, "--concurrency", "1", "--phase-s", "0.5", "--ramp-s", "0.1",
            "--input-tokens", "10", "--output-tokens", "3", "--threads", "1")
    try:
        cal = json.load(open(os.path.join(out, "results.json")))["run"]["calibration"]
    except (OSError, ValueError, KeyError):
        cal = {}
    exact = "server_prompt_tokens_confirmed" in cal
    check(r.returncode == 0 and "cannot be met" in r.stderr and "differs" not in r.stderr
          and (not exact or cal.get("server_agrees", False) is None),
          "--input-tokens 10 with a tokenizer: one warning, server_agrees null", (0, None),
          (r.returncode, cal.get("server_agrees", "absent"), r.stderr[-300:]))


def loading_server(tmp):
    """A server still loading its model answers 503 for its first 1.2 s: the calibration
    probe is tried again after a pause (0.5 s, then 1 s), not five times within milliseconds,
    and the run goes on."""
    first = []

    def respond(head, body):
        first.append(time.time())
        if time.time() - first[0] < 1.2:
            msg = b'{"error":{"message":"Loading model"}}'
            return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(msg) + msg)
        return common.sse_answer(len(body) // 4)

    with common.canned_server(respond) as srv:
        r = run(*slt_args("http://127.0.0.1:%d" % srv.port, os.path.join(tmp, "loading"), "--model", "m"))
        check(r.returncode == 0 and len(first) >= 3, "a server loading its model (503 for 1.2 s): the probe waits "
              "and tries again, the run goes on", (0, ">= 3 requests"), (r.returncode, len(first), r.stderr[-300:]))


def budget_shared_by_attempts(tmp):
    """A probe's attempts share one --request-timeout-s: the first answered 503 after 2.5 s, the
    second silent. Before, the second got a whole timeout of its own (7 s here)."""
    seen = []

    def respond(head, body):
        seen.append(time.time())
        time.sleep(2.5 if len(seen) == 1 else 12)
        msg = b'{"error":{"message":"Overloaded"}}'
        return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(msg) + msg)

    with common.canned_server(respond) as srv:
        t0 = time.time()
        r = run(*slt_args("http://127.0.0.1:%d" % srv.port, os.path.join(tmp, "budget"), "--model", "m",
                          "--request-timeout-s", "4"))
        took = time.time() - t0
        ok, line = one_sentence(r)
        check(r.returncode == 1 and ok and len(seen) == 2 and "within 4 s" in line and took < 5.5,
              "slt, a 503 after 2.5 s then silence, --request-timeout-s 4: two attempts ended together at "
              "4 s, not 6.5", (1, 2, "< 5.5 s"), (r.returncode, len(seen), round(took, 1), r.stderr.strip()[-300:]))


def silent_server(tmp):
    """A server that takes the connection and never answers: the first request fails after one
    --request-timeout-s, saying so (the probes were retried 5 and 8 times, each waiting the
    whole timeout: 10 s and 16 s here, 50 and 80 minutes with the default 600 s), and a wait
    past 5 s is said while it lasts; --idle-timeout-s ends it sooner where it is the shorter,
    and --connect-timeout-s a connection that is never accepted."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)  # connections complete in the backlog; none is ever accepted or answered
    url = "http://127.0.0.1:%d" % s.getsockname()[1]
    try:
        cases = [("slt", slt_args(url, os.path.join(tmp, "silent-slt"), "--model", "m",
                                  "--request-timeout-s", "2")),
                 ("agents", ["agents", "--url", url, "--model", "m", "--trajectories", common.AA_MINI,
                             "--out", os.path.join(tmp, "silent-agents"), "--slo-speed", "1",
                             "--slo-ttft", "1", "--tokenizer", "none", "--request-timeout-s", "2"])]
        for name, args in cases:
            t0 = time.time()
            r = run(*args)
            took = time.time() - t0
            ok, line = one_sentence(r)
            check(r.returncode == 1 and ok and "no complete response within 2 s" in line and took < 8,
                  "%s, a silent server, --request-timeout-s 2: exit 1 in under 8 s, saying 2 s" % name,
                  (1, "< 8 s"), (r.returncode, round(took, 1), r.stderr.strip()[-300:]))
        t0 = time.time()
        r = run(*slt_args(url, os.path.join(tmp, "silent-note"), "--model", "m", "--request-timeout-s", "7"))
        took = time.time() - t0
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 1 and len(lines) == 2 and "waiting for 127.0.0.1" in lines[0] and
              "up to 7 s (--request-timeout-s)" in lines[0] and "within 7 s" in lines[1] and took < 13,
              "slt, a silent server, --request-timeout-s 7: says what it waits for, then fails once",
              (1, "waiting for ...", "< 13 s"), (r.returncode, round(took, 1), lines))
        # the run's other two limits hold for the probes as they do for the run's requests:
        # before, a probe waited --request-timeout-s (600 s) whatever they said
        t0 = time.time()
        r = run(*slt_args(url, os.path.join(tmp, "silent-idle"), "--model", "m", "--idle-timeout-s", "2"))
        took = time.time() - t0
        ok, line = one_sentence(r)
        check(r.returncode == 1 and ok and "nothing received for 2 s (--idle-timeout-s)" in line and took < 8,
              "slt, a silent server, --idle-timeout-s 2 (--request-timeout-s its 600 s): exit 1 in under 8 s, "
              "naming the idle timeout", (1, "< 8 s"), (r.returncode, round(took, 1), r.stderr.strip()[-300:]))
    finally:
        s.close()
    # a listener whose one-place backlog is full: a new connection's SYN goes unanswered
    # (unless the host resets it instead: net.ipv4.tcp_abort_on_overflow)
    try:
        with open("/proc/sys/net/ipv4/tcp_abort_on_overflow") as f:
            if f.read().strip() != "0":
                print("skip a connection never accepted: tcp_abort_on_overflow resets it instead")
                return
    except OSError:
        pass
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    held = socket.create_connection(full.getsockname())
    url = "http://127.0.0.1:%d" % full.getsockname()[1]
    try:
        for name, args in (("slt", slt_args(url, os.path.join(tmp, "unconnected-slt"), "--model", "m",
                                            "--connect-timeout-s", "2")),
                           ("agents", ["agents", "--url", url, "--model", "m", "--trajectories", common.AA_MINI,
                                       "--out", os.path.join(tmp, "unconnected-agents"), "--slo-speed", "1",
                                       "--slo-ttft", "1", "--tokenizer", "none", "--connect-timeout-s", "2"])):
            t0 = time.time()
            r = run(*args)
            took = time.time() - t0
            ok, line = one_sentence(r)
            check(r.returncode == 1 and ok and "connect timed out after 2 s (--connect-timeout-s)" in line
                  and took < 8,
                  "%s, a connection never accepted, --connect-timeout-s 2: exit 1 in under 8 s, naming it" % name,
                  (1, "< 8 s"), (r.returncode, round(took, 1), r.stderr.strip()[-300:]))
    finally:
        held.close()
        full.close()


def replay_with(tmp, name, line, **fields):
    """A copy of AA's sample replay with line `line` (0-based) of its trace changed."""
    d = os.path.join(tmp, name)
    shutil.copytree(common.AA_MINI, d)
    trace = os.path.join(d, "traces", "aa-mini-library-01.jsonl")
    lines = [json.loads(x) for x in open(trace)]
    lines[line].update(fields)
    open(trace, "w").write("".join(json.dumps(x) + "\n" for x in lines))
    return d, trace, lines


def trajectory_counts(tmp):
    """Counts past INT32_MAX are refused naming file, line and rule (4294967303 was sent as
    max_tokens 7); a turn recorded with 0 output tokens asks for 1 token with ignore_eos (it
    was sent as max_tokens 16384 without it, letting the model talk for as long as it liked)."""
    for n in (2 ** 32 + 7, 2 ** 31):
        d, trace, _ = replay_with(tmp, "wrap-%d" % n, 2, target_output_tokens=n, max_output_tokens=n)
        r = run("agents", "--trajectories", d, "--out", os.path.join(tmp, "never"), "--slo-speed", "1",
                "--slo-ttft", "1", "--url", "http://127.0.0.1:%d" % common.free_port(), "--model", "m")
        ok, line = one_sentence(r)
        check(r.returncode == 2 and ok and "%s line 3: counts must be whole numbers from 0 to 2147483647" % trace
              in line, "target_output_tokens %d: exit 2 naming the file, line and rule" % n, 2,
              (r.returncode, r.stderr.strip()[-300:]))
    d, _, lines = replay_with(tmp, "zero", 2, target_output_tokens=0, max_output_tokens=0)

    def respond(head, body):
        req = json.loads(body)
        n = req["max_tokens"] if req.get("ignore_eos") else 3
        return common.sse_answer(len(body) // 4, texts=["x"] * n)
    with common.canned_server(respond) as srv:
        r = run("agents", "--url", "http://127.0.0.1:%d" % srv.port, "--model", "m", "--trajectories", d,
                "--out", os.path.join(tmp, "zero-run"), "--slo-speed", "0", "--slo-ttft", "100",
                "--max-agents", "1", "--warmup-s", "0", "--stagger-s", "0", "--window-s", "0.5",
                "--min-trajectories", "0", "--min-per-agent", "0", "--threads", "1", "--tokenizer", "none")
        reqs = [json.loads(b) for _, b in srv.requests]
    turns = [b for b in reqs if len(b["messages"]) == len(lines[2]["messages"])]
    asked = {(b["max_tokens"], b.get("ignore_eos")) for b in turns}
    check(r.returncode == 0 and turns and asked == {(1, True)},
          "a turn recorded with 0 output tokens asks for max_tokens 1 with ignore_eos", {(1, True)},
          (r.returncode, asked, r.stderr.strip()[-300:]))


def replay_files(tmp):
    """A replay's manifest or trace that is a FIFO blocked strobe agents for ever (a device was
    read until memory ran out); a second object after the manifest's or a trace line's, or a key
    given twice, was dropped or read as its first; a task id holding an escape sequence reached
    the terminal. Each is now refused in one sentence, exit 2."""
    def agents_on(d):
        return run("agents", "--trajectories", d, "--out", os.path.join(tmp, "never"), "--slo-speed", "1",
                   "--slo-ttft", "1", "--url", "http://127.0.0.1:%d" % common.free_port(), "--model", "m")
    manifest = json.load(open(os.path.join(common.AA_MINI, "manifest.json")))
    cases = []
    fifo = os.path.join(tmp, "fifo-replay")
    shutil.copytree(common.AA_MINI, fifo)
    os.remove(os.path.join(fifo, "manifest.json"))
    os.mkfifo(os.path.join(fifo, "manifest.json"))
    cases.append(("manifest.json a FIFO", fifo, "manifest.json: a FIFO"))
    trace_fifo = os.path.join(tmp, "fifo-trace")
    shutil.copytree(common.AA_MINI, trace_fifo)
    trace = os.path.join(trace_fifo, "traces", "aa-mini-library-01.jsonl")
    os.remove(trace)
    os.mkfifo(trace)
    cases.append(("a trace a FIFO", trace_fifo, "a FIFO"))
    for name, text, want in (
            ("manifest with more after it", json.dumps(manifest) + "\n{}", "holds more after its JSON object"),
            ("manifest with a key twice", json.dumps(manifest)[:-1] + ', "name": "again"}', "sets name twice"),
            # the key is quoted in the message: its escape sequence shown as '?', not sent
            ("a key twice holding an escape", json.dumps(manifest)[:-1] + ', "x\\u001b[2J": 1, "x\\u001b[2J": 2}',
             "sets x?[2J twice"),
            ("escape in a task id", json.dumps(dict(manifest, tasks=[dict(manifest["tasks"][0],
                                                                         task_id="evil\x1b]0;x\x07")])),
             "its task_id holds a control character")):
        d = os.path.join(tmp, name.replace(" ", "-"))
        shutil.copytree(common.AA_MINI, d)
        open(os.path.join(d, "manifest.json"), "w").write(text)
        cases.append((name, d, want))
    d, trace, lines = replay_with(tmp, "line-more", 1)
    text = open(trace).read().split("\n")
    text[1] += " {}"
    open(trace, "w").write("\n".join(text))
    cases.append(("a trace line with more after its object", d, "line 2 holds more after its JSON object"))
    d, trace, lines = replay_with(tmp, "line-twice", 1)
    text = open(trace).read().split("\n")
    text[1] = text[1][:-1] + ', "max_output_tokens": 7}'
    open(trace, "w").write("\n".join(text))
    cases.append(("a trace line with a key twice", d, "line 2 sets max_output_tokens twice"))
    for name, d, want in cases:
        try:
            r = agents_on(d)
        except subprocess.TimeoutExpired:
            check(False, "%s: refused, not blocked on" % name, "exit 2", "timed out")
            continue
        ok, line = one_sentence(r)
        check(r.returncode == 2 and ok and want in line and "\x1b" not in r.stderr,
              "%s: exit 2 saying '%s'" % (name, want), 2, (r.returncode, r.stderr.strip()[-300:]))


def probe_without_usage(tmp):
    """A server whose answers carry no usage cannot show whether it honours ignore_eos: the
    agents run says that (it said "did not honour ignore_eos"), uses the natural policy, and
    its header's ignore_eos_honoured is null, not false."""
    def respond(head, body):
        answer = common.sse_answer(len(body) // 4, texts=["x"] * 3)
        head_end = answer.index(b"\r\n\r\n") + 4
        events = [e for e in answer[head_end:].split(b"\n\n") if e and b'"usage"' not in e]
        payload = b"".join(e + b"\n\n" for e in events)
        return (answer[:head_end].split(b"Content-Length:")[0] + b"Content-Length: %d\r\n\r\n"
                % len(payload) + payload)
    out = os.path.join(tmp, "no-usage-run")
    with common.canned_server(respond) as srv:
        r = run("agents", "--url", "http://127.0.0.1:%d" % srv.port, "--model", "m", "--trajectories",
                common.AA_MINI, "--out", out, "--slo-speed", "0", "--slo-ttft", "100",
                "--max-agents", "1", "--warmup-s", "0", "--stagger-s", "0", "--window-s", "0.5",
                "--min-trajectories", "0", "--min-per-agent", "0", "--threads", "1", "--tokenizer", "none")
    try:
        cfg = json.load(open(os.path.join(out, "results.json")))["run"]["config"]
    except (OSError, ValueError, KeyError):
        cfg = {}
    said = "carried no usage" in r.stderr and "did not honour ignore_eos" not in r.stderr
    check(said and "ignore_eos_honoured" in cfg and cfg["ignore_eos_honoured"] is None,
          "a probe answered without usage: said so, and ignore_eos_honoured null", (True, None),
          (said, cfg.get("ignore_eos_honoured", "absent"), r.stderr.strip()[-300:]))


def damaged_log(tmp):
    """`strobe analyze` says how a run's log is damaged: a header longer than the file (not
    "log version 1 ... reads version 1"), a header that is not JSON (it was read, and its
    records taken from the wrong offset, as "no end mark (the run died)"), events.bin a
    directory (not "No such device"), bodies.bin cut short after the run ended (not requests
    failed as "no-done", "not flushed before the run stopped"), keyed bodies whose key lies past
    bodies.bin (counted, the run not valid). The intact log still reads."""
    good = os.path.join(tmp, "good-run")
    r = run("slt", "--out", good, "--concurrency", "2", "--phase-s", "1", "--ramp-s", "0.2",
            "--input-tokens", "100", "--output-tokens", "3", "--threads", "1", "--tokenizer", "none")
    check(r.returncode == 0, "a short run against the built-in emulator", 0, r.stderr[-300:])
    if r.returncode:
        return

    def set_header_len(run_dir, n):
        with open(os.path.join(run_dir, "events.bin"), "r+b") as f:
            f.seek(12)
            f.write(struct.pack("<I", n))

    def long_header(run_dir):
        set_header_len(run_dir, os.path.getsize(os.path.join(run_dir, "events.bin")))

    def events_dir(run_dir):
        os.remove(os.path.join(run_dir, "events.bin"))
        os.mkdir(os.path.join(run_dir, "events.bin"))

    def cut_bodies(run_dir):
        path = os.path.join(run_dir, "bodies.bin")
        os.truncate(path, os.path.getsize(path) // 2)

    cases = [("header longer than the file", long_header, "header is torn"),
             ("header length 5", lambda d: set_header_len(d, 5), "header (5 bytes) is not valid JSON"),
             ("events.bin a directory", events_dir, "events.bin is a directory, not a file"),
             ("bodies.bin cut to half", cut_bodies, "bodies.bin is shorter than its records say")]
    for k, (name, damage, says) in enumerate(cases):
        d = os.path.join(tmp, "damaged-%d" % k)
        shutil.copytree(good, d)
        damage(d)
        r = run("analyze", "--threads", "1", d)
        ok, line = one_sentence(r)
        check(r.returncode == 1 and ok and says in line and "damaged" in line and "version 1" not in line,
              "analyze, %s: exit 1 saying '%s' and that the log is damaged" % (name, says), (1, says),
              (r.returncode, r.stderr.strip()[-300:]))
    # a keyed event body (dataplane/body_key.h) whose key offset points past bodies.bin: the
    # run is not valid, saying how many bodies are damaged, and nothing reads past the file
    d = os.path.join(tmp, "damaged-keyed")
    shutil.copytree(good, d)
    data = open(os.path.join(d, "events.bin"), "rb").read()
    hl = struct.unpack_from("<I", data, 12)[0]
    keyed = [struct.unpack_from("<Q", data, at + 32)[0] for at in range(16 + hl, len(data) - 63, 64)
             if data[at] == 2 and struct.unpack_from("<q", data, at + 56)[0] < 0]
    with open(os.path.join(d, "bodies.bin"), "r+b") as f:
        for off in keyed[:3]:
            f.seek(off)
            f.write(struct.pack("<Q", 1 << 62))
    r = run("analyze", "--threads", "1", d)
    why = ""
    if os.path.exists(os.path.join(d, "results.json")):
        why = json.load(open(os.path.join(d, "results.json")))["validity"].get("why_not_valid", "")
    check(len(keyed) >= 3 and r.returncode == 0 and "3 event bodies in bodies.bin are damaged" in why,
          "analyze, keyed bodies whose key lies past bodies.bin: not valid, the 3 counted as damaged",
          (">= 3 keyed", 0, "3 event bodies ... damaged"), (len(keyed), r.returncode, why[:200]))
    r = run("analyze", "--threads", "1", good)
    check(r.returncode == 0, "analyze of the intact log still works", 0, (r.returncode, r.stderr[-300:]))


def subcommands():
    """The usage list comes from main.c's table of subcommands: every one it lists answers
    its own --help; no subcommand or an unknown one is a bad command line (exit 2)."""
    r = run("--help")
    listed = re.findall(r"^  ([a-z]+) +\S", r.stdout.split("subcommands:\n")[-1], re.M)
    want = ["slt", "agents", "import", "analyze", "report", "tokenize", "tap"]
    check(r.returncode == 0 and listed == want, "strobe --help lists every subcommand",
          (0, want), (r.returncode, listed))
    for name in listed:
        h = run(name, "--help")
        check(h.returncode == 0 and h.stdout.startswith("usage: strobe %s " % name),
              "strobe %s --help: exit 0 and its usage" % name, "usage: strobe %s ..." % name,
              (h.returncode, h.stdout.splitlines()[:1]))
    r = run()
    check(r.returncode == 2 and r.stderr.startswith("usage: strobe SUBCOMMAND") and not r.stdout,
          "no subcommand: the usage list on stderr, exit 2", 2, (r.returncode, r.stderr[:40]))
    r = run("frobnicate")
    check(r.returncode == 2 and "unknown subcommand 'frobnicate'" in r.stderr,
          "an unknown subcommand is named, exit 2", 2, (r.returncode, r.stderr.strip()))


TWICE = [
    (["slt", "--out", "a", "--out", "b"], "--out is given twice ('a', then 'b')"),
    (["slt", "--concurrency", "1", "--conc", "2"], "--concurrency is given twice ('1', then '2')"),
    (["slt", "--threads=1", "--threads", "2"], "--threads is given twice ('1', then '2')"),
    (["agents", "--slo-speed", "1", "--slo-speed", "2"], "--slo-speed is given twice ('1', then '2')"),
    (["analyze", "RUN", "--tokenizer", "none", "--tokenizer=x"], "--tokenizer is given twice ('none', then 'x')"),
    (["report", "-o", "a", "--out", "b", "RUN"], "--out is given twice ('a', then 'b')"),
    (["import", "--from", "swe-agent", "--from", "mini-swe-agent"], "--from is given twice"),
    (["export-aa", "A", "B", "--trajectories", "x", "--trajectories", "y"], "--trajectories is given twice ('x', then 'y')"),
    (["tokenize", "--tokenizer", "none", "--tokenizer", "none"], "--tokenizer is given twice"),
    (["tap", "--seconds", "1", "--seconds", "2"], "--seconds is given twice ('1', then '2')"),
]


def twice(tmp):
    """An option that keeps one value, given twice, lost its first value without a word (a
    script's --out overridden by a later one wrote the run elsewhere); now refused naming both.
    Repeatable ones (--power) and flags without a value still pass."""
    for args, want in TWICE:
        r = run(*args)
        ok, line = one_sentence(r)
        check(r.returncode == 2 and ok and want in line and "give it once" in line,
              "%s: exit 2 saying '%s'" % (" ".join(args), want), 2, (r.returncode, r.stderr.strip()[-300:]))
    check(not os.path.exists("a") and not os.path.exists("b"), "no run folder made for a flag given twice",
          False, os.path.exists("a") or os.path.exists("b"))
    # a flag without a value given twice changes nothing; --power is a list
    r = run("slt", "--out", os.path.join(tmp, "never"), "--ignore-eos", "--ignore-eos",
            "--url", "http://127.0.0.1:%d" % common.free_port(), "--model", "m",
            "--power", "file:/nonexistent/a.csv", "--power", "file:/nonexistent/b.csv")
    check(r.returncode == 2 and "given twice" not in r.stderr and "/nonexistent/a.csv" in r.stderr,
          "--ignore-eos twice and two --power sources pass the parser (the first power file is then "
          "refused)", "no 'given twice'", r.stderr.strip()[-300:])


if __name__ == "__main__":
    subcommands()
    with tempfile.TemporaryDirectory() as tmp:
        twice(tmp)
    with tempfile.TemporaryDirectory() as tmp:
        directories(tmp)
        import_into_nonempty(tmp)
        numbers(tmp)
        extra_body(tmp)
        prices_and_emu_args(tmp)
        urls(tmp)
        recording(tmp)
        not_sse(tmp)
        not_a_run(tmp)
        empty_out(tmp)
        out_that_cannot_hold_a_run(tmp)
        input_below_template(tmp)
        silent_server(tmp)
        budget_shared_by_attempts(tmp)
        loading_server(tmp)
        trajectory_counts(tmp)
        replay_files(tmp)
        probe_without_usage(tmp)
        damaged_log(tmp)
    common.done()
