#!/usr/bin/env python3
"""strobe's --power nvml against NVML itself, on a machine with an NVIDIA GPU (a check to run
by hand, not a test: it needs the GPU, the nvidia-ml-py package (pynvml) and PyTorch for the
load). Run from the repository root after the build: python3 scripts/check_nvml_gpu.py [DIR]
(DIR keeps the results and the reference samples; default a temporary folder).

A Python NVML sampler (pynvml, 50 Hz: power mW and the total-energy counter mJ) runs beside
strobe; a torch bf16 matmul load is switched on and off on the GPU; for each of strobe's
measured windows the reference mean power is the NVML energy counter's difference over the
same window (interpolated at its ends) and the mean of the sampler's power readings inside
it. Then the same with an agents search (agents per MW from measured power)."""
import json
import os
import shutil
import subprocess
import sys
import threading
import tempfile
import time

try:
    import pynvml
except ImportError:
    sys.exit("check_nvml_gpu: this check needs NVIDIA's Python bindings: pip install nvidia-ml-py")

OUT = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="strobe-nvml-")
os.makedirs(OUT, exist_ok=True)
S = os.environ.get("STROBE", "build/control/strobe")
senv = dict(os.environ)
WORK = tempfile.mkdtemp(prefix="strobe-nvml-runs-")
pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
print("GPU:", pynvml.nvmlDeviceGetName(h), "driver", pynvml.nvmlSystemGetDriverVersion())

# cost of one NVML call (the telemetry thread makes two per device per sample)
for name, fn in (("nvmlDeviceGetPowerUsage", lambda: pynvml.nvmlDeviceGetPowerUsage(h)),
                 ("nvmlDeviceGetTotalEnergyConsumption",
                  lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(h))):
    fn()
    t = time.perf_counter()
    for _ in range(200):
        fn()
    per_call_us = (time.perf_counter() - t) / 200 * 1e6
    print("%s: %.1f us per call (200 calls, Python included)" % (name, per_call_us))

samples = []
stop = threading.Event()


def sampler():
    while not stop.is_set():
        # stamped at the middle of the reads, as strobe stamps its own (the energy read takes
        # milliseconds on some GPUs)
        t0 = time.time_ns()
        p = pynvml.nvmlDeviceGetPowerUsage(h)
        e = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        samples.append(((t0 + time.time_ns()) // 2, p, e))
        time.sleep(0.02)


threading.Thread(target=sampler, daemon=True).start()

LOAD = r"""
import sys, time, torch
on_s, off_first, total = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
torch.cuda.synchronize()
print("ready", time.time_ns(), flush=True)
t0 = time.time()
while time.time() - t0 < total:
    el = time.time() - t0
    if off_first <= el < off_first + on_s:
        for _ in range(20):
            c = a @ a
        torch.cuda.synchronize()
    else:
        time.sleep(0.01)
print("done", time.time_ns(), flush=True)
"""


def start_load(on_s, off_first, total):
    p = subprocess.Popen([sys.executable, "-c", LOAD, str(on_s), str(off_first), str(total)],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    print("load: torch ready at", line[1:],
          "on from +%gs for %gs of %gs" % (off_first, on_s, total))
    return p


def ref(t0, t1):
    """Reference mean W over [t0, t1]: energy-counter difference (interpolated) and mean power."""
    def energy_at(t):
        for (ta, _, ea), (tb, _, eb) in zip(samples, samples[1:]):
            if ta <= t <= tb:
                return ea + (eb - ea) * (t - ta) / (tb - ta)
        return None
    e0, e1 = energy_at(t0), energy_at(t1)
    pw = [p for t, p, _ in samples if t0 <= t <= t1]
    ew = (e1 - e0) / 1e3 / ((t1 - t0) / 1e9) if e0 is not None and e1 is not None else float("nan")
    return ew, (sum(pw) / len(pw) / 1e3 if pw else float("nan")), len(pw)


def compare(res):
    print("%5s %5s %8s %10s %10s %8s %13s %13s %8s %6s" % (
        "phase", "conc", "window", "strobe", "method", "samples", "ref energy", "ref power",
        "ref n",
        "diff"))
    print("%5s %5s %8s %10s %10s %8s %13s %13s %8s %6s" % (
        "", "", "s", "W", "", "", "W", "W", "", "%"))
    for i, ph in enumerate(res["phases"]):
        pw = ph.get("power", {})
        ser = (pw.get("series") or [{}])[0]
        t0, t1 = ph["window_start_ns"], ph["window_end_ns"]
        ew, mw, n = ref(t0, t1)
        sw = pw.get("accelerator_mean_w", float("nan"))
        print("%5d %5s %8.2f %10.1f %10s %8s %13.1f %13.1f %8d %6.2f" % (
            i, ph.get("concurrency", ph.get("agents", "-")), (t1 - t0) / 1e9, sw,
            ser.get("method", "-"), ser.get("samples", "-"), ew, mw, n, (sw / ew - 1) * 100))


time.sleep(1)
# 1. SLT: load off, on (straddling phases), off
load = start_load(on_s=9, off_first=7, total=34)
r = subprocess.run([S, "slt", "--out", os.path.join(WORK, "nv_slt"), "--concurrency", "1,2,4,8",
                    "--phase-s", "5",
                    "--ramp-s", "1", "--input-tokens", "200", "--output-tokens", "300",
                    "--ignore-eos", "--threads", "2", "--power", "nvml", "--power-rate", "10",
                    "--progress-s", "0"], env=senv, capture_output=True, text=True, timeout=120)
print("strobe slt --power nvml: exit", r.returncode)
print(r.stderr[-1500:])
load.wait()
if r.returncode in (0, 2) and os.path.exists(os.path.join(WORK, "nv_slt", "results.json")):
    res = json.load(open(os.path.join(WORK, "nv_slt", "results.json")))
    compare(res)
    print(json.dumps(res["phases"][0].get("power"), indent=1)[:1500])
    shutil.copy(os.path.join(WORK, "nv_slt", "results.json"),
                os.path.join(OUT, "nvml_slt_results.json"))

# 2. agents search with the GPU loaded throughout: agents per MW from measured power
load = start_load(on_s=60, off_first=0, total=60)
r = subprocess.run([S, "agents", "--trajectories",
                    "tests/data/trajectories/aa-agentperf-local/aa-mini-v1",
                    "--out", os.path.join(WORK, "nv_ag"), "--slo-speed", "100", "--slo-ttft", "1",
                    "--warmup-s", "1",
                    "--stagger-s", "0.5", "--window-s", "3", "--min-trajectories", "0",
                    "--min-per-agent", "0", "--max-agents", "16", "--tool-time", "0.05",
                    "--power", "nvml", "--accelerators", "1", "--progress-s", "0", "--emu-args",
                    "--step-us 2000 --step-us-per-seq 200 --prefill-tps 1e8 --max-batch 1000"],
                   env=senv, capture_output=True, text=True, timeout=120)
print("strobe agents --power nvml: exit", r.returncode)
print(r.stderr[-600:])
load.kill()
load.wait()
if os.path.exists(os.path.join(WORK, "nv_ag", "results.json")):
    res = json.load(open(os.path.join(WORK, "nv_ag", "results.json")))
    s = res["search"][0]
    print({k: v for k, v in s.items() if k != "iterations"})
    compare(res)
    shutil.copy(os.path.join(WORK, "nv_ag", "results.json"),
                os.path.join(OUT, "nvml_agents_results.json"))

# 3. bad input: a GPU that does not exist, an index list that is not one
for spec in ("nvml:3", "nvml:0,x"):
    r = subprocess.run([S, "slt", "--out", os.path.join(WORK, "nv_bad"), "--concurrency", "1",
                        "--phase-s", "1",
                        "--power", spec], env=senv, capture_output=True, text=True, timeout=60)
    print("--power %s: exit %d: %s" % (spec, r.returncode, r.stderr.strip()[-300:]))
stop.set()
with open(os.path.join(OUT, "nvml_samples.csv"), "w") as f:
    f.write("t_ns,power_mw,energy_mj\n")
    for s_ in samples:
        f.write("%d,%d,%d\n" % s_)
print("sampler: %d samples; results and samples in %s" % (len(samples), OUT))
shutil.rmtree(WORK, ignore_errors=True)
