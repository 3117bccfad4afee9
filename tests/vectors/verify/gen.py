#!/usr/bin/env python3
"""Generates the static verifier vectors in this directory.

Every vector is a JWT-SVID for the verifier configured in
tests/unit/test_verifier.c (test_vectors): trust domain example.org with the
key in es256-key.pem under kid "vec-es256", audience
"spiffe://example.org/api", verified at now = 1700000100.  expected.txt maps
each file to the reason code the verifier must give ("ok" = accepted).

The key is created on the first run and reused afterwards.  ECDSA signatures
are randomized, so re-running changes the token bytes but not the outcomes.
Requires the Python "cryptography" package; run from any directory.
"""
import base64
import hmac
import hashlib
import json
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
KEY_FILE = os.path.join(HERE, "es256-key.pem")
KID = "vec-es256"
SUB = "spiffe://example.org/workload"
AUD = "spiffe://example.org/api"
IAT = 1700000000
EXP = 1700003600


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def load_key():
    if os.path.exists(KEY_FILE):
        with open(KEY_FILE, "rb") as f:
            return serialization.load_pem_private_key(f.read(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    with open(KEY_FILE, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return key


def es256_raw(key, signing_input):
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def token(key, header_text, payload_text, sig=None):
    si = b64(header_text) + "." + b64(payload_text)
    if sig is None:
        sig = es256_raw(key, si)
    return si + "." + b64(sig)


def main():
    key = load_key()
    pub_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    hdr = {"alg": "ES256", "kid": KID, "typ": "JWT"}
    claims = {"sub": SUB, "aud": AUD, "iat": IAT, "exp": EXP}
    out = []

    def add(name, reason, tok):
        with open(os.path.join(HERE, name), "w") as f:
            f.write(tok + "\n")
        out.append((name, reason))

    def signed(header, payload):
        return token(key, compact(header), compact(payload))

    add("valid-es256.jwt", "ok", signed(hdr, claims))
    # alg none as attackers send it (empty signature: structurally malformed for a JWS
    # verifier), and with a signature part so the algorithm check itself must catch it.
    add("alg-none.jwt", "malformed",
        b64(compact({"alg": "none", "kid": KID, "typ": "JWT"})) + "." + b64(compact(claims)) + ".")
    add("alg-none-with-sig.jwt", "alg_not_allowed",
        b64(compact({"alg": "none", "kid": KID, "typ": "JWT"})) + "." + b64(compact(claims)) +
        "." + b64(bytes(64)))
    # Algorithm confusion: HMAC keyed with the public key PEM the verifier holds.
    h = {"alg": "HS256", "kid": KID, "typ": "JWT"}
    si = b64(compact(h)) + "." + b64(compact(claims))
    add("alg-hs256-public-key-as-secret.jwt", "alg_not_allowed",
        si + "." + b64(hmac.new(pub_pem, si.encode(), hashlib.sha256).digest()))
    # CVE-2022-21449: r = s = 0 must never verify.
    add("ecdsa-psychic-zero-sig.jwt", "bad_signature",
        token(key, compact(hdr), compact(claims), bytes(64)))
    si = b64(compact(hdr)) + "." + b64(compact(claims))
    add("ecdsa-der-sig.jwt", "bad_signature",
        si + "." + b64(key.sign(si.encode(), ec.ECDSA(hashes.SHA256()))))
    add("payload-tampered.jwt", "bad_signature",
        signed(hdr, claims).split(".")[0] + "." +
        b64(compact(dict(claims, sub="spiffe://example.org/admin"))) + "." +
        signed(hdr, claims).split(".")[2])
    jwk = {"kty": "EC", "crv": "P-256",
           "x": b64(key.public_key().public_numbers().x.to_bytes(32, "big")),
           "y": b64(key.public_key().public_numbers().y.to_bytes(32, "big"))}
    add("header-embedded-jwk.jwt", "header_not_allowed", signed(dict(hdr, jwk=jwk), claims))
    add("header-jku.jwt", "header_not_allowed",
        signed(dict(hdr, jku="https://attacker.example/jwks.json"), claims))
    add("header-x5u.jwt", "header_not_allowed",
        signed(dict(hdr, x5u="https://attacker.example/cert.pem"), claims))
    add("header-crit-unknown.jwt", "crit_unsupported",
        signed(dict(hdr, crit=["exp"], exp=1), claims))
    add("kid-missing.jwt", "unknown_kid", signed({"alg": "ES256", "typ": "JWT"}, claims))
    add("kid-unknown.jwt", "unknown_kid", signed(dict(hdr, kid="nope"), claims))
    add("typ-at-jwt-as-svid.jwt", "typ_mismatch", signed(dict(hdr, typ="at+jwt"), claims))
    add("sub-not-spiffe.jwt", "bad_spiffe_id", signed(hdr, dict(claims, sub="alice")))
    add("sub-untrusted-domain.jwt", "untrusted_domain",
        signed(hdr, dict(claims, sub="spiffe://evil.org/workload")))
    add("exp-string.jwt", "bad_claim", signed(hdr, dict(claims, exp=str(EXP))))
    add("exp-missing.jwt", "missing_claim",
        signed(hdr, {k: v for k, v in claims.items() if k != "exp"}))
    add("expired.jwt", "expired", signed(hdr, dict(claims, exp=IAT + 60)))
    add("aud-missing.jwt", "missing_claim",
        signed(hdr, {k: v for k, v in claims.items() if k != "aud"}))
    add("aud-other.jwt", "aud_mismatch",
        signed(hdr, dict(claims, aud=["spiffe://example.org/other"])))
    deep = {"sub": SUB, "aud": AUD, "iat": IAT, "exp": EXP, "x": []}
    cur = deep["x"]
    for _ in range(40):
        cur.append([])
        cur = cur[0]
    add("json-too-deep.jwt", "too_deep", signed(hdr, deep))
    add("duplicate-claim.jwt", "duplicate_member",
        token(key, compact(hdr),
              '{"sub":"%s","sub":"spiffe://example.org/admin","aud":"%s","exp":%d}'
              % (SUB, AUD, EXP)))
    add("act-cycle.jwt", "chain_cycle", signed(hdr, dict(claims, act={
        "sub": "spiffe://example.org/a", "act": {
            "sub": "spiffe://example.org/b", "act": {"sub": "spiffe://example.org/a"}}})))
    add("act-not-object.jwt", "chain_invalid",
        signed(hdr, dict(claims, act="spiffe://example.org/a")))

    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        f.write("# vector reason (generated by gen.py)\n")
        for name, reason in out:
            f.write("%s %s\n" % (name, reason))


if __name__ == "__main__":
    main()
