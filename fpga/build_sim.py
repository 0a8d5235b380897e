"""Builds the Verilator model of hw/rtl/tap_top.v and its C wrapper into one static library.
Verilator 5.006's --build without --exe yields only V<top>__ALL.a, so verilated.cpp and
verilated_threads.cpp are compiled here (platform-notes.md).
  build_sim.py OUT.a WORK_DIR WRAPPER.cpp RTL.v..."""
import glob
import os
import subprocess
import sys

out, work, wrapper, rtl = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
os.makedirs(work, exist_ok=True)
subprocess.run(["verilator", "--cc", "--build", "-O3", "--top-module", "tap_top", "-Wno-fatal",
                "-Wno-lint", "-Wno-style", "--Mdir", work, "-CFLAGS", "-fPIC -O2"] + rtl,
               check=True, stdout=subprocess.DEVNULL)
inc = "/usr/share/verilator/include"
objs = []
for src in [wrapper, os.path.join(inc, "verilated.cpp"), os.path.join(inc, "verilated_threads.cpp")]:
    obj = os.path.join(work, os.path.basename(src) + ".o")
    subprocess.run(["g++", "-std=c++17", "-O2", "-fPIC", "-c", src, "-o", obj, "-I", work, "-I", inc,
                    "-I", os.path.join(inc, "vltstd"), "-I", os.path.dirname(os.path.abspath(wrapper))],
                   check=True)
    objs.append(obj)
extract = os.path.join(work, "all_objs")
os.makedirs(extract, exist_ok=True)
subprocess.run(["ar", "x", os.path.abspath(os.path.join(work, "Vtap_top__ALL.a"))], cwd=extract, check=True)
objs += sorted(glob.glob(os.path.join(extract, "*.o")))
if os.path.exists(out):
    os.remove(out)
subprocess.run(["ar", "rcs", out] + objs, check=True)
