#!/usr/bin/env python3
"""Benchmark (reports, never fails on a number): the DPDK + lwIP transport against the kernel
transport on the same veth topology (two network namespaces, created and removed here):
sessions held, SSE events received per second by the one worker, the worker's CPU ns per
event, and strobe's peak resident memory per session. Needs root and a DPDK build.
On a 2-core machine the emulator shares the cores with strobe: rates are the emulator's
ceiling as much as strobe's; the CPU cost per event is the figure that transfers.
  scripts/bench_dpdk.py [CONCURRENCY ...]   (default 256 1024 4096)"""
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


def run(tmp, transport, conc):
    out = os.path.join(tmp, "%s%d" % (transport, conc))
    cmd = ["ip", "netns", "exec", topo.NS_CLIENT, common.STROBE, "slt",
           "--url", "http://%s:8200" % topo.SERVER_IP, "--model", "m", "--out", out, "--threads", "1",
           "--concurrency", str(conc), "--phase-s", "5", "--ramp-s", "2", "--input-tokens", "50",
           "--output-tokens", "1000", "--ignore-eos", "--tokenizer", "none",
           "--request-timeout-s", "60"]
    if transport == "dpdk":
        cmd += ["--transport", "dpdk", "--local-ip", topo.CLIENT_DPDK_IPS, "--idle-backoff-us", "20",
                "--dpdk-args", "--no-huge -m 1024 --no-pci --no-telemetry -l 0 --file-prefix %s "
                "--vdev=net_af_packet0,iface=%s,framecnt=16384" % (topo.TAG, topo.IF_CLIENT)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # resident memory in the middle of the measured window (the analysis at the end is not
    # the dataplane's and would dominate a peak)
    time.sleep(5.5)
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
    return (ph["output_tokens_in_window"] / ph["window_s"], ns, rss, ph["requests_failed_whole_phase"]), None


def main():
    concs = [int(c) for c in sys.argv[1:]] or [256, 1024, 4096]
    topo.down()
    topo.up()
    emu = topo.Emulator(8200, *EMU)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print("%-10s %8s %14s %14s %14s %10s" % ("transport", "streams", "events/s", "CPU ns/event",
                                                     "RSS MB (run)", "failed"))
            rows = {}
            for conc in concs:
                for transport in ("kernel", "dpdk"):
                    res, err = run(tmp, transport, conc)
                    if not res:
                        print("%-10s %8d   failed: %s" % (transport, conc, err))
                        continue
                    rows[(transport, conc)] = res
                    print("%-10s %8d %14.0f %14.0f %14.1f %10d" % (transport, conc, res[0], res[1],
                                                                     res[2] / 1024, res[3]))
            for transport in ("kernel", "dpdk"):
                have = [c for c in concs if (transport, c) in rows]
                if len(have) >= 2:
                    a, b = have[0], have[-1]
                    per = (rows[(transport, b)][2] - rows[(transport, a)][2]) * 1024 / (b - a)
                    print("%s: %.1f KiB of strobe memory per extra session (%d -> %d sessions)"
                          % (transport, per / 1024, a, b))
    finally:
        emu.stop()
        topo.down()


if __name__ == "__main__":
    main()
