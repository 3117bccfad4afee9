#!/usr/bin/env python3
"""A loopback HTTP server that serves key documents, or misbehaves on purpose.

usage: fault_server.py PORT DIR

GET /NAME answers with DIR/NAME according to the mode in DIR/MODE, read on
every request (so a test switches modes by rewriting that file):

  good      200 with the file
  garbage   200 with 64 KiB of random bytes
  huge      200 with a 64 MiB body of JSON-looking text, sent as fast as the client reads
  slow      200 with the file's headers, then one byte of body every second
  hang      reads the request and never answers (the connection stays open)
  reset     closes the connection as soon as the request is read
  error     500 with a short text

Every request is logged to DIR/requests.log as "<mode> <path>".  Runs until
killed.
"""
import http.server
import os
import socketserver
import sys
import time

port, root = int(sys.argv[1]), sys.argv[2]


def mode():
    try:
        with open(os.path.join(root, "MODE")) as f:
            return f.read().strip() or "good"
    except OSError:
        return "good"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        m = mode()
        with open(os.path.join(root, "requests.log"), "a") as log:
            log.write(f"{m} {self.path}\n")
        name = os.path.join(root, os.path.basename(self.path.split("?")[0]))
        try:
            with open(name, "rb") as f:
                body = f.read()
        except OSError:
            body = None
        try:
            if m == "hang":
                time.sleep(3600)
                return
            if m == "reset":
                self.close_connection = True
                return
            if m == "error":
                self.send_response(500)
                self.send_header("Content-Length", "6")
                self.end_headers()
                self.wfile.write(b"broken")
                return
            if body is None and m == "good":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if m == "garbage":
                data = os.urandom(65536)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif m == "huge":
                chunk = b'{"keys":[' + b'{"kty":"EC","crv":"P-256"},' * 2000
                total = 64 * 1024 * 1024
                self.send_header("Content-Length", str(total))
                self.end_headers()
                sent = 0
                while sent < total:
                    n = min(len(chunk), total - sent)
                    self.wfile.write(chunk[:n])
                    sent += n
            elif m == "slow":
                self.send_header("Content-Length", str(len(body or b"{}")))
                self.end_headers()
                for b in body or b"{}":
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(1)
            else:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("127.0.0.1", port), Handler).serve_forever()
