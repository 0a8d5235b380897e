"""TLS through strobe's kernel transport against a local TLS server on loopback:
verification, SNI and host-name checks on by default, --ca-file, --insecure said loudly."""
import json
import os
import ssl
import subprocess
import tempfile
import threading

import common
from common import check
from test_http import Handler, Server


def make_cert(d, name, sans):
    key, cert = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=" + sans.split(",")[0].split(":")[1], "-keyout", key,
                    "-out", cert, "-addext", "subjectAltName=" + sans],
                   check=True, capture_output=True)
    return cert, key


class TLSServer(Server):
    def __init__(self, cert, key):
        super().__init__(("127.0.0.1", 0), Handler)
        self.mode = "chunked"
        self.sni = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.sni_callback = lambda sock, name, c: self.sni.append(name)
        self.ctx = ctx

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True), addr


def run(tmp, srv, host, *extra):
    out = os.path.join(tmp, "run%d" % len(os.listdir(tmp)))
    return common.run_strobe("slt", "--url", "https://%s:%d" % (host, srv.server_address[1]),
                             "--model", "canned", "--out", out, "--concurrency", "2",
                             "--phase-s", "1", "--ramp-s", "0.2", "--input-tokens", "100",
                             "--output-tokens", "3", "--threads", "1", *extra, timeout=120), out


def serve(cert, key):
    srv = TLSServer(cert, key)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        certs = os.path.join(tmp, "certs")
        os.mkdir(certs)
        runs = os.path.join(tmp, "runs")
        os.mkdir(runs)
        good, good_key = make_cert(certs, "good", "DNS:localhost,IP:127.0.0.1")
        other, other_key = make_cert(certs, "other", "DNS:other.example")
        srv = serve(good, good_key)
        try:
            r, _ = run(runs, srv, "localhost")
            check(r.returncode == 1 and "certificate verify failed" in r.stderr,
                  "unknown CA: refused with 'certificate verify failed'", 1,
                  (r.returncode, r.stderr.strip()[-200:]))
            r, out = run(runs, srv, "localhost", "--ca-file", good)
            ok = r.returncode == 0
            ph = json.load(open(os.path.join(out, "results.json")))["phases"][0] if ok else {}
            check(ok and ph["requests_failed_whole_phase"] == 0 and ph["output_tokens"]["min"] == 3,
                  "trusted CA and matching name: every request succeeds over TLS", 0,
                  r.stderr.strip()[-300:])
            check("localhost" in srv.sni, "SNI names the host", "localhost", srv.sni[:3])
            r, _ = run(runs, srv, "127.0.0.1", "--ca-file", good)
            check(r.returncode == 0, "IP address checked against the certificate's IP SAN", 0,
                  r.stderr.strip()[-200:])
            r, out = run(runs, srv, "localhost", "--insecure")
            check(r.returncode == 0 and "NOT verified" in r.stderr,
                  "--insecure works and says so loudly", 0, r.stderr.strip()[-200:])
        finally:
            srv.shutdown()
            srv.server_close()
        srv = serve(other, other_key)
        try:
            r, _ = run(runs, srv, "localhost", "--ca-file", other)
            check(r.returncode == 1 and "certificate verify failed" in r.stderr and
                  "hostname" in r.stderr.lower(),
                  "trusted CA but wrong name: refused with a hostname mismatch", 1,
                  r.stderr.strip()[-200:])
        finally:
            srv.shutdown()
            srv.server_close()
    common.done()
