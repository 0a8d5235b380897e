#!/usr/bin/env python3
"""Long run (benchmark, reports, never fails on a number): 10,000 concurrent sessions against
the built-in emulator on loopback for 10 minutes by default, sampling every 10 s strobe's
resident memory, open descriptors, CPU time and event-log records, to show that memory is
stable, descriptors do not leak and the cost per event does not grow.
  scripts/longrun.py [--sessions N] [--seconds S] [--out RUN_DIR]"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--sessions", type=int, default=10000)
ap.add_argument("--seconds", type=int, default=600)
ap.add_argument("--out")
a = ap.parse_args()
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
strobe = os.path.join(root, "build", "control", "strobe")
out = a.out or os.path.join(tempfile.mkdtemp(), "longrun")
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # strobe and the emulator: one per session each
cmd = [strobe, "slt", "--out", out, "--threads", "1",
       "--concurrency", str(a.sessions), "--phase-s", str(a.seconds), "--ramp-s", "20",
       "--input-tokens", "100", "--output-tokens", "100", "--ignore-eos", "--tokenizer", "none",
       "--request-timeout-s", "120", "--emu-args",
       "--step-us 200000 --step-us-per-seq 0 --max-batch 100000 --prefill-tps 100000000"]
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
tick = os.sysconf("SC_CLK_TCK")


def sample(pid):
    rss = int([l for l in open("/proc/%d/status" % pid) if l.startswith("VmRSS")][0].split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    st = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    cpu = (int(st[11]) + int(st[12])) / tick
    try:
        recs = os.path.getsize(os.path.join(out, "events.bin")) // 64
    except OSError:
        recs = 0
    return rss, fds, cpu, recs


print("%8s %10s %8s %12s %14s" % ("t_s", "RSS_MB", "fds", "events/s", "CPU_us/event"))
prev = None
t0 = time.time()
while p.poll() is None:
    time.sleep(10)
    try:
        now = sample(p.pid)
    except (OSError, IndexError):
        break
    if prev:
        d_ev = now[3] - prev[3]
        print("%8.0f %10.1f %8d %12.0f %14.2f" % (time.time() - t0, now[0] / 1024, now[1], d_ev / 10,
                                                 (now[2] - prev[2]) * 1e6 / d_ev if d_ev else 0), flush=True)
    prev = now
err = p.stderr.read()
print("\n".join(l for l in err.splitlines() if "phase" in l or "CPU" in l or "error" in l.lower()))
p.wait()
print("exit %d; results in %s" % (p.returncode, out))
