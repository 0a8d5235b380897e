"""The FPGA tap end to end, on the sim backend: strobe measures strobe-emu inside a network
namespace the test creates (and removes) while a raw socket captures the traffic; `strobe
tap sim:CAPTURE` runs the tap's RTL (the Verilator model) over the captured frames at their
captured times; `strobe analyze` then gives every SSE event the tap's time of the frame that
carried its last byte: every event stamped, in order, within the expected distance of its
kernel stamp. Injected record loss is counted and its events fall back to the kernel stamp,
labelled so. The xrt backend's no-device path says so in one sentence. Needs root (77
otherwise) and a build with the tap runtime."""
import json
import os
import subprocess
import tempfile
import time

import common
from common import check

FRAMES_PY = os.path.join(os.path.dirname(__file__), "..", "..", "hw", "tb", "frames.py")
NS = "stfpga%d" % os.getpid()


def capture_run(tmp):
    subprocess.run(["ip", "netns", "add", NS], check=True)
    subprocess.run(["ip", "-n", NS, "link", "set", "lo", "up"], check=True)
    pcap, run = os.path.join(tmp, "run.pcap"), os.path.join(tmp, "run")
    # the sniffer says when it is bound, and is stopped when the run is over (SIGTERM: it
    # writes what it captured), so a slow machine neither loses the first frames nor the last
    sniffer = subprocess.Popen(["ip", "netns", "exec", NS, "python3", FRAMES_PY, "--sniff", pcap, "300", "400000"],
                               stdout=subprocess.PIPE, text=True)
    ready = sniffer.stdout.readline()
    check(ready.strip() == "sniffing", "the capture starts", "sniffing", ready)
    r = subprocess.run(["ip", "netns", "exec", NS, common.STROBE, "slt", "--out", run, "--threads", "1",
                        "--concurrency", "8", "--phase-s", "2", "--ramp-s", "0.5", "--input-tokens", "200",
                        "--output-tokens", "40", "--ignore-eos", "--tokenizer", "none",
                        "--emu-args", "--step-us 2000"], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "the measured run succeeds", 0, r.stderr[-300:])
    sniffer.terminate()
    sniffer.wait(60)
    sniffer.stdout.close()
    return pcap, run


def tap(run, spec):
    for f in ("tap_records.bin", "tap_clock.csv"):
        if os.path.exists(os.path.join(run, f)):
            os.remove(os.path.join(run, f))
    r = common.run_strobe("tap", spec, "--out", run, timeout=600)
    check(r.returncode == 0, "strobe tap %s reads the records" % spec.split("/")[-1], 0, r.stderr[-300:])
    a = common.run_strobe("analyze", run)
    check(a.returncode == 0, "analyze joins them", 0, a.stderr[-300:])
    res = json.load(open(os.path.join(run, "results.json")))
    print(r.stdout.strip())
    return res["timestamps"]


def main(tmp):
    pcap, run = capture_run(tmp)
    ts = tap(run, "sim:" + pcap)
    t = ts["fpga_tap"]
    src = ts["events_by_source"]
    d = t["tap_minus_host_stamp_us"]
    print("tap: %d records, %d events stamped, %d fallback, %d out of order; tap - kernel stamp "
          "p50 %.1f us, min %.1f, max %.1f; sources %s" % (t["records"], t["events_stamped"],
          t["events_fallback_to_host_stamp"], t["events_out_of_order"], d["p50"], d["min"], d["max"], src))
    total = sum(src.values())
    check(t["events_stamped"] > 1000 and t["events_stamped"] == total and src["fpga"] == total,
          "every event gets the tap's time", total, t["events_stamped"])
    check(t["events_out_of_order"] == 0, "the tap's times are in order within every request", 0,
          t["events_out_of_order"])
    check(t["records_lost"] == 0 and t["events_fallback_to_host_stamp"] == 0, "no record lost, no fallback",
          (0, 0), (t["records_lost"], t["events_fallback_to_host_stamp"]))
    # the capture and the socket read the same kernel receive time of a frame; the tap stamps
    # the frame holding the event's last byte, where a read's stamp is its last segment's, so
    # the tap is earlier by however long the read waited behind later segments (milliseconds
    # when the host is busy: the point of a tap) and later only by the model's few clocks
    check(abs(d["p50"]) < 10 and d["max"] < 50,
          "each tap time is its frame's: median within 10 us of the kernel stamp, never 50 us later",
          "|p50| < 10, max < 50 us", (d["min"], d["p50"], d["max"]))
    ts = tap(run, "sim:%s,drop-every=20" % pcap)
    t = ts["fpga_tap"]
    print("with loss: %d records, %d lost, %d events stamped, %d fell back; sources %s" % (
        t["records"], t["records_lost"], t["events_stamped"], t["events_fallback_to_host_stamp"],
        ts["events_by_source"]))
    check(t["records_lost"] > 0 and abs(t["records_lost"] * 19 - t["records"]) <= 19,
          "one record in 20 lost, and counted", t["records"] / 19, t["records_lost"])
    check(t["events_fallback_to_host_stamp"] > 0 and
          t["events_stamped"] + t["events_fallback_to_host_stamp"] == total and
          ts["events_by_source"]["kernel"] == t["events_fallback_to_host_stamp"],
          "events of lost records keep their kernel stamp, labelled kernel",
          (total, "kernel = fallback > 0"),
          (t["events_stamped"] + t["events_fallback_to_host_stamp"], ts["events_by_source"],
           t["events_fallback_to_host_stamp"]))
    # live: the model fed from the interface while strobe runs
    live = os.path.join(tmp, "live")
    os.mkdir(live)
    tapper = subprocess.Popen(["ip", "netns", "exec", NS, common.STROBE, "tap", "sim:iface=lo", "--out", live,
                               "--seconds", "9"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    r = subprocess.run(["ip", "netns", "exec", NS, common.STROBE, "slt", "--out", os.path.join(live, "run"),
                        "--threads", "1", "--concurrency", "4", "--phase-s", "1", "--ramp-s", "0.5",
                        "--input-tokens", "200", "--output-tokens", "20", "--ignore-eos", "--tokenizer", "none",
                        "--emu-args", "--step-us 2000"], capture_output=True, text=True, timeout=120)
    out, err = tapper.communicate(timeout=60)
    for f in ("tap_records.bin", "tap_clock.csv"):
        os.rename(os.path.join(live, f), os.path.join(live, "run", f))
    a = common.run_strobe("analyze", os.path.join(live, "run"))
    lt = json.load(open(os.path.join(live, "run", "results.json")))["timestamps"]
    print("live: %s; %s" % (out.strip(), lt.get("fpga_tap")))
    check(r.returncode == 0 and tapper.returncode == 0 and a.returncode == 0 and
          lt["fpga_tap"]["events_stamped"] > 0 and
          lt["fpga_tap"]["events_stamped"] + lt["fpga_tap"]["events_fallback_to_host_stamp"] == sum(lt["events_by_source"].values()),
          "sim fed live from the interface during a run: events stamped by the tap",
          (0, 0, 0, "> 0 stamped, every event once"),
          (r.returncode, tapper.returncode, a.returncode, lt.get("fpga_tap"), lt["events_by_source"], err[-300:]))
    r = common.run_strobe("tap", "xrt:0", "--out", run)
    check(r.returncode == 1 and "no Alveo device 0" in r.stderr, "xrt without a card: one sentence, exit 1",
          1, (r.returncode, r.stderr[-200:]))


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: the capture needs a network namespace (root)")
        raise SystemExit(77)
    probe = common.run_strobe("tap", "sim:/nonexistent", "--out", "/tmp")
    if "built without the tap runtime" in probe.stderr:
        print("SKIP: strobe was built without the tap runtime")
        raise SystemExit(77)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    common.done()
