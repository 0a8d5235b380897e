"""Many concurrent streaming sessions over DPDK + lwIP at both ends (memif, set up as in
test_memif.py): strobe-emu decodes one token a second for every stream, strobe holds
STROBE_MEMIF_SESSIONS of them (default 10,000; the benchmark sets 50,000) open at once over
enough --local-ip addresses (16,384 connections each). Checks: the run is valid, none failed,
every answer exactly its tokens and every chunk what the emulator sent, the emulator's own
gauges saw every session's request in it at once, what strobe sent is what the emulator received,
and every connection closed at both ends once strobe has left.
Prints the resident memory per session of strobe and of strobe-emu (the growth from the first
sample to the peak, over the sessions; the EAL's and the pools' memory is the first sample).
Needs root; skipped (77) without DPDK in strobe or strobe-emu."""
import json
import os
import subprocess
import tempfile
import threading
import time

import common
from common import check
import test_memif as m

SESSIONS = int(os.environ.get("STROBE_MEMIF_SESSIONS", "10000"))
PER_ADDRESS = 14000  # under lwIP's 16,384 ports per source address, leaving room for reuse
RAMP_S = max(20, SESSIONS // 500)  # connections open over the first half: 1,000 a second
PHASE_S = 20
TOKENS = 10  # one a second: each session sends a request every ~10 s, two or three in the window
MODEL = ["--step-us", "1000000", "--step-us-per-seq", "0", "--max-batch", str(SESSIONS + 1000),
         "--prefill-tps", "100000000", "--idle-backoff-us", "20"]  # why: test_memif.MODEL


def rss_kib(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Every second: the requests in the emulator (admitted or waiting: a session between two
    requests is out for a round trip) and both processes' resident memory."""

    def __init__(self, emu, strobe_pid):
        super().__init__(daemon=True)
        self.emu, self.strobe_pid, self.samples, self.stop = emu, strobe_pid, [], False

    def run(self):
        while not self.stop:
            try:
                g = self.emu.metrics()
                decoding = int(g.get("strobe_emu_requests_running", 0) + g.get("strobe_emu_requests_waiting", 0))
            except Exception:
                decoding = -1
            self.samples.append((decoding, rss_kib(self.strobe_pid), rss_kib(self.emu.p.pid)))
            time.sleep(1)


def main(tmp):
    sock = os.path.join(tmp, "memif.sock")
    naddr = -(-SESSIONS // PER_ADDRESS)
    ips = ",".join("%s.%d" % (m.NET, 2 + i) for i in range(naddr))
    # 16,384-slot rings (rsize=14, memif's most): a decode step writes one chunk per session
    emu = m.Emulator(tmp, sock, model=MODEL, ring=14)
    try:
        run = os.path.join(tmp, "scale")
        before = emu.metrics()
        cmd = ["ip", "netns", "exec", m.NS, common.STROBE, "slt", "--url",
               "http://%s:%d" % (m.SERVER_IP, m.PORT), "--model", "m", "--out", run,
               "--concurrency", str(SESSIONS), "--phase-s", str(PHASE_S), "--ramp-s", str(RAMP_S),
               "--input-tokens", "20", "--output-tokens", str(TOKENS), "--ignore-eos",
               "--transport", "dpdk", "--local-ip", ips,
               # a SYN lost in a burst is resent after 3 s, then 6: a connect may take 10 s
               "--connect-timeout-s", "60",
               "--tokenizer", m.O200K, "--dpdk-args",
               m.EAL % (m.TAG + "a", 1) + " " + m.memif("client", sock, 0, 14)]
        t0 = time.time()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sampler = Sampler(emu, p.pid)
        sampler.start()
        _, stderr = p.communicate(timeout=600)
        sampler.stop = True
        sampler.join()
        what = "memif, %d sessions" % SESSIONS
        res = m.results(what, p.returncode, stderr, run)
        if not res and os.path.exists(os.path.join(run, "results.json")):
            ph = json.load(open(os.path.join(run, "results.json")))["phases"][0]
            print("%s: %d requests, %d failed: %s" % (what, ph["requests_sent_whole_phase"],
                                                     ph["requests_failed_whole_phase"], ph["failures"]))
        s = [x for x in sampler.samples if x[0] >= 0]
        peak = max(s) if s else (0, 0, 0)
        # the growth is counted from the first sample with a session decoding: the EAL, its
        # pools and the module copies are there by then
        first = next((x for x in s if x[0] > 0), peak)
        print("%s: %d addresses, %.0f s; the emulator held at most %d requests at once; every 5 s: %s" % (
            what, naddr, time.time() - t0, peak[0], " ".join(str(x[0]) for x in s[::5])))
        if peak[0] > first[0]:
            n = peak[0] - first[0]
            print("%s: resident memory at the peak: strobe %.0f MiB (%.0f MiB with the first "
                  "sessions: the EAL and its pools), %.1f KiB per session; strobe-emu %.0f MiB (%.0f MiB), "
                  "%.1f KiB per session" % (what, peak[1] / 1024, first[1] / 1024, (peak[1] - first[1]) / n,
                                            peak[2] / 1024, first[2] / 1024, (peak[2] - first[2]) / n))
        check(peak[0] >= SESSIONS, "%s: every session's request in the emulator at once (its gauges)" % what,
              SESSIONS, peak[0])
        if res:
            common.check_exact_streams(what, res["phases"][0], SESSIONS, tokens=TOKENS)
            m.received(what, emu, before, res, stderr)
    finally:
        emu.stop()


if __name__ == "__main__":
    common.skip_unless_dpdk("network namespaces and DPDK's runtime files", emulator_too=True)
    m.down()
    m.up()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
    finally:
        m.down()
    common.done()
