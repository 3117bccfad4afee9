#!/usr/bin/env python3
"""Checks tokens against the status lists they point at.

usage: statusbits.py CAFILE TOKENS_FILE WANT

TOKENS_FILE holds one access token per line.  Each token's
status.status_list {idx, uri} is looked up in the list fetched from uri
(each list once, over TLS with CAFILE).  WANT is the expected status value
(1 = invalid/revoked, 0 = valid).  Prints "STATUS checked=N mismatched=M"
and the jti of up to 10 mismatches; exits 1 when a list cannot be fetched
or decoded (the signature is not checked here: the integration tests and
agentid verify do that).
"""
import base64
import json
import ssl
import sys
import urllib.request
import zlib


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


cafile, path, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
lists = {}
checked = mismatched = 0
bad = []
with open(path) as f:
    tokens = [line.strip() for line in f if line.strip()]
for tok in tokens:
    claims = json.loads(b64url(tok.split(".")[1]))
    sl = claims["status"]["status_list"]
    uri, idx = sl["uri"], int(sl["idx"])
    if uri not in lists:
        with urllib.request.urlopen(uri, context=ctx, timeout=10) as resp:
            jwt = resp.read().decode()
        p = json.loads(b64url(jwt.split(".")[1]))["status_list"]
        lists[uri] = (int(p["bits"]), zlib.decompress(b64url(p["lst"])))
    bits, lst = lists[uri]
    pos = idx * bits
    value = (lst[pos // 8] >> (pos % 8)) & ((1 << bits) - 1) if pos // 8 < len(lst) else None
    checked += 1
    if value != want:
        mismatched += 1
        if len(bad) < 10:
            bad.append(f"{claims.get('jti')}@{idx}={value}")
print(f"STATUS checked={checked} mismatched={mismatched} lists={len(lists)}" +
      (" bad=" + ",".join(bad) if bad else ""))
