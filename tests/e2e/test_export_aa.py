"""strobe export-aa: a single-user agents replay of AA's six-turn sample against strobe-emu,
written as the files AA's agentperf-local writes. Every file parses with AA's field names;
each turn's figures are those of the same request by strobe's own rules (results.json's
iteration figures are recomputed from the export's per-request list); the AA-rule speeds
follow their definitions; summary.json is written last; an existing output directory, a
symbolic link, a run without a one-agent iteration and a non-agents run are refused."""
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time

import common
from common import check

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FAST = os.path.join(ROOT, "emu", "profiles", "sram-like.json")

TURN_KEYS = {"version", "kind", "turn_id", "task_id", "conversation_idx", "success", "error",
             "requested_max_output_tokens", "timing", "tokens", "normalization",
             "recorded_tool_delay_ms", "replayed_tool_delay_ms", "tool_calls", "response_chunks",
             "response_tool_calls", "finish_reason", "aborted"}
TIMING_KEYS = {"e2e_latency_ms", "time_to_first_byte_ms", "time_to_first_token_ms", "generation_ms"}
TOKEN_KEYS = {"server_prompt_tokens", "server_output_tokens", "local_output_tokens",
              "recorded_prompt_tokens", "recorded_completion_tokens", "target_output_tokens",
              "server_cached_prompt_tokens", "server_uncached_prompt_tokens"}
SUMMARY_KEYS = {"version", "kind", "run_id", "manifest", "started_at", "ended_at",
                "wall_duration_ms", "measured_duration_ms", "observer", "success",
                "output_tokens_per_second", "end_to_end_output_tokens_per_second", "config",
                "totals", "latency_distributions_ms", "short_output_warning_turn_ids",
                "length_finished_turn_ids", "failed_turn_ids", "artifacts"}


def pct(v, q):
    """Linear interpolation between order statistics (AA's and strobe's percentile)."""
    v = sorted(v)
    if not v:
        return None
    r = (len(v) - 1) * q
    lo = int(r)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] * (1 - (r - lo)) + v[hi] * (r - lo)


def close(a, b, rel=1e-9):
    return a is not None and b is not None and abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def agents(out, *extra):
    return common.run_strobe("agents", "--trajectories", common.AA_MINI, "--out", out,
                             "--slo-speed", "1", "--slo-ttft", "100", "--warmup-s", "0.5",
                             "--stagger-s", "0", "--window-s", "3", "--min-trajectories", "0",
                             "--min-per-agent", "0", "--threads", "1", "--emu-args",
                             "--profile " + FAST, *extra, timeout=300)


def main():
    tmp = tempfile.mkdtemp(prefix="strobe-export-aa-")
    try:
        run = os.path.join(tmp, "run")
        r = agents(run, "--max-agents", "1")
        check(r.returncode == 0, "a single-user agents replay (--max-agents 1) succeeds", 0,
              (r.returncode, r.stderr[-400:]))
        out = os.path.join(tmp, "aa")
        r = common.run_strobe("export-aa", run, out)
        check(r.returncode == 0, "export-aa succeeds", 0, (r.returncode, r.stderr[-400:]))
        print(r.stdout.strip())
        names = sorted(os.listdir(out))
        check(names == sorted(["turns.jsonl", "tasks.json", "tools.json", "failures.json",
                               "strobe_export.json", "summary.json"]),
              "the export holds AA's files, strobe_export.json and nothing else", "six files",
              names)
        # summary.json is the completion marker: nothing was written after it
        mt = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in names}
        check(all(mt["summary.json"] >= t for t in mt.values()), "summary.json is written last",
              "the newest file", mt)
        turns = [json.loads(l) for l in open(os.path.join(out, "turns.jsonl"))]
        tasks = json.load(open(os.path.join(out, "tasks.json")))
        tools = json.load(open(os.path.join(out, "tools.json")))
        fails = json.load(open(os.path.join(out, "failures.json")))
        summ = json.load(open(os.path.join(out, "summary.json")))
        own = json.load(open(os.path.join(out, "strobe_export.json")))
        res = json.load(open(os.path.join(run, "results.json")))
        trace = [json.loads(l) for l in open(os.path.join(common.AA_MINI, "traces",
                                                          "aa-mini-library-01.jsonl"))]

        # names and shape, as AA's tool writes them
        check([t["turn_id"] for t in turns] == [t["turn_id"] for t in trace],
              "one record per turn of the task, in replay order, with the trace's turn ids",
              [t["turn_id"] for t in trace], [t["turn_id"] for t in turns])
        check(all(set(t) == TURN_KEYS and set(t["timing"]) == TIMING_KEYS and
                  set(t["tokens"]) == TOKEN_KEYS for t in turns),
              "every turn record has AA's keys", sorted(TURN_KEYS), sorted(turns[0]))
        with open(os.path.join(out, "turns.jsonl")) as f:
            line = f.readline()
        check(list(json.loads(line)) == sorted(json.loads(line)), "turns.jsonl keys are sorted",
              "sorted", list(json.loads(line))[:4])
        check(all(t["kind"] == "turn" and t["version"] == 1 and
                  t["task_id"] == "aa-mini-library-01" and
                  t["conversation_idx"] == trace[i]["conversation_idx"]
                  for i, t in enumerate(turns)),
              "kind, version, task and conversation index per turn", "trace's", turns[0])
        check(set(summ) == SUMMARY_KEYS and summ["kind"] == "run_summary",
              "summary.json has AA's keys", sorted(SUMMARY_KEYS), sorted(summ))
        check(tasks["kind"] == "task_summaries" and len(tasks["tasks"]) == 1 and
              tasks["tasks"][0]["totals"]["turns"] == 6, "tasks.json: one task of six turns",
              6, tasks)
        check(tools["kind"] == "tool_summary" and tools["overall"]["calls"] == 0,
              "tools.json: strobe replays no tool call", 0, tools["overall"])
        check(fails == {"version": 1, "kind": "failures", "failures": []},
              "failures.json: none", [], fails)

        # each turn by AA's rules: exact output, ordered timings, the decode speed's definition
        for t in turns:
            tm, tk = t["timing"], t["tokens"]
            ok = (t["success"] and t["error"] is None and t["finish_reason"] == "length" and
                  tk["server_output_tokens"] == 256 and tk["target_output_tokens"] == 256 and
                  t["requested_max_output_tokens"] == 256 and
                  0 < tm["time_to_first_byte_ms"] <= tm["time_to_first_token_ms"] <=
                  tm["e2e_latency_ms"] and 0 < tm["generation_ms"] <= tm["e2e_latency_ms"] and
                  t["response_chunks"] > 1 and t["recorded_tool_delay_ms"] ==
                  trace[t["conversation_idx"]]["simulated_tool_delay_ms_after"])
            check(ok, "turn %s: exact output, TTFB <= TTFT <= E2E, window <= E2E" % t["turn_id"],
                  "consistent", t)
        for t in turns[:-1]:
            check(t["replayed_tool_delay_ms"] >= 50, "turn %s waited its recorded tool time"
                  % t["turn_id"], ">= 50 ms", t["replayed_tool_delay_ms"])

        # the same requests in strobe's own terms
        reqs = own["requests"]
        exported = {q["turn_id"]: q for q in reqs if q["exported"]}
        check(len(exported) == 6 and own["repeated_task_turns_left_out"] == len(reqs) - 6,
              "strobe_export.json lists every request; the task's first replay is exported",
              "6 exported", (len(exported), own["repeated_task_turns_left_out"], len(reqs)))
        for t in turns:
            q = exported[t["turn_id"]]
            same = all(q[k] == t["timing"][k] for k in TIMING_KEYS) and \
                q["output_tokens"] == t["tokens"]["server_output_tokens"]
            check(same, "turn %s: turns.jsonl and strobe_export.json agree" % t["turn_id"],
                  "same request", (q, t["timing"]))
            aa = (q["output_tokens"] - 1) / (q["generation_ms"] / 1e3)
            check(close(q["decode_tokens_per_s"], aa) and
                  q["decode_tokens_per_s"] >= q["strobe_output_speed_tokens_per_s"] * (1 - 1e-12),
                  "turn %s: decode speed = (tokens - 1) / window, >= strobe's (tokens - first "
                  "chunk) / window" % t["turn_id"], aa,
                  (q["decode_tokens_per_s"], q["strobe_output_speed_tokens_per_s"]))
        it = res["iterations"][0]
        win = [q for q in reqs if q["in_window"]]
        check(len(win) == it["requests"] and len(win) > 0,
              "the export's in-window requests are results.json's", it["requests"], len(win))
        ttft = [q["time_to_first_token_ms"] / 1e3 for q in win]
        e2e = [q["e2e_latency_ms"] / 1e3 for q in win]
        speed = [q["strobe_output_speed_tokens_per_s"] for q in win]
        for name, got, want in (("TTFT p50", pct(ttft, 0.5), it["ttft_p50_s"]),
                                ("TTFT p95", pct(ttft, 0.95), it["ttft_p95_s"]),
                                ("E2E p50", pct(e2e, 0.5), it["e2e_latency_p50_s"]),
                                ("speed p25", pct(speed, 0.25), it["output_speed_p25_tokens_per_s"]),
                                ("speed p50", pct(speed, 0.5), it["output_speed_p50_tokens_per_s"])):
            check(close(got, want, 1e-6), "%s from the export's requests = results.json's" % name,
                  want, got)

        # the run's figures by AA's definitions
        gen = sum(t["timing"]["generation_ms"] for t in turns) / 1e3
        dec = sum(t["tokens"]["server_output_tokens"] - 1 for t in turns)
        dur = sum(t["timing"]["e2e_latency_ms"] for t in turns) / 1e3
        out_tok = sum(t["tokens"]["server_output_tokens"] for t in turns)
        check(close(summ["output_tokens_per_second"], dec / gen),
              "pooled decode speed = sum(tokens - 1) / sum(window)", dec / gen,
              summ["output_tokens_per_second"])
        check(close(summ["end_to_end_output_tokens_per_second"], out_tok / dur),
              "end-to-end speed = sum(tokens) / sum(E2E)", out_tok / dur,
              summ["end_to_end_output_tokens_per_second"])
        d = summ["latency_distributions_ms"]["time_to_first_token"]
        tt = [t["timing"]["time_to_first_token_ms"] for t in turns]
        check(d["count"] == 6 and close(d["p50"], pct(tt, 0.5)) and close(d["p95"], pct(tt, 0.95)),
              "summary TTFT distribution over the turns", pct(tt, 0.5), d)
        check(summ["success"] is True and summ["failed_turn_ids"] == [] and
              summ["totals"]["turns"] == 6 and summ["totals"]["failed_turns"] == 0 and
              summ["totals"]["total_server_output_tokens"] == 6 * 256 and
              own["validity"]["valid"] is True,
              "a clean replay: success, valid, no failed turn", True,
              (summ["success"], summ["totals"], own["validity"]))

        # failed turns: counted, named, left out of the latencies (the emulator's 500s)
        run3 = os.path.join(tmp, "run3")
        r = common.run_strobe("agents", "--trajectories", common.AA_MINI, "--out", run3,
                              "--slo-speed", "1", "--slo-ttft", "100", "--warmup-s", "0.5",
                              "--stagger-s", "0", "--window-s", "2", "--min-trajectories", "0",
                              "--min-per-agent", "0", "--threads", "1", "--max-agents", "1",
                              "--emu-args", "--profile " + FAST + " --faults http500=0.5",
                              timeout=300)
        check(r.returncode in (0, 4), "a single-user replay with 500s runs", "0 or 4",
              (r.returncode, r.stderr[-300:]))
        out3 = os.path.join(tmp, "aa-faults")
        r = common.run_strobe("export-aa", run3, out3)
        check(r.returncode == 4 and "is not valid" in r.stderr and "failed" in r.stderr and
              os.path.exists(os.path.join(out3, "summary.json")),
              "export-aa of a run with failed turns writes the files and exits 4, not valid", 4,
              (r.returncode, r.stderr.strip()[-300:]))
        turns3 = [json.loads(l) for l in open(os.path.join(out3, "turns.jsonl"))]
        summ3 = json.load(open(os.path.join(out3, "summary.json")))
        fails3 = json.load(open(os.path.join(out3, "failures.json")))
        own3 = json.load(open(os.path.join(out3, "strobe_export.json")))
        bad = [t["turn_id"] for t in turns3 if not t["success"]]
        good = [t for t in turns3 if t["success"]]
        check(len(bad) > 0 and all(t["error"] and "500" in t["error"] for t in turns3
                                   if not t["success"]),
              "the 500s are failed turns with the status in their error", "> 0 failed",
              [(t["turn_id"], t["error"]) for t in turns3])
        check(summ3["failed_turn_ids"] == bad and
              [f["turn_id"] for f in fails3["failures"]] == bad and
              summ3["totals"]["failed_turns"] == len(bad) and
              summ3["totals"]["successful_turns"] == len(good) and summ3["success"] is False,
              "failed turns are named in summary.json and failures.json and counted", bad,
              (summ3["failed_turn_ids"], fails3["failures"], summ3["totals"]))
        d = summ3["latency_distributions_ms"]["e2e"]
        check(d["count"] == len(good) and
              close(summ3["totals"]["total_inference_latency_ms"],
                    sum(t["timing"]["e2e_latency_ms"] for t in good)),
              "failed turns are left out of the latencies", len(good), d)
        check(own3["validity"]["valid"] is False and "failed" in own3["validity"]["why_not_valid"],
              "a replay with a failed turn is not valid", False, own3["validity"])

        # tool calls in the answer: counted per turn, left out of the pooled decode speed
        def tool_answer(head, body):
            calls = [{"index": 0, "id": "c0", "type": "function",
                      "function": {"name": "search_catalog", "arguments": ""}},
                     {"index": 0, "function": {"arguments": json.dumps({"topic": "stars"})}},
                     {"index": 1, "id": "c1", "type": "function",
                      "function": {"name": "get_availability", "arguments": "{}"}}]
            ev = [{"choices": [{"index": 0, "delta": {"content": "Looking."}}]}]
            ev += [{"choices": [{"index": 0, "delta": {"tool_calls": [c]}}]} for c in calls]
            ev.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
            ev.append({"choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 12}})
            payload = ("".join("data: %s\n\n" % json.dumps(e) for e in ev) +
                       "data: [DONE]\n\n").encode()
            return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(payload) + payload)

        with common.canned_server(tool_answer) as srv:
            run4 = os.path.join(tmp, "run4")
            r = common.run_strobe("agents", "--url", "http://127.0.0.1:%d" % srv.port, "--model",
                                  "m", "--trajectories", common.AA_MINI, "--out", run4,
                                  "--output-policy", "natural", "--slo-speed", "1",
                                  "--slo-ttft", "100", "--warmup-s", "0.2", "--stagger-s", "0",
                                  "--window-s", "1", "--min-trajectories", "0",
                                  "--min-per-agent", "0", "--threads", "1", "--max-agents", "1",
                                  timeout=120)
        check(r.returncode in (0, 4), "a single-user replay against a tool-calling server runs",
              "0 or 4", (r.returncode, r.stderr[-300:]))
        out4 = os.path.join(tmp, "aa-tools")
        r = common.run_strobe("export-aa", run4, out4)
        # the canned answers carry too few tokens for a decode window: a short-output warning,
        # so the export is written and is not valid by methodology.md section 8
        check(r.returncode == 4 and "short-output warning" in r.stderr,
              "export-aa of the tool-calling replay: written, not valid (short output), exit 4", 4,
              (r.returncode, r.stderr.strip()[-300:]))
        turns4 = [json.loads(l) for l in open(os.path.join(out4, "turns.jsonl"))]
        summ4 = json.load(open(os.path.join(out4, "summary.json")))
        check(len(turns4) == 6 and all(t["response_tool_calls"] == 2 and
                                       t["finish_reason"] == "tool_calls" and t["success"] and
                                       t["requested_max_output_tokens"] == 16384
                                       for t in turns4),
              "two streamed tool calls counted per turn, natural policy's cap", 2,
              [(t["response_tool_calls"], t["finish_reason"]) for t in turns4])
        check(summ4["output_tokens_per_second"] is None and
              close(summ4["end_to_end_output_tokens_per_second"],
                    12 * 6 / sum(t["timing"]["e2e_latency_ms"] / 1e3 for t in turns4)),
              "turns with tool calls are left out of the pooled decode speed, not of end-to-end",
              None, (summ4["output_tokens_per_second"],
                     summ4["end_to_end_output_tokens_per_second"]))

        # refusals
        before = open(os.path.join(out, "summary.json")).read()
        r = common.run_strobe("export-aa", run, out)
        check(r.returncode == 2 and "already exists" in r.stderr and
              open(os.path.join(out, "summary.json")).read() == before,
              "an existing output directory is refused and left as it was", 2,
              (r.returncode, r.stderr.strip()))
        target = os.path.join(tmp, "target")
        os.mkdir(target)
        link = os.path.join(tmp, "link")
        os.symlink(target, link)
        r = common.run_strobe("export-aa", run, link)
        check(r.returncode == 2 and "symbolic link" in r.stderr and os.listdir(target) == [],
              "a symbolic link as the output directory is refused, nothing written through it",
              2, (r.returncode, r.stderr.strip(), os.listdir(target)))
        run2 = os.path.join(tmp, "run2")
        r = agents(run2, "--start-agents", "2", "--max-agents", "2")
        check(r.returncode == 0, "an agents run at two agents succeeds", 0, r.stderr[-300:])
        r = common.run_strobe("export-aa", run2, os.path.join(tmp, "aa2"))
        check(r.returncode == 2 and "no iteration at one agent" in r.stderr and
              not os.path.exists(os.path.join(tmp, "aa2")),
              "a run without a one-agent iteration is refused in one sentence", 2,
              (r.returncode, r.stderr.strip()))
        slt = os.path.join(tmp, "slt")
        r = common.run_strobe("slt", "--out", slt, "--concurrency", "1", "--phase-s", "1",
                              "--ramp-s", "0", "--output-tokens", "20", "--threads", "1",
                              "--emu-args", "--profile " + FAST)
        check(r.returncode == 0, "a short slt run succeeds", 0, r.stderr[-300:])
        r = common.run_strobe("export-aa", slt, os.path.join(tmp, "aa3"))
        check(r.returncode == 2 and "not a `strobe agents` run" in r.stderr and
              r.stderr.count("\n") == 1 and not os.path.exists(os.path.join(tmp, "aa3")),
              "a non-agents run is refused in one sentence", 2, (r.returncode, r.stderr))
        r = common.run_strobe("export-aa", run)
        check(r.returncode == 2, "a missing OUT_DIR is a bad command line", 2, r.returncode)
        # another replay with as many trajectories: its one task has fewer turns than the run
        # played, so the turns cannot be named from it
        other = os.path.join(tmp, "other-replay")
        shutil.copytree(common.AA_MINI, other)
        trace = os.path.join(other, "traces", "aa-mini-library-01.jsonl")
        first = open(trace).readline()
        open(trace, "w").write(first)
        manifest = os.path.join(other, "manifest.json")
        m = json.load(open(manifest))
        m["tasks"][0]["model_calls"] = 1
        m["tasks"][0]["tool_calls"] = 1
        json.dump(m, open(manifest, "w"))
        r = common.run_strobe("export-aa", run, os.path.join(tmp, "aa4"), "--trajectories", other)
        check(r.returncode == 2 and "not the replay the run used" in r.stderr and
              not os.path.exists(os.path.join(tmp, "aa4")),
              "a replay other than the run's (same count, fewer turns) is refused", 2,
              (r.returncode, r.stderr.strip()[-300:]))
        # files the disk cannot take (a file-size limit): exit 1, and nothing left behind
        def small_files():
            resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        aa5 = os.path.join(tmp, "aa5")
        r = subprocess.run([common.STROBE, "export-aa", run, aa5], capture_output=True, text=True,
                           timeout=300, preexec_fn=small_files)
        check(r.returncode == 1 and "turns.jsonl" in r.stderr and not os.path.exists(aa5),
              "a write that fails: exit 1 naming the file, OUT_DIR removed", (1, False),
              (r.returncode, r.stderr.strip()[-300:], os.path.exists(aa5)))
        stopped_early(tmp)
        max_context(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    common.done()


def max_context(tmp):
    """--max-context-tokens kept at least one turn of every trajectory, so a first prompt over
    the limit was sent anyway, without a word. Now a trajectory is cut to the turns that fit
    and left out when its first prompt alone is longer; stderr and the run's header count
    both, and a run where none fits is refused."""
    r = agents(os.path.join(tmp, "ctx-none"), "--max-agents", "1", "--max-context-tokens", "100")
    check(r.returncode == 2 and "no trajectory fits --max-context-tokens 100" in r.stderr,
          "no trajectory fits: refused before the run, exit 2", 2, (r.returncode, r.stderr.strip()[-300:]))
    run = os.path.join(tmp, "ctx")
    r = agents(run, "--max-agents", "1", "--max-context-tokens", "300")
    cfg = json.load(open(os.path.join(run, "results.json")))["run"]["config"] if r.returncode == 0 else {}
    check(r.returncode == 0 and "trajectories cut to the turns that fit: 1; left out" in r.stderr and
          cfg.get("trajectories_shortened_to_max_context") == 1 and
          cfg.get("trajectories_over_max_context") == 0,
          "--max-context-tokens 300: the one trajectory cut to its turns that fit, said and recorded", 1,
          (r.returncode, r.stderr.strip()[-300:], cfg.get("trajectories_shortened_to_max_context")))
    out = run + "-aa"
    r = common.run_strobe("export-aa", run, out)
    turns = [json.loads(l) for l in open(os.path.join(out, "turns.jsonl"))] if r.returncode in (0, 4) else []
    check(0 < len(turns) < 6, "the export holds only the turns that fit (fewer than the 6 recorded)",
          "1 to 5", len(turns))


def stopped_early(tmp):
    """A run stopped by SIGINT between turns, or killed, was exported as valid, exit 0: every
    turn it had sent had succeeded. Now not valid, saying why, exit 4, the files written."""
    for sig, why in ((signal.SIGINT, "interrupted during the iteration"), (signal.SIGKILL, "has no end")):
        run = os.path.join(tmp, "stopped-%d" % sig)
        cmd = [common.STROBE, *common.with_transport(
            ["agents", "--trajectories", common.AA_MINI, "--out", run, "--slo-speed", "1",
             "--slo-ttft", "100", "--warmup-s", "0.2", "--stagger-s", "0", "--window-s", "20",
             "--min-trajectories", "0", "--min-per-agent", "0", "--threads", "1",
             "--max-agents", "1", "--tool-time", "0.3", "--emu-args", "--profile " + FAST])]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # stopped once the iteration has sent a few turns (the log grows with their events)
        deadline = time.time() + 60
        events = os.path.join(run, "events.bin")
        while time.time() < deadline and (not os.path.exists(events) or
                                          os.path.getsize(events) < 64 * 1024):
            time.sleep(0.05)
        p.send_signal(sig)
        p.communicate(timeout=60)
        out = run + "-aa"
        r = common.run_strobe("export-aa", run, out)
        path = os.path.join(out, "strobe_export.json")
        own = json.load(open(path)) if os.path.exists(path) else {"validity": {}}
        check(r.returncode == 4 and why in r.stderr and own["validity"].get("valid") is False and
              why in own["validity"].get("why_not_valid", ""),
              "export-aa of a run stopped by signal %d: not valid ('%s'), exit 4" % (sig, why),
              (4, why), (r.returncode, r.stderr.strip()[-300:], own["validity"]))

    # a search stopped in its second iteration (2 agents): the 1-agent iteration is whole
    run = os.path.join(tmp, "stopped-later")
    cmd = [common.STROBE, *common.with_transport(
        ["agents", "--trajectories", common.AA_MINI, "--out", run, "--slo-speed", "1",
         "--slo-ttft", "100", "--warmup-s", "0.2", "--stagger-s", "0", "--window-s", "3",
         "--min-trajectories", "0", "--min-per-agent", "0", "--threads", "1",
         "--max-agents", "2", "--emu-args", "--profile " + FAST])]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    said = []
    for line in p.stderr:  # "strobe: iteration 0: ..." once the first iteration has ended
        said.append(line)
        if "iteration 0:" in line:
            time.sleep(1.0)
            p.send_signal(signal.SIGINT)
            break
    rest = p.communicate(timeout=60)[1]
    out = run + "-aa"
    r = common.run_strobe("export-aa", run, out)
    check(p.returncode == 3 and r.returncode == 0 and "not valid" not in r.stderr,
          "a search stopped during its 2-agent iteration: the 1-agent iteration exports as valid, "
          "exit 0", (3, 0), (p.returncode, r.returncode, r.stderr.strip()[-300:],
                             "".join(said[-2:]) + rest[-200:]))


if __name__ == "__main__":
    main()
