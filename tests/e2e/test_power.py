"""Power sources through their fakes (no accelerator here): emu and redfish against the
emulator, file against a CSV, rapl against a fake powercap tree, nvml against a stand-in
libnvidia-ml (tests/fake_nvml: energy counters and power readings in closed form); nvml,
amdsmi and ipmi refusing cleanly without their library or device; energy against the
emulator's power model; a source that stops mid-run; per-MW from measured power in an agents
run."""
import json
import os
import subprocess
import tempfile
import threading
import time

import common
from common import check

MODEL = ["--step-us", "2000", "--step-us-per-seq", "0", "--max-batch", "32",
         "--accelerators", "2", "--power-idle-w", "100", "--power-max-w", "500",
         "--prefill-tps", "1e8"]


# Where a test checks that a window's power is complete (no gap over 3 sampling periods), it
# samples at 4 Hz: a loaded 2-core machine delays a 10 Hz sample past 0.3 s now and then
# (seen: phase 0 of source_dies marked incomplete while a CPU hog ran), not past 0.75 s.
RATE = ["--power-rate", "4"]

# the stand-in libnvidia-ml.so.1 (tests/fake_nvml), built beside strobe
FAKE_NVML = os.environ.get("STROBE_FAKE_NVML_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(common.STROBE)), "tests", "fake_nvml")


def fake_nvml_env(found):
    """The environment with the stand-in's folder first on LD_LIBRARY_PATH (found) or off it:
    meson puts the folders of a test's shared-library dependencies there, the stand-in's among
    them."""
    fake = os.path.realpath(FAKE_NVML)
    rest = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)
            if d and os.path.realpath(d) != fake]
    return dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(([FAKE_NVML] if found else []) + rest))


def slt(run, *args):
    return common.run_strobe("slt", "--out", run, "--threads", "1", "--phase-s", "3",
                             "--ramp-s", "0.5", "--output-tokens", "200", "--ignore-eos",
                             "--input-tokens", "100", *args, timeout=300)


def emu_and_redfish(tmp):
    with common.emulator(*MODEL) as port:
        run = os.path.join(tmp, "emu")
        r = slt(run, "--concurrency", "8", "--url", "http://127.0.0.1:%d" % port, "--model", "m",
                "--power", "emu:http://127.0.0.1:%d" % port,
                "--power", "redfish:http://127.0.0.1:%d/redfish/v1/Chassis/emu/Power" % port, *RATE)
    check(r.returncode == 0, "slt with emu and redfish power sources", 0, r.stderr[-300:])
    res = json.load(open(os.path.join(run, "results.json")))
    p = res["phases"][0]["power"]
    cap = common.capacity(*MODEL, "--concurrency", "8", "--prompt-tokens", "100",
                          "--output-tokens", "200")["closed_loop"]
    print("accelerator power: measured %.1f W, model %.1f W; %.4f J per output token" %
          (p["accelerator_mean_w"], cap["accelerator_power_w"], p["joules_per_output_token"]))
    check(abs(p["accelerator_mean_w"] / cap["accelerator_power_w"] - 1) < 0.03,
          "emu: mean accelerator power within 3% of the power model", cap["accelerator_power_w"],
          p["accelerator_mean_w"])
    check(p["accelerator_complete"] and p["series"][0]["method"] == "energy-counter",
          "emu: complete, from the energy counter", (True, "energy-counter"),
          (p["accelerator_complete"], p["series"][0]["method"]))
    tokens = res["phases"][0]["output_tokens_in_window"]
    check(abs(p["joules_per_output_token"] - p["accelerator_j"] / tokens) < 1e-9,
          "joules per output token = accelerator joules / output tokens in the window",
          p["accelerator_j"] / tokens, p["joules_per_output_token"])
    red = [s for s in p["series"] if s["source"] == 1][0]
    check(not red["accelerator_only"] and red["method"] == "trapezoid" and red["samples"] >= 8 and
          abs(red["mean_w"] / cap["accelerator_power_w"] - 1) < 0.05,
          "redfish: whole-system series from PowerConsumedWatts samples", cap["accelerator_power_w"],
          red["mean_w"])
    srcs = res["run"]["power"]["sources"]
    check([s["driver"] for s in srcs] == ["emu", "redfish"] and srcs[0]["accelerator_only"] and
          srcs[0]["devices"], "results name each source, its devices and boundary",
          (["emu", "redfish"], True, "devices"), srcs)


def file_source(tmp):
    csv = os.path.join(tmp, "watts.csv")
    with open(csv, "w") as f:
        f.write("time_s,watts,device\n")
        for i in range(0, 400):
            f.write("%.2f,%d,gpu0\n%.2f,%d,gpu1\n" % (i * 0.05, 300, i * 0.05, 200))
    run = os.path.join(tmp, "file")
    r = slt(run, "--concurrency", "2", "--power", "file:%s,accelerator" % csv,
            "--emu-args", " ".join(MODEL))
    check(r.returncode == 0, "slt with a file power source", 0, r.stderr[-300:])
    p = json.load(open(os.path.join(run, "results.json")))["phases"][0]["power"]
    check(abs(p["accelerator_mean_w"] - 500) < 1e-6 and len(p["series"]) == 2,
          "file: two devices replayed, 300 W + 200 W = 500 W", 500, p["accelerator_mean_w"])


def rapl(tmp):
    root = os.path.join(tmp, "powercap")
    # name, watts, the counter's range in µJ
    zones = {"intel-rapl:0": ("package-0", 40.0, 36000000), "intel-rapl:0:0": ("dram", 5.0, 6000000)}
    for z, (name, _, span) in zones.items():
        os.makedirs(os.path.join(root, z))
        open(os.path.join(root, z, "name"), "w").write(name + "\n")
        open(os.path.join(root, z, "max_energy_range_uj"), "w").write("%d\n" % span)
        open(os.path.join(root, z, "energy_uj"), "w").write("0\n")
    stop = threading.Event()

    # counters advance at 40 W and 5 W and wrap at 36 J and 6 J, as real RAPL does (at a far
    # larger range): every 0.9 s and 1.2 s, several times in the run, and a loaded machine
    # delaying the 50 ms sampling by up to 0.9 s (seen: more than 300 ms at a load average
    # of 10) does not hide a whole wrap
    def tick():
        t0 = time.time()
        while not stop.is_set():
            for z, (_, watts, span) in zones.items():
                uj = int((time.time() - t0) * watts * 1e6) % span
                tmpf = os.path.join(root, z, "energy_uj.tmp")
                open(tmpf, "w").write("%d\n" % uj)
                os.replace(tmpf, os.path.join(root, z, "energy_uj"))
            time.sleep(0.005)

    th = threading.Thread(target=tick)
    th.start()
    try:
        run = os.path.join(tmp, "rapl")
        r = slt(run, "--concurrency", "2", "--power", "rapl:" + root, "--power-rate", "20",
                "--emu-args", " ".join(MODEL))
    finally:
        stop.set()
        th.join()
    check(r.returncode == 0, "slt with a rapl source on a fake powercap tree", 0, r.stderr[-300:])
    p = json.load(open(os.path.join(run, "results.json")))["phases"][0]["power"]
    print("rapl: %.2f W whole-system (expected 45 W, counters wrapping every 0.9 s / 1.2 s)" % p["system_mean_w"])
    check(abs(p["system_mean_w"] - 45) < 45 * 0.05 and "accelerator_mean_w" not in p,
          "rapl: 40 W + 5 W through counter wrap-around, whole-system", 45, p["system_mean_w"])


def missing(tmp):
    env = fake_nvml_env(found=False)  # nvml finds no library here
    for spec, word in (("nvml", "libnvidia-ml.so.1"), ("amdsmi", "libamd_smi.so"),
                       ("ipmi", "IPMI"), ("rapl:/nonexistent", "powercap"),
                       ("bogus", "unknown source"), ("emu:http://127.0.0.1:1", "emu")):
        r = common.run_strobe("slt", "--out", os.path.join(tmp, "m"), "--url", "http://127.0.0.1:1",
                              "--model", "m", "--power", spec, env=env)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and word in r.stderr and lines[-1].endswith("."),
              "--power %s: refuses to start with one sentence" % spec, 2, r.stderr.strip()[-200:])


def fake_gpu_joules(gpu, t):
    """The stand-in's energy counter (tests/fake_nvml/fake_nvml.c) in closed form: the integral
    from the epoch to t seconds of 100 W + 50 W * gpu + a 30 s triangle (up 10 W/s for 15 s,
    then down)."""
    def triangle_integral(r):
        return 5 * r * r if r <= 15 else 1125 + 300 * (r - 15) - 5 * (r * r - 225)
    periods = int(t // 30)
    rest = t - 30 * periods
    base = 100 + 50 * gpu
    return periods * (base * 30 + triangle_integral(30)) + base * rest + triangle_integral(rest)


def nvml(tmp):
    env = fake_nvml_env(found=True)
    with common.emulator(*MODEL) as port:
        url = ["--url", "http://127.0.0.1:%d" % port, "--model", "m"]
        run = os.path.join(tmp, "nvml")
        r = common.run_strobe("slt", "--out", run, "--threads", "1", "--phase-s", "3",
                              "--ramp-s", "0.5", "--output-tokens", "200", "--ignore-eos",
                              "--input-tokens", "100", "--concurrency", "2,4", *url,
                              "--power", "nvml", *RATE, env=env, timeout=300)
        check(r.returncode == 0, "slt with --power nvml (two stand-in GPUs)", 0, r.stderr[-300:])
        res = json.load(open(os.path.join(run, "results.json")))
        for ph in res["phases"]:
            a, b = ph["window_start_ns"] / 1e9, ph["window_end_ns"] / 1e9
            truth = sum(fake_gpu_joules(g, b) - fake_gpu_joules(g, a) for g in (0, 1)) / (b - a)
            p = ph["power"]
            print("nvml phase %d: %.2f W measured, %.2f W true" % (ph["phase"], p["accelerator_mean_w"], truth))
            check(abs(p["accelerator_mean_w"] / truth - 1) < 0.01 and len(p["series"]) == 2 and
                  all(s["method"] == "energy-counter" for s in p["series"]) and p["accelerator_complete"],
                  "nvml: phase %d's mean power from both GPUs' energy counters, within 1%% of the "
                  "truth" % ph["phase"], truth, (p["accelerator_mean_w"], [s["method"] for s in p["series"]]))
        src = res["run"]["power"]["sources"][0]
        check(src["driver"] == "nvml" and src["accelerator_only"] and
              [d for d in src["devices"]] == ["GPU 0 Fake GPU", "GPU 1 Fake GPU"],
              "nvml: results name the GPUs and say the figure is the accelerators'",
              ["GPU 0 Fake GPU", "GPU 1 Fake GPU"], src)

        # a GPU without an energy counter: the trapezoid over power readings; one GPU of two
        run = os.path.join(tmp, "nvml1")
        r = common.run_strobe("slt", "--out", run, "--threads", "1", "--phase-s", "3",
                              "--ramp-s", "0.5", "--output-tokens", "200", "--ignore-eos",
                              "--input-tokens", "100", "--concurrency", "2", *url,
                              "--power", "nvml:1", *RATE,
                              env=dict(env, FAKE_NVML_NO_ENERGY="1"), timeout=300)
        check(r.returncode == 0, "slt with --power nvml:1 and no energy counter", 0, r.stderr[-300:])
        ph = json.load(open(os.path.join(run, "results.json")))["phases"][0]
        a, b = ph["window_start_ns"] / 1e9, ph["window_end_ns"] / 1e9
        truth = (fake_gpu_joules(1, b) - fake_gpu_joules(1, a)) / (b - a)
        p = ph["power"]
        check(abs(p["accelerator_mean_w"] / truth - 1) < 0.02 and len(p["series"]) == 1 and
              p["series"][0]["method"] == "trapezoid",
              "nvml:1 without an energy counter: GPU 1 alone, from its power readings, within 2%",
              truth, (p["accelerator_mean_w"], [s["method"] for s in p["series"]]))

    for spec, extra, words in (("nvml:5", {}, "GPU 5 does not exist (this host has 2)"),
                               ("nvml:0,x", {}, "must be indices"),
                               ("nvml:99999999999", {}, "must be indices"),
                               ("nvml:1,0,1", {}, "GPU 1 is listed twice"),
                               ("nvml", {"FAKE_NVML_INIT_FAIL": "1"}, "Driver Not Loaded")):
        r = common.run_strobe("slt", "--out", os.path.join(tmp, "nvbad"), "--url",
                              "http://127.0.0.1:1", "--model", "m", "--power", spec,
                              env=dict(env, **extra))
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and words in r.stderr and lines[-1].endswith("."),
              "--power %s%s: refuses to start with one sentence" %
              (spec, " (nvmlInit failing)" if extra else ""), words, r.stderr.strip()[-200:])


def source_dies(tmp):
    with common.emulator(*MODEL) as port:
        power, power_port = common.start_emulator()
        try:
            run = os.path.join(tmp, "dies")
            p = subprocess.Popen([common.STROBE, "slt", "--out", run, "--threads", "1",
                                  "--concurrency", "2,4", "--phase-s", "3", "--ramp-s", "0.5",
                                  "--output-tokens", "100", "--input-tokens", "100",
                                  "--url", "http://127.0.0.1:%d" % port, "--model", "m",
                                  "--power", "emu:http://127.0.0.1:%d" % power_port, *RATE],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            # strobe's line for phase 0 comes when phase 0 ends; the source then dies 1.5 s
            # later, inside phase 1's window (0.5 s ramp + 3 s), however slow the machine
            seen = ""
            for line in p.stderr:
                seen += line
                if "phase 0 " in line:
                    break
            time.sleep(1.5)
        finally:
            common.stop_emulator(power)
        _, err = p.communicate(timeout=120)
        err = seen + err
    check(p.returncode == 0, "the run goes on when a power source dies", 0, err[-300:])
    ph = json.load(open(os.path.join(run, "results.json")))["phases"]
    check(ph[0]["power"]["accelerator_complete"] and not ph[1]["power"]["accelerator_complete"],
          "the window the source missed is marked power incomplete", (True, False),
          [(p["power"]["accelerator_complete"], [(s["largest_gap_s"], s["coverage"]) for s in p["power"]["series"]])
           for p in ph])


def agents_per_mw(tmp):
    run = os.path.join(tmp, "agents")
    r = common.run_strobe("agents", "--trajectories", common.AA_MINI, "--out", run, "--slo-speed", "0",
                          "--slo-ttft", "100", "--max-agents", "4", "--warmup-s", "0.5",
                          "--stagger-s", "0.2", "--window-s", "2", "--min-trajectories", "0",
                          "--min-per-agent", "0", "--threads", "1", "--power", "emu", *RATE,
                          "--power-w", "99999", "--emu-args", " ".join(MODEL), timeout=300)
    check(r.returncode == 0, "agents with measured power", 0, r.stderr[-300:])
    s = json.load(open(os.path.join(run, "results.json")))["search"][0]
    check(s["power_basis"].startswith("measured") and
          abs(s["max_agents_per_mw"] * s["power_w"] / 1e6 - s["max_agents"]) < 1e-6 and
          s["power_w"] < 99999, "per MW uses the measured accelerator power, not --power-w",
          "measured", (s["power_basis"], s["power_w"]))


def low_rate(tmp):
    """The run's end does not wait for the next power sample: at --power-rate 0.05 it waited
    up to 20 s for it (1e-9: for ever), the telemetry thread asleep until then. Rates outside
    0.01 to 1000 per second, and 0 (taken as the default, silently), are refused."""
    for rate, words in (("0", "--power-rate: 0 is not a number >= 0.01"),
                        ("1e-9", "--power-rate: 1e-9 is not a number >= 0.01"),
                        ("2000", "--power-rate: 2000 is not a number <= 1000")):
        r = common.run_strobe("slt", "--out", os.path.join(tmp, "rate"), "--url",
                              "http://127.0.0.1:1", "--model", "m", "--power", "emu",
                              "--power-rate", rate, timeout=60)
        check(r.returncode == 2 and words in r.stderr, "--power-rate %s: refused" % rate, words,
              r.stderr.strip()[-200:])
    run = os.path.join(tmp, "slow-rate")
    start = time.monotonic()
    try:
        # one sample every 50 s: a run that waits for the next one takes over 50 s
        r = common.run_strobe("slt", "--out", run, "--threads", "1", "--concurrency", "2",
                              "--phase-s", "1", "--ramp-s", "0.3", "--output-tokens", "20",
                              "--input-tokens", "20", "--tokenizer", "none", "--power", "emu",
                              "--power-rate", "0.02", timeout=40)
        took, rc = time.monotonic() - start, r.returncode
    except subprocess.TimeoutExpired:
        took, rc = time.monotonic() - start, "killed after 40 s"
    check(rc == 0 and took < 20, "--power-rate 0.02: the run ends without waiting for the next "
          "sample", "exit 0 within 20 s", (rc, "%.1f s" % took))


def empty_window(tmp):
    """A window with no power reading has no figure: null in results.json and n/a in the
    table (it was 0 W, 0 J and 0 J per token, as if measured)."""
    csv = os.path.join(tmp, "early.csv")
    with open(csv, "w") as f:  # 0.1 s of readings, over before the phase's window opens
        f.write("0,100\n0.1,100\n")
    run = os.path.join(tmp, "empty")
    r = slt(run, "--concurrency", "2", "--power", "file:" + csv, "--emu-args", " ".join(MODEL))
    check(r.returncode == 0, "slt with a power file that ends before the window", 0,
          r.stderr[-300:])
    p = json.load(open(os.path.join(run, "results.json")))["phases"][0]["power"]
    got = [p.get(k, "absent") for k in ("system_mean_w", "system_j", "joules_per_output_token")]
    got += [p["series"][0][k] for k in ("mean_w", "joules")]
    check(got == [None] * 5 and not p["system_complete"] and p["series"][0]["samples"] == 0,
          "a window without readings: watts, joules and joules per token null, incomplete",
          [None] * 5, got)
    line = [l for l in r.stdout.splitlines() if "power:" in l]
    check(line and "whole system n/a" in line[0] and "per output token n/a" in line[0],
          "the table says n/a for it", "whole system n/a ... per output token n/a", line)


def file_refusals(tmp):
    """A power file whose times go backwards, or with text after the watts ("100 W" was read
    as 100), or watts too large to hold, is refused naming the line."""
    for name, rows, words in (
            ("unsorted", "5,100\n1,100\n", "line 2: time 1 is before the previous row's 5"),
            ("unit", "time_s,watts\n0,100 W\n1,100 W\n", "line 2: ' W' follows the watts"),
            ("huge", "0,1e308\n1,1e308\n", "line 1: watts must be a number from 0 to 1e12")):
        csv = os.path.join(tmp, name + ".csv")
        with open(csv, "w") as f:
            f.write(rows)
        r = common.run_strobe("slt", "--out", os.path.join(tmp, "fr"), "--url",
                              "http://127.0.0.1:1", "--model", "m", "--power", "file:" + csv)
        check(r.returncode == 2 and words in r.stderr and r.stderr.strip().endswith("."),
              "--power file: %s rows refused naming the line" % name, words,
              r.stderr.strip()[-200:])


def one_device_twice(tmp):
    """Two sources that read one device are refused before the run, whatever their spelling:
    all GPUs and GPU 0 of them, a file by two paths, a powercap tree by two paths. Two sources
    that read different devices, or one file's devices alongside another file's, still run."""
    csv = os.path.join(tmp, "twice.csv")
    with open(csv, "w") as f:
        f.write("0,100\n1,100\n")
    other = os.path.join(tmp, "other.csv")
    with open(other, "w") as f:
        f.write("0,50\n1,50\n")
    root = os.path.join(tmp, "powercap2")
    os.makedirs(os.path.join(root, "intel-rapl:0"))
    open(os.path.join(root, "intel-rapl:0", "energy_uj"), "w").write("0\n")
    dead = ["--url", "http://127.0.0.1:1", "--model", "m"]
    env = fake_nvml_env(found=True)
    for a, b, device in (("nvml", "nvml:0", "GPU 0 Fake GPU"),
                         ("nvml:1,0", "nvml:0", "GPU 0 Fake GPU"),
                         ("file:" + csv, "file:" + os.path.join(tmp, ".", "twice.csv"), "file"),
                         ("file:" + csv, "file:%s,accelerator" % csv, "file"),
                         ("rapl:" + root, "rapl:" + root + "/", "intel-rapl:0")):
        r = common.run_strobe("slt", "--out", os.path.join(tmp, "twice"), *dead, "--power", a,
                              "--power", b, env=env)
        check(r.returncode == 2 and "both read " + device in r.stderr and
              "count twice" in r.stderr and r.stderr.strip().endswith(".") and
              not os.path.exists(os.path.join(tmp, "twice")),
              "--power %s --power %s: one device read twice is refused, naming it" % (a, b),
              device, r.stderr.strip()[-200:])
    # "emu" alone is the measured emulator's URL: given both ways, one device
    with common.emulator(*MODEL) as port:
        url = "http://127.0.0.1:%d" % port
        r = common.run_strobe("slt", "--out", os.path.join(tmp, "twice"), "--url", url, "--model", "m",
                              "--power", "emu", "--power", "emu:" + url)
    check(r.returncode == 2 and "both read" in r.stderr and not os.path.exists(os.path.join(tmp, "twice")),
          "--power emu --power emu:URL of the measured emulator: one device read twice, refused", 2,
          (r.returncode, r.stderr.strip()[-200:]))
    # different devices of one driver, and two files: no refusal at the sources (the run then
    # fails on the dead URL, exit 2 with that reason)
    for a, b in (("nvml:0", "nvml:1"), ("file:" + csv, "file:" + other)):
        r = common.run_strobe("slt", "--out", os.path.join(tmp, "twice"), *dead, "--power", a,
                              "--power", b, env=env)
        check("both read" not in r.stderr,
              "--power %s --power %s: different devices are not taken for one" % (a, b),
              "no refusal", r.stderr.strip()[-200:])


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        one_device_twice(tmp)
        missing(tmp)
        low_rate(tmp)
        empty_window(tmp)
        file_refusals(tmp)
        emu_and_redfish(tmp)
        file_source(tmp)
        rapl(tmp)
        nvml(tmp)
        source_dies(tmp)
        agents_per_mw(tmp)
    common.done()
