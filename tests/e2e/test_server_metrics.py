"""The server's side of a run. X-Request-ID: every request names strobe's id for it, the same id
the log keeps. --server-metrics: the server's /metrics scraped into the log by the telemetry thread and
summarised per phase beside strobe's own figures (strobe-emu's requests running, its TTFT and
ITL histograms); strobe analyze reproduces it; bad URLs refused in one sentence; an exposition
that is not Prometheus text kept and counted as malformed, not fatal."""
import http.server
import json
import os
import re
import struct
import tempfile
import threading

import common
from common import check

MODEL = ["--step-us", "2000", "--step-us-per-seq", "0", "--max-batch", "64", "--prefill-tps", "1e8"]


def slt(run, *args):
    return common.run_strobe("slt", "--out", run, "--threads", "1", "--phase-s", "3",
                             "--ramp-s", "0.5", "--output-tokens", "200", "--ignore-eos",
                             "--input-tokens", "100", *args, timeout=300)


def against_emulator(tmp):
    run = os.path.join(tmp, "emu")
    r = slt(run, "--concurrency", "4,8", "--emu-args", " ".join(MODEL),
            "--server-metrics", "auto", "--server-metrics-rate", "4")
    check(r.returncode == 0, "slt --server-metrics auto against the emulator", 0, r.stderr[-400:])
    check("scraping the server's metrics at http://127.0.0.1:" in r.stderr,
          "the scrape URL is said", "scraping ... at", r.stderr[-400:])
    check("server (strobe-emu" in r.stdout, "the table shows the server's line", "server (strobe-emu",
          r.stdout[-600:])
    res = json.load(open(os.path.join(run, "results.json")))
    check(res["run"]["server_metrics"]["rate_hz"] == 4, "the header names the rate", 4,
          res["run"].get("server_metrics"))
    for ph in res["phases"]:
        conc, s = ph["concurrency"], ph.get("server", {})
        what = "phase at concurrency %d: " % conc
        check(s.get("server") == "strobe-emu", what + "the emulator's names recognised", "strobe-emu",
              s.get("server"))
        # 3 s at 4 Hz: about 12 scrapes inside the window
        check(s.get("scrapes_in_window", 0) >= 6, what + "scrapes inside the window", ">= 6",
              s.get("scrapes_in_window"))
        running = s.get("requests_running", {}).get("mean", -1)
        check(conc - 1 <= running <= conc, what + "requests running, the server's count",
              "%d - 1 to %d" % (conc, conc), running)
        check(s.get("requests_waiting", {}).get("max", -1) == 0, what + "nothing waits",
              0, s.get("requests_waiting"))
        ttft = s.get("ttft_s", {})
        # the server's TTFT runs from the request's arrival, strobe's from when it was due:
        # on loopback they differ by the send and the read, well under 20 ms
        check(ttft.get("observations", 0) >= 1 and abs(ttft["mean"] - ph["ttft_s"]["mean"]) < 0.02,
              what + "the server's mean TTFT agrees with strobe's", ph["ttft_s"]["mean"],
              ttft)
        itl = s.get("itl_s", {})
        # one 2 ms step per token: the server's inter-step time and strobe's speed agree
        check(itl.get("observations", 0) > 100 and 0.0018 < itl["mean"] < 0.0035,
              what + "the server's ITL is the emulated 2 ms step", "about 0.002 s", itl)
        check(itl["p50"] <= itl["p90"] <= itl["p99"], what + "percentiles in order", "p50<=p90<=p99",
              itl)
    rep = os.path.join(tmp, "report")
    r = common.run_strobe("report", run, "-o", rep)
    page = open(os.path.join(rep, "index.html")).read() if r.returncode == 0 else ""
    png = os.path.join(rep, "server_0.png")
    check(r.returncode == 0 and os.path.exists(png) and os.path.getsize(png) > 0 and
          "The server's view over time" in page,
          "strobe report charts the server's view", "server_0.png in the page", r.stderr[-300:])
    before = open(os.path.join(run, "results.json"), "rb").read()
    a = common.run_strobe("analyze", run)
    check(a.returncode in (0, 4) and open(os.path.join(run, "results.json"), "rb").read() == before,
          "strobe analyze reproduces the server's figures byte for byte", "same bytes",
          a.stderr[-300:])


class _Junk(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"this is not prometheus text\n{\"json\": true}\nvllm:num_requests_running 3\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def bad_input(tmp):
    r = slt(os.path.join(tmp, "ftp"), "--concurrency", "1", "--server-metrics", "ftp://x/metrics")
    check(r.returncode == 2 and "--server-metrics takes auto" in r.stderr,
          "a URL that is not http(s) is refused", "exit 2, one sentence", (r.returncode, r.stderr[-200:]))
    port = common.free_port()
    r = slt(os.path.join(tmp, "closed"), "--concurrency", "1",
            "--server-metrics", "http://127.0.0.1:%d/metrics" % port)
    check(r.returncode == 2 and "could not be read" in r.stderr and "--server-metrics" in r.stderr,
          "a named URL nobody answers refuses the run", "exit 2, says what to do",
          (r.returncode, r.stderr[-300:]))
    check(not os.path.exists(os.path.join(tmp, "closed", "events.bin")),
          "nothing was run", "no log", "a log")
    r = slt(os.path.join(tmp, "rate"), "--concurrency", "1", "--server-metrics", "auto",
            "--server-metrics-rate", "fast")
    check(r.returncode == 2, "a rate that is not a number", 2, r.returncode)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Junk)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    run = os.path.join(tmp, "junk")
    r = slt(run, "--concurrency", "2", "--emu-args", " ".join(MODEL),
            "--server-metrics", "http://127.0.0.1:%d/metrics" % srv.server_address[1],
            "--server-metrics-rate", "4")
    srv.shutdown()
    check(r.returncode == 0, "an exposition with junk lines does not stop the run", 0, r.stderr[-300:])
    s = json.load(open(os.path.join(run, "results.json")))["phases"][0]["server"]
    check(s["malformed_lines_in_run"] >= 2 * s["scrapes_in_window"] > 0,
          "junk lines are counted as malformed", ">= 2 per scrape", s)
    check(s["requests_running"]["mean"] == 3, "the one good line among them is read", 3,
          s.get("requests_running"))


def log_request_ids(run):
    """The req_id of every REC_REQUEST_SENT record (dataplane/log_records.h: 64-byte records
    after "STROBELG", a version, the header's length and the header)."""
    data = open(os.path.join(run, "events.bin"), "rb").read()
    _, hlen = struct.unpack_from("<II", data, 8)
    ids, at = set(), 16 + hlen
    while at + 64 <= len(data):
        rtype, rid = data[at], struct.unpack_from("<Q", data, at + 8)[0]
        if rtype == 1:
            ids.add(rid)
        at += 64
    return ids


def request_ids(tmp):
    with common.canned_server(lambda head, body: common.sse_answer(len(body) // 4)) as srv:
        run = os.path.join(tmp, "ids")
        r = common.run_strobe("slt", "--url", "http://127.0.0.1:%d" % srv.port, "--out", run,
                              "--concurrency", "2", "--phase-s", "1", "--ramp-s", "0.2",
                              "--input-tokens", "100", "--output-tokens", "3", "--threads", "2",
                              "--tokenizer", "none", "--model", "m")
        reqs = [h for h, b in srv.requests if not common.is_probe(b)]
    check(r.returncode == 0, "a run against a canned server", 0, r.stderr[-300:])
    header = re.compile(rb"\r\nX-Request-ID: strobe-([0-9a-f]{16})(?:\r\n|$)")
    sent = [header.search(h) for h in reqs]
    check(reqs and all(sent), "every request carries X-Request-ID: strobe-<16 hex digits>",
          "in every head", [h[:300] for h, m in zip(reqs, sent) if not m][:1])
    in_heads = {int(m.group(1), 16) for m in sent if m}
    logged = log_request_ids(run)
    check(logged and logged == in_heads and len(in_heads) == len(reqs),
          "the ids the server saw are the log's request ids, one per request",
          "%d logged" % len(logged), "%d in heads, %d requests, %d in common" %
          (len(in_heads), len(reqs), len(in_heads & logged)))


def agents_request_ids(tmp):
    """The agents' requests come from a request source: the worker writes the id it gives
    each one into the head the source built."""
    with common.canned_server(lambda head, body: common.sse_answer(len(body) // 4)) as srv:
        run = os.path.join(tmp, "agents-ids")
        r = common.run_strobe("agents", "--trajectories", common.AA_MINI, "--out", run,
                              "--slo-speed", "0", "--slo-ttft", "100", "--max-agents", "2",
                              "--warmup-s", "0.5", "--stagger-s", "0.2", "--window-s", "2",
                              "--min-trajectories", "0", "--min-per-agent", "0", "--threads", "1",
                              "--tool-time", "0.01", "--url", "http://127.0.0.1:%d" % srv.port,
                              "--model", "m")
        heads = [h for h, _ in srv.requests]
    check(r.returncode == 0, "an agents run against a canned server", 0, r.stderr[-300:])
    found = [re.search(rb"\r\nX-Request-ID: strobe-([0-9a-f]{16})(?:\r\n|$)", h) for h in heads]
    in_heads = {int(m.group(1), 16) for m in found if m}
    logged = log_request_ids(run)
    check(logged and in_heads == logged, "agents: the ids the server saw are the log's request ids",
          "%d logged" % len(logged), "%d in heads (%d requests)" % (len(in_heads), len(heads)))


def progress(tmp):
    """Off a terminal, a plain progress line every --progress-s seconds with the live figures;
    none with --progress-s 0."""
    run = os.path.join(tmp, "progress")
    r = slt(run, "--concurrency", "4", "--emu-args", " ".join(MODEL), "--progress-s", "0.5")
    lines = [l for l in r.stderr.splitlines() if l.startswith("strobe: phase 0  concurrency 4")]
    check(r.returncode == 0 and len(lines) >= 3, "progress lines every 0.5 s", ">= 3 lines",
          r.stderr[-400:])
    last = lines[-1] if lines else ""
    m = re.search(r"measure (\d+)/(\d+) s  (\d+) tokens/s  (\d+) chunks/s  in flight (\d+)  done "
                  r"(\d+)  failed (\d+)  TTFT p50 ([0-9.]+) s", last)
    res = json.load(open(os.path.join(run, "results.json"))) if r.returncode == 0 else {}
    ttft = res["phases"][0]["ttft_s"]["p50"] if res else 0
    check(m and int(m.group(2)) == 4 and int(m.group(4)) > 0 and int(m.group(5)) == 4 and
          int(m.group(7)) == 0 and abs(float(m.group(8)) - ttft) < 0.01,
          "the last line: elapsed of 4 s, chunks/s, 4 in flight, no failure, TTFT p50 as the "
          "results'", "TTFT about %.4f" % ttft, last)
    r = slt(os.path.join(tmp, "quiet"), "--concurrency", "2", "--emu-args", " ".join(MODEL),
            "--progress-s", "0")
    check(r.returncode == 0 and "strobe: phase 0  concurrency" not in r.stderr,
          "--progress-s 0: no progress line", "none", r.stderr[-300:])


def server_timings(tmp):
    """A server that reports per-request timings (strobe-emu --timings, as llama.cpp does): each
    phase gives the server's prompt and generation times beside strobe's view of the same
    requests."""
    run = os.path.join(tmp, "timings")
    r = slt(run, "--concurrency", "4", "--emu-args", " ".join(MODEL + ["--timings"]))
    check(r.returncode == 0 and "server timings (" in r.stdout, "slt against a server with timings",
          "a server timings line", (r.returncode, r.stdout[-400:]))
    ph = json.load(open(os.path.join(run, "results.json")))["phases"][0]
    st = ph.get("server_timings", {})
    n = st.get("server_prompt_ms", {}).get("n", 0)
    check(n == ph["ttft_s"]["n"], "every request with a first token in the window has the "
          "server's timings", ph["ttft_s"]["n"], n)
    # loopback: strobe's TTFT counted from the request's send is the server's prompt time plus
    # well under 20 ms of network and client; its decode window the server's generation time
    gap = st.get("ttft_from_sent_minus_server_prompt_ms", {}).get("p50", 99)
    check(-1 < gap < 20, "strobe's TTFT from the send and the server's prompt time agree",
          "0 to 20 ms apart", gap)
    gap = st.get("decode_window_minus_server_predicted_ms", {}).get("p50", 99)
    check(abs(gap) < 20, "strobe's decode window and the server's generation time agree",
          "within 20 ms", gap)
    ph = json.load(open(os.path.join(tmp, "progress", "results.json")))["phases"][0]
    check("server_timings" not in ph, "a server without timings: no server_timings object",
          "absent", ph.get("server_timings"))


def stuck_server(tmp):
    """A /metrics that answers strobe's probe and then never again does not starve power: the
    scrape waits (up to its 5 s timeout) on a thread of its own. On power's thread it gave a
    3 s phase one power sample or none, and the run was still valid. The scrapes the server
    left unanswered are counted failed."""
    release = threading.Event()

    class Stuck(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.server.answered:
                release.wait(60)  # no answer: held until the test ends
                return
            self.server.answered = True
            body = b"strobe_emu_requests_running 1\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stuck)
    srv.answered = False
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    run = os.path.join(tmp, "stuck")
    try:
        # 4 power samples a second: a loaded 2-core machine keeps their gaps under 3 periods
        r = slt(run, "--concurrency", "2", "--emu-args", " ".join(MODEL), "--power", "emu",
                "--power-rate", "4", "--server-metrics",
                "http://127.0.0.1:%d/metrics" % srv.server_address[1])
    finally:
        release.set()
        srv.shutdown()
    check(r.returncode == 0, "a run beside a /metrics that stops answering", 0, r.stderr[-300:])
    ph = json.load(open(os.path.join(run, "results.json")))["phases"][0]
    series = ph["power"]["series"][0]
    # 3 s at 4 Hz: about 12
    check(series["samples"] >= 6 and ph["power"]["accelerator_complete"],
          "power keeps its rate while the scrape waits: samples through the window, complete",
          ">= 6 samples, complete", (series["samples"], series["largest_gap_s"],
                                      ph["power"]["accelerator_complete"]))
    check(ph["server"]["scrapes_failed_in_run"] >= 1,
          "the scrapes the server left unanswered are counted failed", ">= 1",
          ph["server"]["scrapes_failed_in_run"])


def rate_and_credentials(tmp):
    """--server-metrics-rate 0 was taken as the default (it printed '1 times a second'), 1e-9
    never ended the run, and without --server-metrics the rate was silently ignored: each is
    refused. A URL holding a password is refused without printing it (it was accepted, and
    printed when the URL could not be read)."""
    for args, words in ((["--server-metrics", "auto", "--server-metrics-rate", "0"],
                         "--server-metrics-rate: 0 is not a number >= 0.01"),
                        (["--server-metrics", "auto", "--server-metrics-rate", "1e-9"],
                         "--server-metrics-rate: 1e-9 is not a number >= 0.01"),
                        (["--server-metrics-rate", "2"],
                         "--server-metrics-rate is given without --server-metrics")):
        # refused before anything is reached (without the check, 1e-9 ran for ever)
        r = common.run_strobe("slt", "--out", os.path.join(tmp, "rate0"), "--url",
                              "http://127.0.0.1:1", "--model", "m", *args, timeout=60)
        check(r.returncode == 2 and words in r.stderr, "%s: refused" % " ".join(args), words,
              (r.returncode, r.stderr.strip()[-200:]))
    r = slt(os.path.join(tmp, "creds"), "--concurrency", "1", "--server-metrics",
            "http://scraper:hunter2secret@127.0.0.1:1/metrics")
    check(r.returncode == 2 and "credentials" in r.stderr and "hunter2secret" not in r.stderr,
          "a --server-metrics URL with user:password@ is refused, the password not printed",
          "exit 2, credentials, no password", (r.returncode, r.stderr.strip()[-300:]))
    check(not os.path.exists(os.path.join(tmp, "creds")), "nothing was run", "no run", "a run")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        request_ids(tmp)
        agents_request_ids(tmp)
        progress(tmp)
        server_timings(tmp)
        against_emulator(tmp)
        bad_input(tmp)
        stuck_server(tmp)
        rate_and_credentials(tmp)
    common.done()


if __name__ == "__main__":
    main()
