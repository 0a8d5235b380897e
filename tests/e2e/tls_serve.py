"""A TLS server with test_http's canned SSE answers, on the address given, until killed:
  python3 tls_serve.py CERT KEY IP PORT
(the DPDK test runs it inside its server-side network namespace)."""
import ssl
import sys

from test_http import Handler, Server


class TLSServer(Server):
    def __init__(self, addr, cert, key):
        super().__init__(addr, Handler)
        self.mode = "chunked"
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True), addr


if __name__ == "__main__":
    cert, key, ip, port = sys.argv[1:5]
    TLSServer((ip, int(port)), cert, key).serve_forever()
