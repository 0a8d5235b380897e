"""strobe-log-replicate (the analysis benchmark's log maker): from a short real run against
strobe-emu, a log of whole copies with fresh request ids and times shifted copy by copy, whose
copied bodies carry the emulator's stamps shifted with them, so that each event's lag (strobe's
stamp - the emulator's send) and pacing (send - schedule) are the source's in every copy; with
--share-bodies the bodies cannot be shifted, and the tool says so; and `strobe analyze` reads
the copies as one phase, the lags within the source's."""
import json
import os
import re
import struct
import subprocess
import tempfile

import common
from common import check

REPLICATE = os.environ.get("STROBE_LOG_REPLICATE_BIN",
                           os.path.join(common.BUILD, "analysis", "strobe-log-replicate"))
STAMPS = re.compile(rb'"x_emu_sent_ns":(\d+),"x_emu_sched_ns":(\d+)')


def events(run):
    """Every event record's (request id, stamp, body) in log order."""
    data = open(os.path.join(run, "events.bin"), "rb").read()
    bodies = open(os.path.join(run, "bodies.bin"), "rb").read()
    _, hlen = struct.unpack_from("<II", data, 8)
    out, at = [], 16 + hlen
    while at + 64 <= len(data):
        if data[at] == 2:
            length, req, t = struct.unpack_from("<IQq", data, at + 4)
            off, = struct.unpack_from("<Q", data, at + 32)
            c, = struct.unpack_from("<q", data, at + 56)
            out.append((req, t, common.event_body(bodies, off, length, c)))
        at += 64
    return out


def lags(evs):
    """(stamp - send, send - schedule) of each event that carries the emulator's stamps."""
    out = []
    for _, t, body in evs:
        m = STAMPS.search(body)
        if m:
            out.append((t - int(m.group(1)), int(m.group(1)) - int(m.group(2))))
    return out


def main():
    if not os.access(REPLICATE, os.X_OK):
        print("strobe-log-replicate not built: skipped")
        raise SystemExit(77)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        r = common.run_strobe("slt", "--out", src, "--concurrency", "4", "--phase-s", "1",
                              "--ramp-s", "0.2", "--input-tokens", "50", "--output-tokens", "20",
                              "--ignore-eos", timeout=300)
        check(r.returncode == 0, "a source run", 0, (r.returncode, r.stderr[-400:]))
        if r.returncode:
            return
        source = events(src)
        want = lags(source)
        check(len(want) > 50, "the source's events carry the emulator's stamps", "> 50", len(want))
        dst = os.path.join(tmp, "copies")
        r = subprocess.run([REPLICATE, src, dst, str(len(source) * 2 + 1)], capture_output=True,
                           text=True, timeout=120)
        check(r.returncode == 0 and "3 copies" in r.stdout, "three copies made", "3 copies",
              (r.returncode, r.stdout, r.stderr))
        copies = events(dst)
        check(len(copies) == 3 * len(source), "every event copied three times", 3 * len(source),
              len(copies))
        per = len(source)
        for c in range(3):
            part = copies[c * per:(c + 1) * per]
            check(lags(part) == want,
                  "copy %d: each event's lag and pacing are the source's (stamps shifted with it)" % c,
                  want[:3], lags(part)[:3])
            shifted = part[-1][1] - source[-1][1]
            check(c == 0 and shifted == 0 or c and shifted > 0, "copy %d lies after the one before" % c,
                  "shifted", shifted)
        ids = {req for req, _, _ in copies}
        check(len(ids) == 3 * len({req for req, _, _ in source}), "each copy has its own request ids",
              3 * len({req for req, _, _ in source}), len(ids))
        r = common.run_strobe("analyze", dst, "--tokenizer", "none")
        check(r.returncode == 0, "the copies analyse", 0, (r.returncode, r.stderr[-400:]))
        if r.returncode == 0:
            got = json.load(open(os.path.join(dst, "results.json")))["phases"][0]
            # the analysis reads the 19-digit stamps as doubles (as cJSON does): 256 ns apart
            # at today's epoch, so a shifted copy's stamp rounds differently, by up to 256 ns
            top = max(l for l, _ in want) / 1e3 + 0.256
            lag = got["client_lag_vs_emulator_send_us"]
            check(lag["max"] <= top, "the analysed lags stay within the source's (µs, + 0.256)",
                  top, lag["max"])
        shared = os.path.join(tmp, "shared")
        r = subprocess.run([REPLICATE, src, shared, str(len(source) * 2 + 1), "--share-bodies"],
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0 and "not shifted" in r.stdout,
              "--share-bodies says the emulator's stamps are not shifted", "not shifted",
              (r.returncode, r.stdout))


if __name__ == "__main__":
    main()
    common.done()
