"""Test frames for the tap's testbenches, from real traffic: capture strobe talking to
strobe-emu on the loopback of a network namespace made for the purpose (removed after), keep
it as a pcap file, derive the cases real traffic lacks (802.1Q and QinQ tags, IPv6, minimum-
size padded frames, non-TCP frames) from the captured ones, and write what the testbench
reads: frames.hex (one byte per line), frames.len (one length per line) and expect.hex (per
frame, the record fields a correct tap must produce, timestamp and sequence excluded).
  python3 frames.py STROBE STROBE_EMU OUT_DIR        (root: it creates a namespace)
  python3 frames.py --from-pcap FILE OUT_DIR        (no capture)"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ETH_P_ALL = 0x0003


SO_TIMESTAMPNS = 35  # Linux: the kernel's receive time of each frame, ns


def sniff(out_pcap, seconds, most=3000):
    """Runs inside the namespace: every frame on its loopback, once, with the kernel's
    receive time (the same skb time a TCP socket's SO_TIMESTAMPING reports)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
    s.bind(("lo", 0))
    s.settimeout(0.5)
    frames = []
    # SIGTERM ends the capture early (the pcap is still written): a caller stops it when its
    # traffic is over instead of guessing how long that takes on a busy machine
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print("sniffing", flush=True)  # bound: the caller may start its traffic now
    end = time.time() + seconds
    while time.time() < end and len(frames) < most and not stop:
        try:
            data, anc, _, addr = s.recvmsg(65535, 64)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue  # loopback shows each frame twice
        t = time.time_ns()
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                t = sec * 1000000000 + nsec
        frames.append((t, data))
    write_pcap(out_pcap, frames)


def capture(strobe, emu, out_pcap):
    ns = "sttap%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        sniffer = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                                    "--sniff", out_pcap, "6"])
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["ip", "netns", "exec", ns, strobe, "slt", "--out", os.path.join(tmp, "run"),
                            "--threads", "1", "--concurrency", "4", "--phase-s", "1", "--ramp-s", "0.2",
                            "--input-tokens", "200", "--output-tokens", "20", "--ignore-eos",
                            "--tokenizer", "none", "--emu-args", "--step-us 2000"],
                           capture_output=True, timeout=60)
        sniffer.wait(30)
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def write_pcap(path, frames):
    """Nanosecond pcap (magic a1b23c4d); times in ns."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
        for t, d in frames:
            f.write(struct.pack("<IIII", t // 1000000000, t % 1000000000, len(d), len(d)) + d)


def read_pcap(path):
    data = open(path, "rb").read()
    off, out = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


def vlan(frame, tags):
    # insert 802.1Q tags (0x88A8 outer for QinQ) after the MAC addresses
    inserted = b""
    for i, vid in enumerate(tags):
        tpid = 0x88A8 if len(tags) == 2 and i == 0 else 0x8100
        inserted += struct.pack(">HH", tpid, vid)
    return frame[:12] + inserted + frame[12:]


def to_ipv6(frame):
    ihl = (frame[14] & 15) * 4
    total = struct.unpack(">H", frame[16:18])[0]
    proto = frame[23]
    payload = frame[14 + ihl:14 + total]
    src = bytes(10) + b"\xff\xff" + frame[26:30]
    dst = bytes(10) + b"\xff\xff" + frame[30:34]
    ip6 = struct.pack(">IHBB", 0x60000000, len(payload), proto, 64) + src + dst
    return frame[:12] + b"\x86\xdd" + ip6 + payload


def pad_min(frame):
    return frame + bytes(max(0, 60 - len(frame)))


def expect(frame):
    """The record fields (the reference model): flow hash, seq, payload length, flags, ports,
    frame length, info."""
    et, l3 = struct.unpack(">H", frame[12:14])[0], 14
    vl = 0
    if et in (0x88A8, 0x8100):
        vl, et, l3 = 1, struct.unpack(">H", frame[16:18])[0], 18
        if et == 0x8100:
            et, l3 = struct.unpack(">H", frame[20:22])[0], 22
    v6 = et == 0x86DD
    tcp, err = 0, 0
    if et == 0x0800:
        ihl = (frame[l3] & 15) * 4
        l4, pay = l3 + ihl, struct.unpack(">H", frame[l3 + 2:l3 + 4])[0] - ihl
        tcp = frame[l3 + 9] == 6
        src, dst = struct.unpack(">II", frame[l3 + 12:l3 + 20])
    elif v6:
        l4, pay = l3 + 40, struct.unpack(">H", frame[l3 + 4:l3 + 6])[0]
        tcp = frame[l3 + 6] == 6
        w = struct.unpack(">8I", frame[l3 + 8:l3 + 40])
        src, dst = w[0] ^ w[1] ^ w[2] ^ w[3], w[4] ^ w[5] ^ w[6] ^ w[7]
    if tcp:
        doff = (frame[l4 + 12] >> 4) * 4 if l4 + 13 < len(frame) else 0
        err = int(l4 + 14 > 96 or l4 + doff > len(frame) or doff < 20 or pay < doff)
    if tcp and not err:
        sport, dport, seq = struct.unpack(">HHI", frame[l4:l4 + 8])
        flags, plen = frame[l4 + 13], pay - doff
        h = src ^ dst ^ (sport << 16 | dport)
    else:
        sport = dport = seq = flags = plen = h = 0
    info = (int(tcp and not err)) | (int(v6) << 1) | (vl << 2) | (err << 3)
    return h, seq, plen, flags, sport, dport, len(frame), info


def build(frames):
    """The captured frames, then the derived cases."""
    tcp = [f for f in frames if len(f) > 54 and f[12:14] == b"\x08\x00" and f[23] == 6]
    data = [f for f in tcp if len(f) > 120][:40]
    small = [f for f in tcp if len(f) <= 66][:20]
    cases = frames[:600]
    cases += [vlan(f, [100]) for f in data[:10]] + [vlan(f, [7, 100]) for f in data[10:15]]
    cases += [to_ipv6(f) for f in data[15:30]] + [vlan(to_ipv6(f), [42]) for f in data[30:35]]
    cases += [pad_min(f) for f in small]
    arp = bytes(6 * [255]) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x06" + bytes(28) + bytes(18)
    udp = frames[0][:12] + b"\x08\x00" + struct.pack(">BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0,
                                                      b"\x0a\0\0\1", b"\x0a\0\0\2") + bytes(8) + bytes(18)
    cases += [arp, udp]
    return cases


def write(cases, out):
    with open(os.path.join(out, "frames.hex"), "w") as fh, open(os.path.join(out, "frames.len"), "w") as fl, \
            open(os.path.join(out, "expect.hex"), "w") as fe:
        for f in cases:
            fl.write("%04x\n" % len(f))
            for b in f:
                fh.write("%02x\n" % b)
            h, seq, plen, flags, sport, dport, flen, info = expect(f)
            # 160 bits: hash seq plen flags info sport dport flen
            fe.write("%08x%08x%04x%02x%02x%04x%04x%04x\n" % (h, seq, plen, flags, info, sport, dport, flen))
    n_tcp = sum(1 for f in cases if expect(f)[7] & 1)
    print("%d frames (%d TCP) written to %s" % (len(cases), n_tcp, out))


if __name__ == "__main__":
    if sys.argv[1] == "--sniff":
        sniff(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 3000)
        sys.exit(0)
    if sys.argv[1] == "--from-pcap":
        frames, out = read_pcap(sys.argv[2]), sys.argv[3]
    else:
        strobe, emu, out = sys.argv[1:4]
        os.makedirs(out, exist_ok=True)
        pcap = os.path.join(out, "strobe_emu.pcap")
        capture(strobe, emu, pcap)
        frames = read_pcap(pcap)
        print("captured %d frames of strobe <-> strobe-emu into %s" % (len(frames), pcap))
    if len(frames) < 100:
        print("FAIL: too few frames captured (%d)" % len(frames))
        sys.exit(1)
    write(build(frames), out)
