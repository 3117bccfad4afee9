#!/usr/bin/env python3
"""Slow clients for tests/stress/exchange_load.sh.

usage: slow_clients.py HOST PORT CAFILE SECONDS [PER_KIND]

For SECONDS, keeps PER_KIND connections of each kind open against a TLS
server, reconnecting whenever the server closes one:

  tcp_idle      TCP connection, no TLS handshake, nothing sent
  tls_idle      TLS handshake done, no request sent
  header_drip   request headers sent one byte per second
  body_drip     complete headers announcing 4000 bytes, body one byte per second

Prints one line per kind: connections opened, closed by the server, and the
longest time the server kept one open (a connection still open at the end
counts with its age, so a server that never closes idle connections shows
up as a lifetime of SECONDS).  Exit 0 unless the helper itself failed.
"""
import socket
import ssl
import sys
import threading
import time

host, port, cafile, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
per_kind = int(sys.argv[5]) if len(sys.argv) > 5 else 4
deadline = time.monotonic() + seconds
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False

stats = {}
lock = threading.Lock()

HEAD = (b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\n")


def record(kind, opened=0, closed=0, life=0.0):
    with lock:
        s = stats.setdefault(kind, [0, 0, 0.0])
        s[0] += opened
        s[1] += closed
        s[2] = max(s[2], life)


def closed_by_peer(sock):
    """True when the peer closed (EOF or reset); False when merely no data yet."""
    try:
        sock.settimeout(0.05)
        data = sock.recv(4096)
        return data == b"" or len(data) > 0  # any answer (408/400) ends the exchange too
    except (socket.timeout, ssl.SSLWantReadError):
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True


def one(kind):
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            raw = socket.create_connection((host, port), timeout=5)
        except OSError:
            time.sleep(0.2)
            continue
        record(kind, opened=1)
        sock = raw
        payload = b""
        try:
            if kind != "tcp_idle":
                sock = ctx.wrap_socket(raw, server_hostname=host)
            if kind == "header_drip":
                payload = HEAD
            elif kind == "body_drip":
                sock.sendall(HEAD)
                payload = b"a" * 4000
            pos = 0
            while time.monotonic() < deadline:
                if payload and pos < len(payload):
                    sock.sendall(payload[pos:pos + 1])
                    pos += 1
                if closed_by_peer(sock):
                    record(kind, closed=1, life=time.monotonic() - start)
                    break
                time.sleep(0.95)
            else:
                record(kind, life=time.monotonic() - start)
        except (ConnectionError, ssl.SSLError, OSError):
            record(kind, closed=1, life=time.monotonic() - start)
        finally:
            try:
                sock.close()
            except OSError:
                pass


threads = [threading.Thread(target=one, args=(k,), daemon=True)
           for k in ("tcp_idle", "tls_idle", "header_drip", "body_drip") for _ in range(per_kind)]
for t in threads:
    t.start()
for t in threads:
    t.join(seconds + 10)
for kind in ("tcp_idle", "tls_idle", "header_drip", "body_drip"):
    o, c, life = stats.get(kind, [0, 0, 0.0])
    print(f"SLOW kind={kind} opened={o} closed_by_server={c} max_lifetime={life:.1f}")
