"""strobe import on bad input: every value it writes within the limits strobe agents loads
(token counts, tool delays and their total), no turn without messages, a non-empty task id
for a file named with a leading dot, one JSON document per file (no trailing text, no key
twice), a message without a string role refused, an unknown --from named, JSON nested too
deeply said to be, a device refused without reading it (a FIFO read, as <(jq ...) gives one),
a lost stdout an error,
and N recordings of one task named in near-linear time. Each check failed before its fix."""
import json
import os
import subprocess
import threading
import tempfile
import time

import common
from common import check

DEAD = ["--slo-speed", "1", "--slo-ttft", "1", "--url", "http://127.0.0.1:1", "--model", "m"]


def write(path, doc):
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def swe(path, steps, tokens_received=None):
    """A SWE-agent .traj with one assistant answer per execution_time in steps."""
    hist = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    for i in range(len(steps)):
        hist += [{"role": "assistant", "content": "answer %d" % i}, {"role": "user", "content": "obs"}]
    doc = {"history": hist, "trajectory": [{"execution_time": t} for t in steps], "info": {}}
    if tokens_received is not None:
        doc["info"]["model_stats"] = {"tokens_received": tokens_received}
    return write(path, doc)


def mini(path, instance_id="same", gap_s=1.0):
    """A two-turn mini-swe-agent recording whose tool result comes gap_s after the first answer."""
    ans = lambda t: {"role": "assistant", "content": "a", "extra": {"timestamp": t}}
    doc = {"trajectory_format": "mini-swe-agent-1.1", "messages": [
        {"role": "user", "content": "u"}, ans(1.0),
        {"role": "user", "content": "result", "extra": {"timestamp": 1.0 + gap_s}}, ans(2.0 + gap_s)]}
    if instance_id is not None:
        doc["instance_id"] = instance_id
    return write(path, doc)


def imports(fmt, *files, out):
    return common.run_strobe("import", "--from", fmt, *files, "-o", out, timeout=60)


def skipped(r, file, words):
    """Exit 1 (the only file skipped), one line for it on stdout naming words, nothing written."""
    line = [l for l in r.stdout.splitlines() if l.startswith("skipped %s:" % file)]
    return r.returncode == 1 and len(line) == 1 and all(w in line[0] for w in words)


def limits(d):
    big = swe(os.path.join(d, "tokens.traj"), [1, 2], tokens_received=1e15)
    r = imports("swe-agent", big, out=os.path.join(d, "o-tokens"))
    check(skipped(r, big, ["tokens_received", "2147483647"]),
          "tokens_received 1e15: skipped naming it (agents refuses counts over 2^31-1)",
          "exit 1, skipped ... tokens_received", (r.returncode, r.stdout.strip()[-300:]))
    ok = swe(os.path.join(d, "tokens-ok.traj"), [1, 2], tokens_received=3e9)
    out = os.path.join(d, "o-tokens-ok")
    r = imports("swe-agent", ok, out=out)
    r2 = common.run_strobe("agents", "--trajectories", out, "--out", os.path.join(d, "never0"), *DEAD)
    check(r.returncode == 0 and "first request" in r2.stderr,
          "tokens_received 3e9 in shares under 2^31 each: imported, and agents loads it",
          (0, "the unreachable URL stops the run"), (r.returncode, r2.stderr.strip()[-200:]))

    slow = swe(os.path.join(d, "slow.traj"), [1e10, 2])
    r = imports("swe-agent", slow, out=os.path.join(d, "o-slow"))
    check(skipped(r, slow, ["execution_time", "1e+12 ms"]),
          "execution_time 1e10 s (1e13 ms): skipped naming it", "exit 1, skipped ... execution_time",
          (r.returncode, r.stdout.strip()[-300:]))
    many = swe(os.path.join(d, "sum.traj"), [6e8, 6e8, 1])
    r = imports("swe-agent", many, out=os.path.join(d, "o-sum"))
    check(skipped(r, many, ["add up", "1e+12 ms"]),
          "two delays of 6e11 ms: their total over 1e12 ms skipped (agents refuses the manifest)",
          "exit 1, skipped ... add up", (r.returncode, r.stdout.strip()[-300:]))
    gap = mini(os.path.join(d, "gap.json"), gap_s=2e10)
    r = imports("mini-swe-agent", gap, out=os.path.join(d, "o-gap"))
    check(skipped(r, gap, ["extra.timestamp"]),
          "mini-swe-agent tool result 2e10 s after its answer: skipped naming the timestamps",
          "exit 1, skipped ... extra.timestamp", (r.returncode, r.stdout.strip()[-300:]))

    # the loader's own message states the range (it once said "non-negative" of a positive value)
    out = os.path.join(d, "o-manifest")
    r = imports("swe-agent", swe(os.path.join(d, "fine.traj"), [1, 2]), out=out)
    man = json.load(open(os.path.join(out, "manifest.json")))
    man["tasks"][0]["total_recorded_tool_delay_ms"] = 1e13
    write(os.path.join(out, "manifest.json"), man)
    r2 = common.run_strobe("agents", "--trajectories", out, "--out", os.path.join(d, "never1"), *DEAD)
    check(r.returncode == 0 and r2.returncode != 0 and "from 0 to 1e12" in r2.stderr and
          "non-negative" not in r2.stderr,
          "agents on total_recorded_tool_delay_ms 1e13 states the range 0 to 1e12",
          "... from 0 to 1e12", r2.stderr.strip()[-300:])


def turns_and_names(d):
    lead = write(os.path.join(d, "lead.json"), [
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "u"},
        {"role": "assistant", "content": "a"}])
    out = os.path.join(d, "o-lead")
    r = imports("openai-messages", lead, out=out)
    lines = [json.loads(l) for l in open(os.path.join(out, "traces", "lead.jsonl"))] \
        if r.returncode == 0 else []
    r2 = common.run_strobe("agents", "--trajectories", out, "--out", os.path.join(d, "never2"), *DEAD)
    check(r.returncode == 0 and ("note %s:" % lead) in r.stdout and len(lines) == 1 and
          len(lines[0]["messages"]) == 2 and "skipping" not in r2.stderr and "first request" in r2.stderr,
          "a leading assistant message: no turn with \"messages\":[] (said so), and agents takes the rest",
          (0, "note", 1, 2, "the unreachable URL stops the run"),
          (r.returncode, r.stdout.strip()[:200], [len(l["messages"]) for l in lines], r2.stderr.strip()[-200:]))
    only = write(os.path.join(d, "only.json"), [{"role": "assistant", "content": "hello"}])
    r = imports("openai-messages", only, out=os.path.join(d, "o-only"))
    check(skipped(r, only, ["no request before it"]),
          "an assistant message alone: skipped saying there is no request", "exit 1, skipped",
          (r.returncode, r.stdout.strip()[-300:]))

    dot = mini(os.path.join(d, ".traj.json"), instance_id=None)
    dots = mini(os.path.join(d, "..."), instance_id=None)
    out = os.path.join(d, "o-dot")
    r = imports("mini-swe-agent", dot, dots, out=out)
    ids = [t["task_id"] for t in json.load(open(os.path.join(out, "manifest.json")))["tasks"]] \
        if r.returncode == 0 else []
    check(ids == ["traj", "recording"] and sorted(os.listdir(os.path.join(out, "traces"))) ==
          ["recording.jsonl", "traj.jsonl"],
          "files .traj.json and ... without instance_id: task ids 'traj' and 'recording'",
          ["traj", "recording"], (r.returncode, ids))

    # the ids are those of the old rescan, in the order given; 2000 copies took 12 s
    same = mini(os.path.join(d, "same.json"))
    mixed = [mini(os.path.join(d, n + ".json"), n) for n in ["same-3", "same", "x-2"]]
    order = [mixed[0], same, same, mixed[2], same, same, same, mixed[0]]
    out = os.path.join(d, "o-order")
    r = imports("mini-swe-agent", *order, out=out)
    ids = [t["task_id"] for t in json.load(open(os.path.join(out, "manifest.json")))["tasks"]] \
        if r.returncode == 0 else []
    want = ["same-3", "same", "same-2", "x-2", "same-4", "same-5", "same-6", "same-3-2"]
    check(ids == want, "repeated names numbered as before: first free suffix, in order", want, ids)
    out = os.path.join(d, "o-many")
    t0 = time.time()
    r = imports("mini-swe-agent", *([same] * 2000), out=out)
    took = time.time() - t0
    ids = [t["task_id"] for t in json.load(open(os.path.join(out, "manifest.json")))["tasks"]] \
        if r.returncode == 0 else []
    check(r.returncode == 0 and len(set(ids)) == 2000 and ids[-1] == "same-2000" and took < 5,
          "2000 recordings of one task: 2000 ids, in under 5 s (about 0.3 s; 12 s when cubic)",
          "< 5 s, same-2000", "%.1f s, exit %d, last %s" % (took, r.returncode, ids[-1:] or None))


def documents(d):
    one = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    cases = [
        ("garbage.json", json.dumps(one) + " xx", ["more text follows", "'xx'"]),
        ("two.json", json.dumps(one) + json.dumps(one), ["more text follows"]),
        ("twice.json", '{"messages":%s,"messages":[]}' % json.dumps(one), ["'messages'", "twice"]),
        ("role.json", json.dumps([{"role": "user", "content": "u"}, {"role": 5, "content": "x"}] + one),
         ["message 1", "role"]),
        ("norole.json", json.dumps({"messages": [{"content": "x"}] + one}), ["messages[0]", "role"]),
        ("deep.json", "[" * 2000 + "]" * 2000, ["nests", "1000 levels"]),
        ("bad.json", "[{]", ["not valid JSON"]),
    ]
    for name, text, words in cases:
        f = write(os.path.join(d, name), text)
        r = imports("openai-messages", f, out=os.path.join(d, "o-" + name))
        check(skipped(r, f, words), "%s: skipped saying %s" % (name, " ... ".join(words)),
              "exit 1, skipped ... %s" % words, (r.returncode, r.stdout.strip()[-300:]))
    good = write(os.path.join(d, "good.json"), one)
    r = imports("MINI-SWE-AGENT", good, out=os.path.join(d, "o-upper"))
    check(r.returncode == 2 and "unknown format 'MINI-SWE-AGENT'" in r.stderr and
          "mini-swe-agent, swe-agent or openai-messages" in r.stderr,
          "--from MINI-SWE-AGENT: the unknown format named, with the ones there are",
          (2, "unknown format 'MINI-SWE-AGENT'"), (r.returncode, r.stderr.strip()))


def files_and_stdout(d):
    for f, kind in [("/dev/zero", "character device")]:
        try:
            r = imports("openai-messages", f, out=os.path.join(d, "o-" + os.path.basename(f)))
            got = (r.returncode, r.stdout.strip()[-300:])
        except subprocess.TimeoutExpired:
            r, got = None, "still reading after 60 s"
        check(r is not None and skipped(r, f, [kind]), "%s: skipped as a %s, not read" % (f, kind),
              "exit 1, skipped ... %s" % kind, got)
    # a pipe, as <(jq ...) gives one, is a recording read to its end once its writer opens it
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    text = json.dumps({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]})

    def feed():
        with open(fifo, "w") as w:
            w.write(text)
    feeder = threading.Thread(target=feed)
    feeder.start()
    r = imports("openai-messages", fifo, out=os.path.join(d, "o-fifo"))
    feeder.join(timeout=60)
    check(r.returncode == 0 and "imported 1" in r.stdout,
          "a FIFO with a writer (process substitution) is read as a recording", 0,
          (r.returncode, r.stdout.strip()[-300:], r.stderr.strip()[-300:]))

    good = write(os.path.join(d, "good2.json"), [{"role": "user", "content": "u"},
                                                 {"role": "assistant", "content": "a"}])
    out = os.path.join(d, "o-full")
    with open("/dev/full", "w") as full:
        r = subprocess.run([common.STROBE, "import", "--from", "openai-messages", good,
                            os.path.join(d, "missing.json"), "-o", out],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    check(r.returncode == 1 and "standard output" in r.stderr and not os.path.exists(out),
          "stdout to /dev/full: exit 1 saying so, nothing left behind",
          (1, "cannot write to standard output", False),
          (r.returncode, r.stderr.strip()[-300:], os.path.exists(out)))
    # a pipe whose reader has gone (... | head -1): SIGPIPE killed import before it cleaned up
    rd, wr = os.pipe()
    os.close(rd)
    out = os.path.join(d, "o-pipe")
    r = subprocess.run([common.STROBE, "import", "--from", "openai-messages", good, "-o", out],
                       stdout=wr, stderr=subprocess.PIPE, text=True, timeout=60)
    os.close(wr)
    check(r.returncode == 1 and "standard output" in r.stderr and not os.path.exists(out),
          "stdout to a closed pipe: exit 1 saying so, nothing left behind", (1, False),
          (r.returncode, r.stderr.strip()[-300:], os.path.exists(out)))
    # both streams into one pipe: the skipped line (stdout, buffered) must come first
    r = subprocess.run([common.STROBE, "import", "--from", "openai-messages",
                        os.path.join(d, "missing.json"), "-o", os.path.join(d, "o-pipe")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    lines = r.stdout.splitlines()
    check(len(lines) == 2 and lines[0].startswith("skipped") and "no recording could" in lines[1],
          "piped: the skipped line comes before the 'no recording could be imported' line",
          ["skipped ...", "strobe import: no recording could ..."], lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        limits(tmp)
        turns_and_names(tmp)
        documents(tmp)
        files_and_stdout(tmp)
    common.done()
