#!/usr/bin/env python3
"""Serves the files of a directory over HTTPS on 127.0.0.1, for tests that
need a bundle endpoint or a JWKS URL with their own web PKI.

usage: https_files.py DIR CERT KEY PORTFILE [PORT]

PORT 0 (the default) lets the kernel choose; the port in use is written to
PORTFILE once the server listens.  Files are read at each request, so a test
rotates keys by replacing them (rename, for atomicity).  Requests are logged
to stderr.
"""
import functools
import http.server
import os
import ssl
import sys


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    root, cert, key, portfile = sys.argv[1:5]
    port = int(sys.argv[5]) if len(sys.argv) == 6 else 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % httpd.server_address[1])
    os.rename(tmp, portfile)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
