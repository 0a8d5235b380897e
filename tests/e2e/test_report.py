"""strobe report from two real runs (an SLT run with measured power, an agents run): every
chart exists in PNG and SVG and is not empty, the HTML references only files it ships, and
headless Chromium renders the page with its images loaded."""
import html.parser
import json
import os
import shutil
import subprocess
import tempfile

import common
from common import check


class Refs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href"):
                self.refs.append(v)


def main(tmp):
    slt = os.path.join(tmp, "slt-run")
    r = common.run_strobe("slt", "--out", slt, "--threads", "1", "--concurrency", "1,4,16",
                          "--phase-s", "2", "--ramp-s", "0.5", "--output-tokens", "60",
                          "--input-tokens", "100", "--power", "emu",
                          "--emu-args", "--step-us 3000 --step-us-per-seq 40")
    check(r.returncode == 0, "an SLT run with power", 0, r.stderr[-200:])
    ag = os.path.join(tmp, "agents-run")
    r = common.run_strobe("agents", "--trajectories", common.AA_MINI, "--out", ag,
                          "--slo-speed", "200", "--slo-ttft", "1", "--max-agents", "8",
                          "--warmup-s", "0.5", "--stagger-s", "0.2", "--window-s", "1.5",
                          "--min-trajectories", "0", "--min-per-agent", "0", "--threads", "1",
                          "--power", "emu", "--emu-args", "--step-us 2000 --step-us-per-seq 300")
    check(r.returncode == 0, "an agents run with power", 0, r.stderr[-200:])
    out = os.path.join(tmp, "report")
    r = common.run_strobe("report", slt, ag, "-o", out)
    check(r.returncode == 0, "strobe report succeeds", 0, r.stderr[-300:])
    names = ["throughput_vs_speed", "speed_vs_concurrency", "latency_vs_concurrency",
             "throughput_vs_concurrency",
             "agents_per_mw", "agents_mw_vs_speed", "search_1", "power_0", "power_1"]
    for n in names:
        for ext in ("png", "svg"):
            p = os.path.join(out, "%s.%s" % (n, ext))
            size = os.path.getsize(p) if os.path.isfile(p) else None
            check(size is not None and size > 1000, "chart %s.%s exists and is not empty" % (n, ext),
                  "> 1000 bytes", size)
    svg = open(os.path.join(out, "throughput_vs_speed.svg")).read()
    want = ("tokens/s", "slt-run", "kernel timestamps")
    check(all(w in svg for w in want),
          "axes name their units; the chart names the runs and the timestamp source", want,
          [w for w in want if w not in svg] or "all")
    parser = Refs()
    parser.feed(open(os.path.join(out, "index.html")).read())
    missing = [r for r in parser.refs if "://" in r or not os.path.isfile(os.path.join(out, r))]
    check(parser.refs and not missing, "index.html references only files it ships", [], missing)
    # an OUT_DIR holding quotes and shell syntax is a name, never a command
    odd = os.path.join(tmp, "it's; touch injected; '")
    r = common.run_strobe("report", slt, "-o", odd)
    made = os.path.isfile(os.path.join(odd, "throughput_vs_speed.png"))
    check(r.returncode == 0 and made and not os.path.exists("injected")
          and not os.path.exists(os.path.join(tmp, "injected")),
          "an OUT_DIR with quotes and ';' gets its charts and runs nothing", (0, True, False),
          (r.returncode, made, r.stderr[-200:]))
    # a RUN_DIR whose name holds a line break and a gnuplot shell escape ('!cmd') is a label,
    # never a command (the name went into the chart scripts as it was)
    # (and a backquote, which gnuplot runs inside a double-quoted title)
    for name, what in (("x\n!touch pwned_by_name\n", "a line break and '!touch'"),
                       ("r`touch pwned_by_name`", "a backquoted command")):
        named = os.path.join(tmp, name)
        shutil.copytree(slt, named)
        lines_out = os.path.join(tmp, "odd-name-report")
        shutil.rmtree(lines_out, ignore_errors=True)
        r = common.run_strobe("report", named, "-o", lines_out)
        pwned = [d for d in (os.getcwd(), tmp, lines_out) if os.path.exists(os.path.join(d, "pwned_by_name"))]
        made = os.path.isfile(os.path.join(lines_out, "throughput_vs_speed.png"))
        check(r.returncode == 0 and made and not pwned,
              "a RUN_DIR named with %s: its charts, and nothing run" % what, (0, True, []),
              (r.returncode, made, pwned, r.stderr[-200:]))
    # runs whose folders share a name are told apart by their parents, the same run given twice
    # by a number (both were listed under one label, and their curves under one legend)
    for d in ("first", "second"):
        shutil.copytree(slt, os.path.join(tmp, d, "run"))
    alike_out = os.path.join(tmp, "alike-report")
    r = common.run_strobe("report", os.path.join(tmp, "first", "run"), os.path.join(tmp, "second", "run"),
                          os.path.join(tmp, "first", "run"), "-o", alike_out)
    page = open(os.path.join(alike_out, "index.html")).read() if r.returncode == 0 else ""
    labels = [l for l in ("<td>first/run</td>", "<td>second/run</td>", "<td>first/run (2)</td>") if l in page]
    check(r.returncode == 0 and len(labels) == 3, "runs of one folder name: labelled by parent, a repeat numbered",
          3, (r.returncode, labels, r.stderr[-200:]))
    # a page that cannot be written is an error, not a report with an empty page
    full = os.path.join(tmp, "full")
    os.makedirs(full)
    os.symlink("/dev/full", os.path.join(full, "index.html"))
    r = common.run_strobe("report", slt, "-o", full)
    check(r.returncode == 1 and "cannot write" in r.stderr and "index.html" in r.stderr
          and "report:" not in r.stdout,
          "a page the disk cannot take: exit 1 naming the file", (1, "cannot write ... index.html"),
          (r.returncode, r.stderr.strip()[-200:], r.stdout.strip()[-100:]))
    # a run that cannot be read leaves no OUT_DIR behind
    none = os.path.join(tmp, "not-made")
    r = common.run_strobe("report", os.path.join(tmp, "no-such-run"), "-o", none)
    check(r.returncode == 1 and not os.path.exists(none),
          "a RUN_DIR that cannot be read: exit 1, no OUT_DIR made", (1, False),
          (r.returncode, os.path.exists(none)))
    chromium = shutil.which("chromium")
    if not chromium:
        check(False, "headless Chromium is installed (apt-get install chromium)", "chromium on PATH",
              "not found")
        return
    shot = os.path.join(tmp, "shot.png")
    prof = os.path.join(tmp, "chromium-profile")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--user-data-dir=" + prof]
    url = "file://" + os.path.abspath(os.path.join(out, "index.html"))
    subprocess.run([chromium, *flags, "--window-size=1000,3000", "--screenshot=" + shot, url],
                   capture_output=True, timeout=120)
    size = os.path.getsize(shot) if os.path.isfile(shot) else 0
    check(size > 50000, "headless Chromium renders the page (screenshot %d bytes)" % size, "> 50000 bytes", size)
    dom = subprocess.run([chromium, *flags, "--dump-dom", "--virtual-time-budget=5000", url],
                         capture_output=True, text=True, timeout=120).stdout
    pngs = len([n for n in parser.refs if n.endswith(".png")])
    check(dom.count("<img") == pngs and "strobe report" in dom, "the rendered DOM holds every chart image",
          (pngs, True), (dom.count("<img"), "strobe report" in dom))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(tmp)
    common.done()
