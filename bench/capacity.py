#!/usr/bin/env python3
"""The side-by-side capacity benchmark (scripts/bench_capacity.sh runs it after the build).

Every client reads the same fast SSE source (bench/sse_source.c) over loopback, the source
pinned to one core and the client to another, at each load: streams x events/s per stream,
or unpaced. Clients: the floor reader (bench/floor_reader.c: epoll + recvmsg with
SO_TIMESTAMPING, nothing else), the io_uring floor reader (bench/uring_floor_reader.c: one
multishot recvmsg per connection into a provided buffer ring, with the stamps, and strobe's
batched wait; nothing else: the floor of the uring row, named in a note under the table) and
strobe with each transport it was built with (kernel,
uring, dpdk; a transport strobe lacks is printed as "not built"). The dpdk row reads
strobe-emu over DPDK instead (both ends in user space need the emulator's DPDK listen mode):
as root, a net_memif pair in a network namespace of its own (run_dpdk), or the command lines
DPDK_URL, DPDK_STROBE_ARGS and DPDK_EMU_ARGS give.

Per client and load, over the measured window only (after the warm-up):
  events/s     SSE events received per second
  worker us/ev CPU time of strobe's one dataplane worker thread per event (the floor: its
               own, it is one thread)
  proc us/ev   CPU time of the whole client process per event (every thread: the event-log
               collector, control)
  p50, p99     added delay per event: the userspace clock after the read minus the kernel's
               receive stamp of that read, microseconds
  x floor      the figure divided by the floor reader's at the same load
CPU of a strobe run is read from /proc/PID/task/*/schedstat (nanoseconds on CPU) every
50 ms and interpolated at the window's ends that results.json names.

A benchmark: it reports figures and never fails on one. Environment: PHASE_S (window,
default 4), WARMUP_S (default 1), SOURCE_CPU (default 0), CLIENT_CPU (default 1), LOADS
(e.g. "64x300 64x3000 512x300 64x0"; 0 = unpaced), CLIENTS (the rows to run, default
"floor floor-uring kernel uring dpdk"), OUT (keep the runs there), LOG_WRITES (strobe's
--log-writes for every strobe row: direct, its default, or plain).
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("BUILD", "build")
STROBE = os.environ.get("STROBE", f"{BUILD}/control/strobe")
EMU = f"{BUILD}/emu/strobe-emu"
SOURCE = f"{BUILD}/bench/sse_source"
FLOOR = f"{BUILD}/bench/floor_reader"
URING_FLOOR = f"{BUILD}/bench/uring_floor_reader"
PHASE_S = float(os.environ.get("PHASE_S", "4"))
WARMUP_S = float(os.environ.get("WARMUP_S", "1"))
SOURCE_CPU = os.environ.get("SOURCE_CPU", "0")
CLIENT_CPU = os.environ.get("CLIENT_CPU", "1")
LOADS = os.environ.get("LOADS", "64x300 64x3000 512x300 64x0").split()
CLIENTS = os.environ.get("CLIENTS", "floor floor-uring kernel uring dpdk").split()
LOG_WRITES = os.environ.get("LOG_WRITES", "direct")
# a request lasts about 2 s paced, so the window sees requests start and end; unpaced ones
# are long enough that reconnects stay a small share
UNPACED_EVENTS_PER_REQUEST = 200000


def load_name(streams, rate):
    return f"{streams} x {rate:,} ev/s" if rate else f"{streams} unpaced"


def transports_built():
    """The transports `strobe slt --help` names on its --transport line."""
    out = subprocess.run([STROBE, "slt", "--help"], capture_output=True, text=True).stdout
    # the option's own line lists them with bars; other lines name one ("with --transport dpdk")
    m = re.search(r"--transport ([a-z]+(?:\|[a-z]+)+)", out)
    return set(m.group(1).split("|")) if m else {"kernel"}


def emu_has_dpdk():
    out = subprocess.run([EMU, "--help"], capture_output=True, text=True).stdout
    return "--transport" in out


class Source:
    """bench/sse_source pinned to SOURCE_CPU, at `rate` events/s per stream (0: unpaced)."""

    def __init__(self, rate):
        self.p = subprocess.Popen(["taskset", "-c", SOURCE_CPU, SOURCE, "--rate", str(rate)],
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stderr.readline()
        m = re.search(r":(\d+)$", line.strip())
        if not m:
            raise SystemExit(f"bench_capacity: the source did not start ({line.strip()!r}); "
                             f"run {SOURCE} by hand to see why")
        self.port = int(m.group(1))

    def stop(self):
        """Stops it; its last line: events sent, and ticks it was late for (a short source)."""
        self.p.terminate()
        tail = self.p.communicate()[1].strip().splitlines()
        return tail[-1] if tail else "the source printed nothing"



def run_floor(port, streams, program=FLOOR):
    if not os.path.exists(program):
        return {"error": "not built" + (" (liburing-dev missing)" if program == URING_FLOOR
                                        else "")}
    out = subprocess.run(["taskset", "-c", CLIENT_CPU, program, "--connect", f"127.0.0.1:{port}",
                          "--connections", str(streams), "--warmup-s", str(WARMUP_S),
                          "--duration-s", str(PHASE_S)], capture_output=True, text=True)
    if out.returncode:
        return {"error": out.stderr.strip()}
    r = json.loads(out.stdout)
    return {"events_per_s": r["events_per_s"], "worker_us": r["cpu_us_per_event"],
            "proc_us": r["cpu_us_per_event"], "p50": r["delay_p50_us"], "p99": r["delay_p99_us"]}


class CpuSampler(threading.Thread):
    """(wall ns, whole-process CPU ns, worker-thread CPU ns) every 50 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.done = pid, [], False

    def read(self):
        proc = worker = 0
        try:
            for tid in os.listdir(f"/proc/{self.pid}/task"):
                with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
                    ns = int(f.read().split()[0])
                with open(f"/proc/{self.pid}/task/{tid}/comm") as f:
                    if f.read().startswith("strobe-w"):  # every dataplane worker
                        worker += ns
                proc += ns
        except (FileNotFoundError, ProcessLookupError):
            return None
        return time.time_ns(), proc, worker

    def run(self):
        while not self.done:
            s = self.read()
            if s:
                self.samples.append(s)
            time.sleep(0.05)

    def at(self, t, field):
        """CPU ns of `field` (1 process, 2 worker) at wall time t, linearly interpolated."""
        s = self.samples
        for a, b in zip(s, s[1:]):
            if a[0] <= t <= b[0]:
                return a[field] + (b[field] - a[field]) * (t - a[0]) / max(b[0] - a[0], 1)
        return None


def run_strobe(url, streams, rate, extra, out_dir, model="strobe-emu",
               delay="kernel_stamp_to_userspace_read_us", prefix=(), pin=True):
    per_request = rate * 2 if rate else UNPACED_EVENTS_PER_REQUEST
    taskset = ["taskset", "-c", CLIENT_CPU] if pin else []
    cmd = list(prefix) + taskset + [STROBE, "slt", "--url", url, "--model", model,
           "--out", out_dir, "--concurrency", str(streams), "--phase-s", str(PHASE_S),
           "--ramp-s", str(WARMUP_S), "--drain-s", "1", "--input-tokens",
           "50", "--output-tokens", str(per_request), "--ignore-eos", "--tokenizer", "none",
           "--log-writes", LOG_WRITES]
    # (the dpdk row's DPDK_STROBE_ARGS name their own)
    if not any(a == "--threads" or a.startswith("--threads=") for a in extra):
        cmd += ["--threads", "1"]
    p = subprocess.Popen(cmd + extra, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    sampler = CpuSampler(p.pid)
    sampler.start()
    err = p.communicate()[1]
    sampler.done = True
    try:
        ph = json.load(open(os.path.join(out_dir, "results.json")))["phases"][0]
    except (OSError, ValueError, KeyError, IndexError):
        return {"error": " ".join(err.strip().splitlines()[-1:]) or f"exit {p.returncode}"}
    # the log's pages go back to the page cache for the next run: on a fresh VM the first
    # write to each page of guest memory costs a host page fault (about 1.2 s of CPU per GB
    # here), which would otherwise fall on whichever row writes first
    for f in ("events.bin", "bodies.bin"):
        if os.path.exists(os.path.join(out_dir, f)):
            os.remove(os.path.join(out_dir, f))
    ws, we = ph["window_start_ns"], ph["window_end_ns"]
    gap = ph[delay]
    events = gap["n"]
    if not events:
        return {"error": "no events with a %s figure in the window" % delay}
    row = {"events_per_s": events / ph["window_s"], "p50": gap["p50"], "p99": gap["p99"]}
    said = [l for l in err.splitlines() if l.startswith("strobe: event log written ")]
    if said:
        row["log"] = said[-1][len("strobe: "):]
    try:
        row["transport"] = json.load(open(os.path.join(out_dir, "results.json")))["run"]["config"]["transport"]
    except (OSError, ValueError, KeyError):
        pass
    for key, field in (("proc_us", 1), ("worker_us", 2)):
        a, b = sampler.at(ws, field), sampler.at(we, field)
        row[key] = (b - a) / 1e3 / events if a is not None and b is not None else None
    return row


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def ratio(v, floor_v):
    if not isinstance(v, (int, float)) or not isinstance(floor_v, (int, float)) or not floor_v:
        return "-"
    return f"{v / floor_v:.2f}"


def main():
    built = transports_built()
    out_root = os.environ.get("OUT") or tempfile.mkdtemp(prefix="bench_capacity.")
    try:
        os.makedirs(out_root, exist_ok=True)  # each row's --out is made inside it
    except OSError as e:
        raise SystemExit(f"bench_capacity: OUT={out_root} cannot be a folder ({e.strerror}); "
                         "name another")
    dpdk_env = {k: os.environ.get(k, "") for k in ("DPDK_URL", "DPDK_STROBE_ARGS",
                                                    "DPDK_EMU_ARGS")}
    print(f"source on CPU {SOURCE_CPU}, client on CPU {CLIENT_CPU}; window {PHASE_S:g} s after "
          f"{WARMUP_S:g} s warm-up; one strobe worker (dpdk: {DPDK_WORKERS}, over {DPDK_PAIR}, "
          f"--idle {DPDK_IDLE}); --log-writes {LOG_WRITES}; runs in {out_root}")
    head = ("client", "load", "events/s", "worker us/ev", "proc us/ev", "p50 us", "p99 us",
            "rate x floor", "worker x floor", "proc x floor", "p99 x floor")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    notes = []
    for load in LOADS:
        streams, rate = (int(x) for x in load.split("x"))
        rows = []
        src = Source(rate)
        try:
            if "floor" in CLIENTS:
                rows.append(("floor", run_floor(src.port, streams)))
            if "floor-uring" in CLIENTS:
                rows.append(("floor-uring", run_floor(src.port, streams, URING_FLOOR)))
            for t in [t for t in ("kernel", "uring") if t in CLIENTS]:
                if t not in built:
                    rows.append((t, {"error": "not built"}))
                    continue
                d = os.path.join(out_root, f"{t}-{streams}x{rate}")
                rows.append((t, run_strobe(f"http://127.0.0.1:{src.port}", streams, rate,
                                           ["--transport", t], d)))
        finally:
            notes.append(f"{load_name(streams, rate)}: {src.stop()}")
        if "dpdk" in CLIENTS:
            rows.append(("dpdk", run_dpdk(built, dpdk_env, streams, rate, out_root)))
            if "transport" in rows[-1][1]:
                notes.append(f"dpdk, {load_name(streams, rate)}: {rows[-1][1]['transport']}")
        floor = rows[0][1] if rows and rows[0][0] == "floor" else {}
        got = {name: r for name, r in rows if "error" not in r}
        if ("floor-uring" in got and "floor" in got and "uring" in got
                and got["floor-uring"]["worker_us"] > 0):
            fu = got["floor-uring"]["worker_us"]
            notes.append(f"{load_name(streams, rate)}: the bare io_uring reader costs {fu:.2f} us "
                         f"per event: the bare epoll reader {ratio(got['floor']['worker_us'], fu)}x "
                         f"that, strobe's uring worker {ratio(got['uring']['worker_us'], fu)}x, "
                         f"strobe's kernel worker {ratio(got.get('kernel', {}).get('worker_us'), fu)}x")
        for name, r in rows:
            if "log" in r:
                notes.append(f"{name}, {load_name(streams, rate)}: {r['log']}")
            if "error" in r:
                print(f"| {name} | {load_name(streams, rate)} | {r['error']} |" + " |" * 8)
                continue
            print("| " + " | ".join([
                name, load_name(streams, rate), fmt(r["events_per_s"], ",.0f"),
                fmt(r["worker_us"], ".2f"), fmt(r["proc_us"], ".2f"), fmt(r["p50"], ".1f"),
                fmt(r["p99"], ".1f"), ratio(r["events_per_s"], floor.get("events_per_s")),
                ratio(r["worker_us"], floor.get("worker_us")),
                ratio(r["proc_us"], floor.get("proc_us")), ratio(r["p99"], floor.get("p99"))])
                + " |", flush=True)
    print()
    for n in notes:
        print(n)


DPDK_NS = "capb%d" % (os.getpid() % 100000)
DPDK_IP = "10.%d.%d.1" % (200 + os.getpid() % 50, os.getpid() // 50 % 250)
DPDK_EAL = "--no-huge -m 512 --no-pci --no-telemetry --file-prefix %s -l %s"
# The userspace pair of the dpdk row: "memif" (net_memif both ends; the default: the cheaper
# per event, and the one that holds 512 streams; it has no Rx interrupt in DPDK 22.11, so the
# worker backs off and the row's note says so) or "vhost" (net_vhost in the emulator,
# net_virtio_user in strobe: the client has Rx interrupts, so an idle worker sleeps until a
# frame comes; it stalls at 512 streams); DPDK_WORKERS strobe workers, one link each;
# DPDK_IDLE strobe's --idle.
DPDK_PAIR = os.environ.get("DPDK_PAIR", "memif")
DPDK_WORKERS = int(os.environ.get("DPDK_WORKERS", "1"))
DPDK_IDLE = os.environ.get("DPDK_IDLE", "interrupt")


def dpdk_vdev(side, i, sock):
    """One link's vdev: side "server" (the emulator) or "client" (strobe). A decode step's
    burst of 512 chunks fits in either's rings (virtio's 4,096: its rx ring's mbufs and the
    tx ring's not yet freed ones come from one pool of 16,383)."""
    if DPDK_PAIR == "memif":
        return "--vdev=net_memif%d,role=%s,socket=%s,socket-abstract=no,rsize=13" % (i, side, sock)
    if side == "server":
        return "--vdev=net_vhost%d,iface=%s,queues=1" % (i, sock)
    return "--vdev=net_virtio_user%d,path=%s,queues=1,queue_size=4096" % (i, sock)


def default_dpdk_env(sock_dir):
    """The pair of README "Both ends in user space": strobe-emu the server side, strobe the
    client side, inside a network namespace of this run's own where the emulator's address
    is on the loopback (strobe's calibration goes through the kernel to the emulator's
    --control-listen)."""
    socks = [os.path.join(sock_dir, "link%d.sock" % i) for i in range(DPDK_WORKERS)]
    ips = ",".join(DPDK_IP[:-1] + str(2 + i) for i in range(DPDK_WORKERS))
    client = " ".join(dpdk_vdev("client", i, s) for i, s in enumerate(socks))
    server = " ".join(dpdk_vdev("server", i, s) for i, s in enumerate(socks))
    return {"DPDK_URL": "http://%s:8000" % DPDK_IP,
            "DPDK_STROBE_ARGS": "--threads %d --local-ip %s --idle %s --dpdk-args '%s %s'" % (
                DPDK_WORKERS, ips, DPDK_IDLE, DPDK_EAL % (DPDK_NS + "c", CLIENT_CPU), client),
            "DPDK_EMU_ARGS": "--listen %s:8000 --control-listen %s:8000 --dpdk-args '%s %s'" % (
                DPDK_IP, DPDK_IP, DPDK_EAL % (DPDK_NS + "e", SOURCE_CPU), server)}


def run_dpdk(built, env, streams, rate, out_root):
    """strobe --transport dpdk against strobe-emu --transport dpdk (both in user space over a
    net_memif pair): the emulator paced at `rate` tokens/s per stream (0: unpaced, each
    stream as fast as its connection takes it).
    Without DPDK_URL, DPDK_STROBE_ARGS and DPDK_EMU_ARGS, as root: the memif pair above. The
    added delay of this row is strobe's receive stamp minus the emulator's send stamp (there
    is no kernel stamp to start from): it includes the emulator's own lwIP and memif path."""
    if "dpdk" not in built or not emu_has_dpdk():
        return {"error": "not built"}
    prefix, own_ns = [], not all(env.values())
    if own_ns:
        if os.geteuid() != 0:
            return {"error": "not configured (run as root, or set DPDK_URL, DPDK_STROBE_ARGS, "
                             "DPDK_EMU_ARGS)"}
        env = default_dpdk_env(tempfile.mkdtemp(prefix="memif.", dir=out_root))
        subprocess.run(["ip", "netns", "add", DPDK_NS], check=True)
        subprocess.run(["ip", "-n", DPDK_NS, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", DPDK_NS, "addr", "add", DPDK_IP + "/32", "dev", "lo"],
                       check=True)
        prefix = ["ip", "netns", "exec", DPDK_NS]
    # unpaced: --step-us 0, each step as soon as the connection took the last
    step_us = 1e6 / rate if rate else 0
    emu = subprocess.Popen(prefix + ["taskset", "-c", SOURCE_CPU, EMU, "--transport", "dpdk",
                                     "--step-us", f"{step_us:g}", "--step-us-per-seq", "0",
                                     "--max-batch", "100000", "--prefill-tps", "1e9"]
                           + shlex.split(env["DPDK_EMU_ARGS"]), stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)  # EAL start-up; the memif server must listen before the client starts
        return run_strobe(env["DPDK_URL"], streams, rate,
                          ["--transport", "dpdk"] + shlex.split(env["DPDK_STROBE_ARGS"]),
                          os.path.join(out_root, f"dpdk-{streams}x{rate}"),
                          delay="client_lag_vs_emulator_send_us", prefix=prefix,
                          # the EAL's -l pins strobe to CLIENT_CPU; under taskset strobe would
                          # refuse more workers than the one core it may run on
                          pin=DPDK_WORKERS == 1)
    finally:
        emu.terminate()
        emu.wait()
        if own_ns:
            subprocess.run(["ip", "netns", "del", DPDK_NS])
            for side in "ce":
                subprocess.run(["rm", "-rf", "/var/run/dpdk/" + DPDK_NS + side])


if __name__ == "__main__":
    sys.exit(main())
