"""--server-metrics: the server's /metrics scraped into the log by the telemetry thread and
summarised per phase beside strobe's own figures (strobe-emu's requests running, its TTFT and
ITL histograms); strobe analyze reproduces it; bad URLs refused in one sentence; an exposition
that is not Prometheus text kept and counted as malformed, not fatal."""
import http.server
import json
import os
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


def main():
    with tempfile.TemporaryDirectory() as tmp:
        against_emulator(tmp)
        bad_input(tmp)
    common.done()


if __name__ == "__main__":
    main()
