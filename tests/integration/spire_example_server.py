#!/usr/bin/env python3
"""Loopback servers for tests/integration/spire_example.sh.

  spire_example_server.py https PORTFILE CERT KEY URLPATH=FILE...
      An HTTPS server in place of SPIRE's bundle endpoint (https_web
      profile) and of an identity provider's JWKS URL: GET URLPATH answers
      with FILE, read at each request so a test can rotate it.

  spire_example_server.py backend PORTFILE
      A plain HTTP upstream for nginx's proxy_pass: answers every request
      with a JSON object of the request's method, path and headers, so the
      test sees what nginx forwarded.

Both bind 127.0.0.1 on a port the kernel picks and write it to PORTFILE
(written to a temporary name and renamed, so a reader never sees half of
it) once they accept connections.  They run until SIGTERM.
"""
import http.server
import json
import os
import signal
import ssl
import sys


def write_port(portfile, port):
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, portfile)


def send_json(handler, body):
    """A 200 answer with body (bytes) as application/json."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Files(http.server.BaseHTTPRequestHandler):
    routes = {}

    def do_GET(self):
        path = self.routes.get(self.path.split("?", 1)[0])
        if path is None:
            self.send_error(404)
            return
        with open(path, "rb") as f:
            send_json(self, f.read())

    def log_message(self, fmt, *args):
        sys.stderr.write("https: " + (fmt % args) + "\n")


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }).encode()
        send_json(self, body)

    def log_message(self, fmt, *args):
        sys.stderr.write("backend: " + (fmt % args) + "\n")


def main(argv):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if len(argv) >= 6 and argv[1] == "https":
        for route in argv[5:]:
            url_path, _, file_path = route.partition("=")
            Files.routes[url_path] = file_path
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(argv[3], argv[4])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    elif len(argv) == 3 and argv[1] == "backend":
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    else:
        sys.stderr.write(__doc__)
        return 2
    write_port(argv[2], srv.server_address[1])
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
