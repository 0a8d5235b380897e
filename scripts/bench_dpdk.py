#!/usr/bin/env python3
"""Benchmark (reports, never fails on a number): the DPDK + lwIP transport against the kernel
transport on the same veth topology (two network namespaces, created and removed here):
sessions held, SSE events received per second by the workers, the workers' CPU ns per
event (all workers, and the costliest one), and strobe's resident memory per session. With
--threads 2 the DPDK run has a second veth pair: worker i drives port i with its own lwIP
stack. Needs root and a DPDK build. On a 2-core machine the emulator shares the cores with
strobe: rates are the emulator's ceiling as much as strobe's; the CPU cost per event is the
figure that transfers.
  scripts/bench_dpdk.py [--threads 1,2] [--phase-s S] [CONCURRENCY ...]   (default 256 1024 4096)"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import common  # noqa: E402
import test_dpdk as topo  # noqa: E402

EMU = ["--step-us", "2000", "--step-us-per-seq", "0", "--max-batch", "100000", "--prefill-tps", "1e9"]


def run(tmp, transport, conc, threads, phase_s):
    out = os.path.join(tmp, "%s%d-%d" % (transport, conc, threads))
    cmd = ["ip", "netns", "exec", topo.NS_CLIENT, common.STROBE, "slt",
           "--url", "http://%s:8200" % topo.SERVER_IP, "--model", "m", "--out", out,
           "--threads", str(threads), "--concurrency", str(conc), "--phase-s", str(phase_s),
           "--ramp-s", "2", "--input-tokens", "50", "--output-tokens", "1000", "--ignore-eos",
           "--tokenizer", "none", "--request-timeout-s", "60"]
    if transport == "dpdk":
        # worker i: port i on veth pair i, and the i-th address (the server routes it there)
        ifaces = (topo.IF_CLIENT, topo.IF_CLIENT2)[:threads]
        vdevs = " ".join("--vdev=net_af_packet%d,iface=%s,framecnt=16384" % (i, iface)
                         for i, iface in enumerate(ifaces))
        cmd += ["--transport", "dpdk", "--local-ip", ",".join(topo.CLIENT_DPDK_IPS.split(",")[:threads]),
                "--idle-backoff-us", "20", "--dpdk-args",
                "--no-huge -m 1024 --no-pci --no-telemetry -l 0 --file-prefix %s %s" % (topo.TAG, vdevs)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # resident memory in the middle of the measured window (the analysis at the end is not
    # the dataplane's and would dominate a peak)
    time.sleep(2 + phase_s / 2)
    try:
        rss = int([l for l in open("/proc/%d/status" % p.pid) if l.startswith("VmRSS")][0].split()[1])
    except (OSError, IndexError):
        rss = 0
    err = p.communicate(timeout=600)[1]
    subprocess.run(["rm", "-rf", "/var/run/dpdk/" + topo.TAG])
    if p.returncode:
        return None, err[-300:]
    ph = json.load(open(os.path.join(out, "results.json")))["phases"][0]
    ns = float(re.search(r"dataplane CPU (\d+) ns per SSE event", err).group(1))
    per_worker = [float(x) for x in re.findall(r"worker \d+: .* CPU (\d+) ns per SSE event", err)]
    return (ph["output_tokens_in_window"] / ph["window_s"], ns, rss, ph["requests_failed_whole_phase"],
            max(per_worker or [ns])), None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1", help="worker counts to measure, e.g. 1,2 (at most 2)")
    ap.add_argument("--phase-s", type=int, default=5, help="measured window per run, s (default 5)")
    ap.add_argument("concurrency", nargs="*", type=int, default=[256, 1024, 4096])
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    if max(threads) > 2:
        ap.error("--threads: this topology has two veth pairs, so 1 or 2 workers")
    topo.down()
    topo.up()
    topo.up_second()
    emu = topo.Emulator(8200, *EMU)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print("%-10s %7s %8s %14s %14s %16s %14s %8s" % (
                "transport", "workers", "streams", "events/s", "CPU ns/event", "busiest worker ns",
                "RSS MB (run)", "failed"))
            rows = {}
            for conc in a.concurrency:
                for n in threads:
                    for transport in ("kernel", "dpdk"):
                        res, err = run(tmp, transport, conc, n, a.phase_s)
                        if not res:
                            print("%-10s %7d %8d   failed: %s" % (transport, n, conc, err))
                            continue
                        rows[(transport, n, conc)] = res
                        print("%-10s %7d %8d %14.0f %14.0f %16.0f %14.1f %8d" % (
                            transport, n, conc, res[0], res[1], res[4], res[2] / 1024, res[3]))
            for transport in ("kernel", "dpdk"):
                for n in threads:
                    have = [c for c in a.concurrency if (transport, n, c) in rows]
                    if len(have) >= 2:
                        lo, hi = have[0], have[-1]
                        per = (rows[(transport, n, hi)][2] - rows[(transport, n, lo)][2]) * 1024 / (hi - lo)
                        print("%s, %d worker(s): %.1f KiB of strobe memory per extra session (%d -> %d sessions)"
                              % (transport, n, per / 1024, lo, hi))
    finally:
        emu.stop()
        topo.down_second()
        topo.down()


if __name__ == "__main__":
    main()
