"""Runs one of the tap's testbenches under Icarus or Verilator and passes when it prints PASS.
  run_tb.py icarus|verilator tb_tod|tb_tap WORK_DIR [STROBE STROBE_EMU]
tb_tap needs frames of real traffic: made once per WORK_DIR by frames.py (a capture inside a
network namespace, so root), or taken from $STROBE_TAP_PCAP when set. Exit 77 (skip) when
neither is possible."""
import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RTL = sorted(glob.glob(os.path.join(HERE, "..", "rtl", "*.v")))


def frames(work, strobe, emu):
    if os.path.exists(os.path.join(work, "expect.hex")):
        return True
    pcap = os.environ.get("STROBE_TAP_PCAP")
    if pcap:
        cmd = [sys.executable, os.path.join(HERE, "frames.py"), "--from-pcap", pcap, work]
    elif os.geteuid() == 0 and strobe:
        cmd = [sys.executable, os.path.join(HERE, "frames.py"), strobe, emu, work]
    else:
        return False
    r = subprocess.run(cmd)
    return r.returncode == 0


def main():
    sim, tb, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    args = []
    if tb == "tb_tap":
        if not frames(work, *(sys.argv[4:6] or [None, None])):
            print("SKIP: no frames: capturing needs root (or set STROBE_TAP_PCAP to a pcap file)")
            return 77
        args = ["+n=%d" % sum(1 for _ in open(os.path.join(work, "frames.len")))]
    src = [os.path.join(HERE, tb + ".v")] + ([os.path.join(HERE, "..", "rtl", "tap_tod.v")] if tb == "tb_tod" else RTL)
    if sim == "icarus":
        exe = os.path.join(work, tb + ".vvp")
        subprocess.run(["iverilog", "-g2012", "-Wall", "-o", exe] + src, check=True)
        run = ["vvp", "-n", exe] + args
    else:
        obj = os.path.join(work, "obj_" + tb)
        subprocess.run(["verilator", "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                        "--top-module", tb, "--Mdir", obj, "-o", tb] + src, check=True,
                       stdout=subprocess.DEVNULL)
        run = [os.path.join(obj, tb)] + args
    r = subprocess.run(run, cwd=work, capture_output=True, text=True)
    print(r.stdout[-3000:])
    return 0 if r.returncode == 0 and "\nPASS" in "\n" + r.stdout else 1


if __name__ == "__main__":
    sys.exit(main())
