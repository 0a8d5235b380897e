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


def thread_cpu(pid):
    """CPU seconds per thread group, user and system apart: the workers (strobe-w*), the
    event-log collector (strobe-log) and the rest, so a growing cost can be told apart from
    page-cache write-back (the collector's write() pays it) and from the kernel's side of
    receiving (the workers' system time)."""
    groups = {"worker_user": 0.0, "worker_sys": 0.0, "log": 0.0, "other": 0.0}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            name = open("/proc/%d/task/%s/comm" % (pid, tid)).read().strip()
            st = open("/proc/%d/task/%s/stat" % (pid, tid)).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user, system = int(st[11]) / tick, int(st[12]) / tick
        if name.startswith("strobe-w"):
            groups["worker_user"] += user
            groups["worker_sys"] += system
        else:
            groups["log" if name == "strobe-log" else "other"] += user + system
    return groups


def mem_free_gb():
    for line in open("/proc/meminfo"):
        if line.startswith("MemFree:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0


def sample(pid):
    rss = int([l for l in open("/proc/%d/status" % pid) if l.startswith("VmRSS")][0].split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    try:
        recs = os.path.getsize(os.path.join(out, "events.bin")) // 64
    except OSError:
        recs = 0
    return time.time(), rss, fds, thread_cpu(pid), recs, mem_free_gb()


COLS = ("t_s", "rss_MB", "fds", "events_per_s", "total_us_per_event", "worker_user_us_per_event",
        "worker_sys_us_per_event", "log_us_per_event", "machine_free_GB")
print(" ".join("%12s" % c[:12] for c in COLS))
rows = []
prev = None
t0 = time.time()
while p.poll() is None:
    time.sleep(10)
    try:
        now = sample(p.pid)
    except (OSError, IndexError):
        break
    if prev and now[4] > prev[4]:
        d_ev = now[4] - prev[4]
        per = {g: (now[3][g] - prev[3][g]) * 1e6 / d_ev for g in now[3]}
        row = (now[0] - t0, now[1] / 1024, now[2], d_ev / (now[0] - prev[0]), sum(per.values()),
               per["worker_user"], per["worker_sys"], per["log"], now[5])
        rows.append(row)
        print(" ".join("%12.2f" % v for v in row), flush=True)
    prev = now
err = p.stderr.read()
print("\n".join(l for l in err.splitlines() if "phase" in l or "CPU" in l or "error" in l.lower()))
p.wait()
if os.path.isdir(out):
    with open(os.path.join(out, "longrun.csv"), "w") as f:
        f.write(",".join(COLS) + "\n")
        for r in rows:
            f.write(",".join("%.3f" % v for v in r) + "\n")
# The measured window only: after the ramp's first 10 s, until the phase ends (the drain and
# the analysis after it are left out).
steady = [r for r in rows if 30 < r[0] <= 20 + a.seconds]
if len(steady) >= 4:
    half = len(steady) // 2
    def mean(rs, i):
        return sum(r[i] for r in rs) / len(rs)
    for name, i in (("total", 4), ("worker user", 5), ("worker system", 6), ("event log", 7)):
        a1, a2 = mean(steady[:half], i), mean(steady[half:], i)
        print("%s CPU per event: first half %.2f us, second half %.2f us (%+.1f %%)"
              % (name, a1, a2, (a2 / a1 - 1) * 100 if a1 else 0))
    print("resident memory %.1f to %.1f MB; descriptors %d to %d; machine's free memory %.1f to %.1f GB"
          % (min(r[1] for r in steady), max(r[1] for r in steady),
             min(r[2] for r in steady), max(r[2] for r in steady),
             max(r[8] for r in steady), min(r[8] for r in steady)))
try:
    import json
    ph = json.load(open(os.path.join(out, "results.json")))["phases"][0]
    print("window: %d requests sent, %d succeeded, %d failed; %.1f output tokens/s; whole phase: "
          "%d sent, %d failed" % (ph["requests_sent"], ph["requests_succeeded"], ph["requests_failed"],
                                  ph["system_output_tokens_per_s"], ph["requests_sent_whole_phase"],
                                  ph["requests_failed_whole_phase"]))
except (OSError, ValueError, KeyError, IndexError) as e:
    print("no results.json to summarise (%s)" % e)
print("exit %d; results in %s" % (p.returncode, out))
