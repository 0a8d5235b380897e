"""DPDK + lwIP at both ends, over memif (shared memory between two processes, no kernel on the
data path): strobe-emu --transport dpdk with memif server ports, strobe slt --transport dpdk
with a memif client port. 1,000 concurrent streams: every chunk's tokens exact, speed and
TTFT against the emulator's truth, the emulator's own request count equal to strobe's, and
every connection closed at both ends (none reset, none left open at the emulator) once strobe
has left; a second client on the same port after the first left; Ctrl-C (SIGINT) in the
middle of a phase (exit 3, every close finished, the log analysed, the next client served);
the emulator unpaced
(--step-us 0: 64 streams as fast as the connections take them, every one exact and far faster
than paced); two ports and strobe --threads 2,
each port answering the connections that came in on it; the idle policies (memif has no Rx
interrupt, so the default backs off there and says so; --idle poll; Rx interrupts over the
vhost-user pair, net_vhost to net_virtio_user, two workers, 200 streams exact; and one worker
with 1,000 streams at 300 tokens/s, which once stalled both ends); bad set-ups named. strobe's calibration probes go through
the kernel, so both processes run in a network namespace the test creates (the emulator's
address on its loopback, answered by --control-listen) and removes, with the memif sockets
in a temporary directory. Needs root; skipped (77) without DPDK in strobe or strobe-emu."""
import json
import signal
import os
import subprocess
import tempfile
import time

import common
from common import check
from test_dpdk import check_closed, sh

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
O200K = os.path.join(ROOT, "tokenizers", "o200k_base.tiktoken")
TAG = "sm%d" % (os.getpid() % 100000)
NS = TAG + "n"
NET = "10.%d.%d" % (100 + os.getpid() % 100, os.getpid() // 100 % 250)
SERVER_IP = NET + ".1"
PORT = 8000
# The emulator sleeps 20 us after an empty poll instead of busy-polling (unless frames wait for
# room in its tx ring, which a client that is there drains): it leaves the CPU
# to the rest of a loaded machine, and it is then seldom inside a memif burst when a client
# leaves. DPDK 22.11's net_memif unmaps the departed client's regions from its interrupt
# thread while the port's own thread may be between its "connected" check and the ring
# reads of rte_eth_rx_burst: a busy-polling emulator preempted there dies of SIGSEGV (seen
# here about one client exit in six at a load average of 10; README, "Both ends in user
# space: memif").
MODEL = ["--step-us", "10000", "--step-us-per-seq", "0", "--max-batch", "4000",
         "--prefill-tps", "100000000", "--idle-backoff-us", "20"]
PACED_TOKENS_PER_S = 1e6 / float(MODEL[1])
UNPACED = ["--step-us", "0", "--step-us-per-seq", "0"] + MODEL[4:]
# memif copies frames through memfd shared memory: no hugepages needed (platform-notes.md)
EAL = "--no-huge -m 512 --no-pci --no-telemetry --file-prefix %s -l %d"


def memif(role, sock, index=0, ring=13):
    # 8,192-slot rings (rsize=13): a decode step's burst of 1,000 chunks fits, where the
    # default 1,024 drops frames that TCP then resends late
    return "--vdev=net_memif%d,role=%s,socket=%s,socket-abstract=no,rsize=%d" % (index, role, sock, ring)


def vhost(role, sock, index=0, ring=13):
    """The vhost-user pair instead: net_vhost on the emulator's side, net_virtio_user (which
    has Rx interrupts) on strobe's. Its rings hold 4,096 slots whatever `ring` says: the rx
    ring's mbufs plus the tx ring's not yet freed ones stay within the port's pool of 16,383
    (rings of 8,192 each would exhaust it)."""
    if role == "server":
        return "--vdev=net_vhost%d,iface=%s,queues=1" % (index, sock)
    return "--vdev=net_virtio_user%d,path=%s,queues=1,queue_size=4096" % (index, sock)


def up():
    sh("ip", "netns", "add", NS)
    sh("ip", "-n", NS, "link", "set", "lo", "up")
    sh("ip", "-n", NS, "addr", "add", SERVER_IP + "/32", "dev", "lo")


def down():
    sh("ip", "netns", "del", NS, ok=False)
    for suffix in ("e", "a", "b", "x"):
        sh("rm", "-rf", "/var/run/dpdk/" + TAG + suffix, ok=False)


class Emulator:
    """strobe-emu over DPDK + lwIP on memif server ports, its kernel control address the same."""

    def __init__(self, tmp, *socks, model=MODEL, ring=13, link=memif):
        self.log = os.path.join(tmp, "emu.log")
        vdevs = " ".join(link("server", s, i, ring) for i, s in enumerate(socks))
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", NS, common.EMU, "--transport", "dpdk", "--listen",
             "%s:%d" % (SERVER_IP, PORT), "--control-listen", "%s:%d" % (SERVER_IP, PORT), *model,
             "--dpdk-args", EAL % (TAG + "e", 0) + " " + vdevs],
            stderr=open(self.log, "w"))
        end = time.time() + 30
        while "listening on" not in open(self.log).read():
            if self.p.poll() is not None or time.time() > end:
                self.stop()
                raise RuntimeError("strobe-emu over memif did not start: %s" % open(self.log).read()[-500:])
            time.sleep(0.05)

    def stop(self):
        """SIGTERM: it closes what is still open, lets every close finish (tcp_linger.h) before
        its ports go, and exits 0. (Connections a departed client left it, which the runs'
        checks would have named, it resets after the quiet time and says so.)"""
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(10)
            with open(self.log) as f:
                log = f.read()
            check(self.p.returncode == 0, "strobe-emu over memif stops cleanly (exit 0)", 0,
                  (self.p.returncode, log[-600:]))
            for line in log.splitlines():
                if "had not finished closing" in line:
                    print(line)

    def metrics(self):
        """Its own counters (GET /metrics) through its control address."""
        url = "http://%s:%d/metrics" % (SERVER_IP, PORT)
        if self.p.poll() is not None:
            raise RuntimeError("strobe-emu over memif exited with status %d; its log ends: %s" % (
                self.p.returncode, open(self.log).read()[-1500:]))
        r = sh("ip", "netns", "exec", NS, "python3", "-c",
               "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(%r, timeout=10)"
               ".read().decode())" % url)
        return common.parse_metrics(r.stdout)


def memif_cmd(run, socks, conc, local_ips, prefix, threads=1, link=memif, idle=(),
              output_tokens=30):
    """strobe slt over lwIP, worker i on a client port to socks[i], the idle policy the
    default (interrupt, or back-off where the PMD has none) unless idle gives one."""
    vdevs = " ".join(link("client", sock, i) for i, sock in enumerate(socks))
    return ["ip", "netns", "exec", NS, common.STROBE, "slt", "--url", "http://%s:%d" % (SERVER_IP, PORT),
            "--model", "m", "--out", run, "--threads", str(threads), "--concurrency", str(conc),
            "--phase-s", "4", "--ramp-s", "1", "--input-tokens", "200", "--output-tokens", str(output_tokens),
            "--ignore-eos", "--transport", "dpdk", "--local-ip", local_ips, *idle,
            "--tokenizer", O200K, "--dpdk-args", EAL % (prefix, 1) + " " + vdevs]


def memif_slt(*args, **kwargs):
    return subprocess.run(memif_cmd(*args, **kwargs), capture_output=True, text=True, timeout=300)


def results(what, rc, stderr, run):
    check(rc == 0, "%s: the run succeeds" % what, 0, (rc, stderr[-600:]))
    return json.load(open(os.path.join(run, "results.json"))) if rc == 0 else None


def received(what, emu, before, res, stderr):
    """The emulator's request count against strobe's; and, strobe having left, every
    connection closed at both ends: a client that leaves with closes unfinished leaves the
    emulator answering or retransmitting into a departed memif peer (README)."""
    m = emu.metrics()
    m["strobe_emu_requests_total"] -= before["strobe_emu_requests_total"]
    common.check_received(what, res, m, common.calibration_probes(res))
    unclosed = "strobe_emu_tcp_connections_unclosed"
    check_closed(what, stderr, m[unclosed] - before[unclosed])


def against_truth(what, ph, conc):
    """Speed and TTFT against the emulator's closed forms, with test_slt.py's tolerances: 2 %
    (TTFT: or 1 ms of wake-up) plus what the emulator's own lateness explains (two polling
    processes share this machine's cores)."""
    cap = common.capacity(*MODEL, "--concurrency", str(conc), "--prompt-tokens", "200",
                          "--output-tokens", "30")["closed_loop"]
    speed, ttft = ph["output_speed_tokens_per_s"]["p50"], ph["ttft_s"]["p50"]
    late = common.lateness_s(ph)
    print("%s: %d requests, speed p50 %.2f (truth %.2f) tokens/s, TTFT p50 %.5f (truth %.5f) s, "
          "emulator late by up to %.2f ms (p99), client lag p50 %.0f us" % (
              what, ph["requests_sent_whole_phase"], speed, cap["output_speed_tokens_per_s"], ttft,
              cap["ttft_s"], late * 1e3, ph["client_lag_vs_emulator_send_us"]["p50"]))
    if not common.TIMING:
        return
    tol = 0.02 + late * cap["output_speed_tokens_per_s"] / 29
    check(abs(speed / cap["output_speed_tokens_per_s"] - 1) < tol,
          "%s: output speed within %.1f %% of the emulator's truth (2 %% + its lateness)" % (what, tol * 100),
          cap["output_speed_tokens_per_s"], speed)
    err = max(0.02 * cap["ttft_s"], 0.001)
    check(cap["ttft_s"] - err < ttft < cap["ttft_s"] + err + late,
          "%s: TTFT within 2 %% (or 1 ms of wake-up), plus the emulator's lateness, of the truth" % what,
          cap["ttft_s"], ttft)


def thousand_streams(tmp, emu, sock):
    run = os.path.join(tmp, "k")
    before = emu.metrics()
    r = memif_slt(run, [sock], 1000, NET + ".2", TAG + "a")
    res = results("memif, 1,000 streams", r.returncode, r.stderr, run)
    if not res:
        return
    ph = res["phases"][0]
    transport = res["run"]["config"]["transport"]
    check("dpdk+lwip on net_memif" in transport, "strobe ran over lwIP on net_memif",
          "dpdk+lwip on net_memif", transport)
    check("idle: back-off" in transport and "net_memif has no Rx interrupt" in transport,
          "memif has no Rx interrupt: the default idle policy backs off and says why",
          "idle: back-off ... (net_memif has no Rx interrupt)", transport)
    common.check_exact_streams("memif, 1,000 streams", ph, 1000)
    received("memif, 1,000 streams", emu, before, res, r.stderr)
    against_truth("memif, 1,000 streams", ph, 1000)


def second_client(tmp, emu, sock):
    """memif's server side takes a new client once the first has gone; this one busy-polls
    (--idle poll)."""
    run = os.path.join(tmp, "again")
    before = emu.metrics()
    r = memif_slt(run, [sock], 64, NET + ".2", TAG + "a", idle=("--idle", "poll"))
    res = results("memif, a second client on the same port", r.returncode, r.stderr, run)
    if res:
        transport = res["run"]["config"]["transport"]
        check("idle: busy-poll" in transport, "--idle poll: the worker busy-polls", "idle: busy-poll",
              transport)
        common.check_exact_streams("memif, a second client", res["phases"][0], 64)
        received("memif, a second client", emu, before, res, r.stderr)
        against_truth("memif, 64 streams", res["phases"][0], 64)


def interrupted(tmp, emu, sock):
    """Ctrl-C in the middle of a phase over DPDK: strobe closes its connections (the shutdown's
    wait), exits 3 (interrupted), the emulator is left holding none of them, and strobe's log
    analyses; the emulator then serves the next client."""
    what = "memif, SIGINT in the phase"
    run = os.path.join(tmp, "interrupted")
    before = emu.metrics()
    p = subprocess.Popen(memif_cmd(run, [sock], 64, NET + ".2", TAG + "a"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # streaming has begun once events are being logged (calibration logs none); the ramp is 1 s
    events = os.path.join(run, "events.bin")
    end = time.time() + 60
    streaming = False
    while not streaming and p.poll() is None and time.time() < end:
        streaming = os.path.exists(events) and os.path.getsize(events) > (1 << 16)
        time.sleep(0.05)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)  # ip netns exec runs strobe in its own process (exec)
    try:
        _, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        err += "\n(killed: no exit within 120 s of SIGINT)"
    print("%s: exit %d; %s" % (what, p.returncode,
                               [l for l in err.splitlines() if "interrupted" in l or "closing" in l][:2]))
    check(streaming and p.returncode == 3, "%s: strobe exits 3 (interrupted)" % what, 3,
          (streaming, p.returncode, err[-600:]))
    unclosed = "strobe_emu_tcp_connections_unclosed"
    check_closed(what, err, emu.metrics()[unclosed] - before[unclosed])
    a = common.run_strobe("analyze", run)
    res = json.load(open(os.path.join(run, "results.json"))) if a.returncode in (0, 3) else {}
    check(a.returncode in (0, 3) and res.get("complete") is False,
          "%s: the log analyses, marked incomplete" % what, (0, 3),
          (a.returncode, res.get("complete"), a.stderr[-300:]))
    r = memif_slt(os.path.join(tmp, "after-interrupt"), [sock], 16, NET + ".2", TAG + "a")
    res = results("memif, a client after an interrupted one", r.returncode, r.stderr,
                  os.path.join(tmp, "after-interrupt"))
    if res:
        common.check_exact_streams("memif, a client after an interrupted one", res["phases"][0], 16)


def unpaced(tmp):
    """strobe-emu --step-us 0 over memif: each step as soon as the connection took the last.
    64 streams of 2,000 tokens, every one complete and byte-exact, the emulator's request
    count equal to strobe's, and each stream far faster than the paced runs (seen 3,400-5,400
    tokens/s against 100 on a loaded machine; the bound is 3x, and a sanitized build's speed
    is printed only). At a tiny decode step the emulator used to send nothing at all: its
    steps never yielded to lwIP."""
    sock = os.path.join(tmp, "unpaced.sock")
    emu = Emulator(tmp, sock, model=UNPACED)
    what = "memif, unpaced emulator, 64 streams"
    try:
        run = os.path.join(tmp, "unpaced")
        before = emu.metrics()
        r = memif_slt(run, [sock], 64, NET + ".2", TAG + "a", output_tokens=2000)
        res = results(what, r.returncode, r.stderr, run)
        if not res:
            return
        ph = res["phases"][0]
        common.check_exact_streams(what, ph, 64, tokens=2000)
        received(what, emu, before, res, r.stderr)
        speed = ph["output_speed_tokens_per_s"]["p50"]
        print("%s: %d requests, speed p50 %.0f tokens/s per stream" % (
            what, ph["requests_sent_whole_phase"], speed))
        if not common.TIMING:  # sanitized: seen 360 tokens/s per stream at load average 5.8
            return
        check(speed > 3 * PACED_TOKENS_PER_S,
              "%s: each stream over 3x the paced runs' %.0f tokens/s" % (what, PACED_TOKENS_PER_S),
              "> %.0f" % (3 * PACED_TOKENS_PER_S), speed)
    finally:
        emu.stop()


def two_ports(tmp):
    """Two memif ports, strobe --threads 2 (worker i on port i, its own lwIP stack): each
    connection is answered on the port it came in on, else the other worker's stack would
    drop the answer and its requests fail."""
    socks = [os.path.join(tmp, "p%d.sock" % i) for i in range(2)]
    emu = Emulator(tmp, *socks)
    try:
        run = os.path.join(tmp, "two")
        before = emu.metrics()
        r = memif_slt(run, socks, 200, NET + ".2," + NET + ".3", TAG + "b", threads=2)
        res = results("two ports, two workers", r.returncode, r.stderr, run)
        if res:
            transport = res["run"]["config"]["transport"]
            check("2 workers" in transport, "two ports: strobe ran two workers", "2 workers", transport)
            common.check_exact_streams("two ports, two workers", res["phases"][0], 200)
            received("two ports, two workers", emu, before, res, r.stderr)
    finally:
        emu.stop()


def rx_interrupts(tmp):
    """The vhost-user pair, whose client side (net_virtio_user) has Rx interrupts: two
    workers that sleep on them between bursts (--idle interrupt, the default) lose no frame
    and no byte: 200 streams exact, and the emulator's request count equal to strobe's."""
    socks = [os.path.join(tmp, "v%d.sock" % i) for i in range(2)]
    emu = Emulator(tmp, *socks, link=vhost)
    try:
        run = os.path.join(tmp, "intr")
        before = emu.metrics()
        r = memif_slt(run, socks, 200, NET + ".2," + NET + ".3", TAG + "b", threads=2, link=vhost,
                      idle=("--idle", "interrupt"))
        what = "vhost-user, Rx interrupts, 200 streams"
        res = results(what, r.returncode, r.stderr, run)
        if res:
            transport = res["run"]["config"]["transport"]
            check("on net_virtio_user" in transport and "idle: Rx interrupt" in transport,
                  "strobe slept on net_virtio_user's Rx interrupts", "idle: Rx interrupt", transport)
            common.check_exact_streams(what, res["phases"][0], 200)
            received(what, emu, before, res, r.stderr)
            against_truth(what, res["phases"][0], 200)
    finally:
        emu.stop()


def bad_setup(tmp):
    r = subprocess.run([common.EMU, "--transport", "dpdk"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and "needs --dpdk-args" in r.stderr,
          "--transport dpdk without --dpdk-args: one sentence, exit 2", 2, (r.returncode, r.stderr))
    r = subprocess.run([common.EMU, "--control-listen", "127.0.0.1:0"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 2 and "only with --transport dpdk" in r.stderr,
          "--control-listen without --transport dpdk is refused", 2, (r.returncode, r.stderr))
    r = subprocess.run(["ip", "netns", "exec", NS, common.EMU, "--transport", "dpdk", "--listen",
                        "%s:%d" % (SERVER_IP, PORT), "--dpdk-args", EAL % (TAG + "x", 0)],
                       capture_output=True, text=True, timeout=60)
    sh("rm", "-rf", "/var/run/dpdk/" + TAG + "x", ok=False)
    check(r.returncode == 1 and "found 0 DPDK ports" in r.stderr, "an EAL without ports is named",
          1, (r.returncode, r.stderr[-300:]))


def vhost_thousand(tmp):
    """1,000 streams at 300 tokens/s over the vhost-user pair, one worker on Rx interrupts: a
    decode step's 1,000 chunks fill the rings both ways, where each process once offered its
    full tx ring the backlog 100 times while the other did the same (dpdk_port_tx_flush) and
    the run stalled (a 5 s phase took 112 s, 75 us of worker CPU per event): every stream
    exact, the emulator's count equal to strobe's, and the run over within 60 s."""
    sock = os.path.join(tmp, "k.sock")
    model = list(MODEL)
    model[1] = "3333"
    emu = Emulator(tmp, sock, model=model, link=vhost)
    try:
        run = os.path.join(tmp, "vk")
        before = emu.metrics()
        what = "vhost-user, 1,000 streams at 300 tokens/s"
        # the sanitizers' build runs several times slower: a wider bound, still far from a stall
        limit = 60 if common.TIMING else 150
        started = time.time()
        try:
            r = subprocess.run(memif_cmd(run, [sock], 1000, NET + ".2", TAG + "x", link=vhost),
                               capture_output=True, text=True, timeout=limit + 30)
        except subprocess.TimeoutExpired:
            check(False, "%s: the run is over within %d s" % (what, limit), "< %d s" % limit,
                  "still running after %d s (stalled)" % (limit + 30))
            return
        took = time.time() - started
        res = results(what, r.returncode, r.stderr, run)
        if res:
            transport = res["run"]["config"]["transport"]
            check("idle: Rx interrupt" in transport, "%s: the worker slept on Rx interrupts" % what,
                  "idle: Rx interrupt", transport)
            common.check_exact_streams(what, res["phases"][0], 1000)
            received(what, emu, before, res, r.stderr)
        check(took < limit, "%s: the run is over within %d s (phase 4 s, ramp 1 s)" % (what, limit),
              "< %d s" % limit, "%.1f s" % took)
    finally:
        emu.stop()


if __name__ == "__main__":
    common.skip_unless_dpdk("network namespaces and DPDK's runtime files", emulator_too=True)
    down()
    up()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bad_setup(tmp)
            sock = os.path.join(tmp, "memif.sock")
            emu = Emulator(tmp, sock)
            try:
                thousand_streams(tmp, emu, sock)
                second_client(tmp, emu, sock)
                interrupted(tmp, emu, sock)
            finally:
                emu.stop()
            unpaced(tmp)
            two_ports(tmp)
            rx_interrupts(tmp)
            vhost_thousand(tmp)
    finally:
        down()
    common.done()
