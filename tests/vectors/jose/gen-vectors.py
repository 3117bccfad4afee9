#!/usr/bin/env python3
"""Generates the JOSE test vectors in this folder.

The tokens here are made with python3-cryptography, an implementation that
is independent of libagentid, so that the unit tests check interoperability
and not only agreement of our code with itself.  Each file is named after
the defect it carries.  Keys are fresh on every run; the generated files
are checked in, so rerunning is only needed to add vectors.

Usage: python3 gen-vectors.py  (writes into the directory of this script)
"""

import base64
import datetime
import hashlib
import hmac
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

OUT = os.path.dirname(os.path.abspath(__file__))

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

PAYLOAD = {"iss": "https://issuer.example", "sub": "spiffe://example.org/agent/a",
           "aud": "api", "exp": 4102444800, "iat": 1700000000}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint_b64u(n: int, length: int = 0) -> str:
    if length == 0:
        length = (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(length, "big"))


def jdump(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def signing_input(header, payload=PAYLOAD) -> bytes:
    h = header if isinstance(header, bytes) else jdump(header)
    p = payload if isinstance(payload, bytes) else jdump(payload)
    return (b64u(h) + "." + b64u(p)).encode()


def write(name: str, text: str):
    with open(os.path.join(OUT, name), "w") as f:
        f.write(text + "\n")


def ec_jwk(key, crv, private=False):
    n = {"P-256": 32, "P-384": 48, "P-521": 66}[crv]
    pub = key.public_key().public_numbers() if private else key.public_numbers()
    jwk = {"kty": "EC", "crv": crv, "x": uint_b64u(pub.x, n), "y": uint_b64u(pub.y, n)}
    if private:
        jwk["d"] = uint_b64u(key.private_numbers().private_value, n)
    return jwk


def rsa_jwk(pub):
    nums = pub.public_numbers()
    return {"kty": "RSA", "n": uint_b64u(nums.n), "e": uint_b64u(nums.e)}


def es_sign(key, data, hashalg, n):
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashalg)))
    return r.to_bytes(n, "big") + s.to_bytes(n, "big"), key.sign(data, ec.ECDSA(hashalg))


def self_signed(key, cn):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=36500))
            .sign(key, hashes.SHA256()))


def main():
    # ---- ES256: one key, valid token and the signature defects
    eck = ec.generate_private_key(ec.SECP256R1())
    write("es256-key.json", json.dumps(dict(ec_jwk(eck.public_key(), "P-256"), kid="es256")))
    write("es256-private-key.json", json.dumps(ec_jwk(eck, "P-256", private=True)))
    write("es256-key.pem", eck.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode().strip())
    hdr = {"alg": "ES256", "kid": "es256"}
    si = signing_input(hdr)
    raw, der = es_sign(eck, si, hashes.SHA256(), 32)
    write("jws-es256-valid.jwt", si.decode() + "." + b64u(raw))
    write("jws-es256-der-sig.jwt", si.decode() + "." + b64u(der))
    write("jws-es256-psychic-sig.jwt", si.decode() + "." + b64u(bytes(64)))
    # r = n (out of range; r mod n would be 0), s from a real signature
    write("jws-es256-r-equals-order.jwt",
          si.decode() + "." + b64u(P256_ORDER.to_bytes(32, "big") + raw[32:]))
    # s + n does not fit 32 bytes, so test s = n with a valid r
    write("jws-es256-s-equals-order.jwt",
          si.decode() + "." + b64u(raw[:32] + P256_ORDER.to_bytes(32, "big")))
    write("jws-es256-truncated-sig.jwt", si.decode() + "." + b64u(raw[:63]))
    # A valid signature over a header with "crit".
    chdr = {"alg": "ES256", "kid": "es256", "crit": ["exp"], "exp": 1}
    csi = signing_input(chdr)
    craw, _ = es_sign(eck, csi, hashes.SHA256(), 32)
    write("jws-crit.jwt", csi.decode() + "." + b64u(craw))

    # ---- alg none and HMAC algorithm confusion
    nsi = signing_input({"alg": "none"})
    write("jws-alg-none.jwt", nsi.decode() + ".")
    write("jws-alg-none-with-sig.jwt", nsi.decode() + "." + b64u(b"\x00" * 32))
    pem = eck.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hsi = signing_input({"alg": "HS256", "kid": "es256"})
    write("jws-hs256-pubkey-as-secret.jwt",
          hsi.decode() + "." + b64u(hmac.new(pem, hsi, hashlib.sha256).digest()))

    # ---- RSA: RS256 and PS256 by an independent signer
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write("rsa2048-key.json", json.dumps(dict(rsa_jwk(rk.public_key()), kid="rsa")))
    pn = rk.private_numbers()
    write("rsa2048-private-key.json", json.dumps(dict(
        rsa_jwk(rk.public_key()), d=uint_b64u(pn.d), p=uint_b64u(pn.p), q=uint_b64u(pn.q),
        dp=uint_b64u(pn.dmp1), dq=uint_b64u(pn.dmq1), qi=uint_b64u(pn.iqmp))))
    rsi = signing_input({"alg": "RS256", "kid": "rsa"})
    write("jws-rs256-valid.jwt", rsi.decode() + "." +
          b64u(rk.sign(rsi, padding.PKCS1v15(), hashes.SHA256())))
    psi = signing_input({"alg": "PS256", "kid": "rsa"})
    write("jws-ps256-valid.jwt", psi.decode() + "." + b64u(rk.sign(
        psi, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())))
    # PSS with a salt length other than the hash length (RFC 7518 3.5 requires equal).
    write("jws-ps256-salt-0.jwt", psi.decode() + "." + b64u(rk.sign(
        psi, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=0), hashes.SHA256())))
    rpem = rk.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hrsi = signing_input({"alg": "HS256", "kid": "rsa"})
    write("jws-hs256-rsa-pubkey-as-secret.jwt",
          hrsi.decode() + "." + b64u(hmac.new(rpem, hrsi, hashlib.sha256).digest()))

    # ---- EdDSA
    edk = ed25519.Ed25519PrivateKey.generate()
    edpub = edk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    write("ed25519-key.json", json.dumps({"kty": "OKP", "crv": "Ed25519", "x": b64u(edpub),
                                          "kid": "ed"}))
    esi = signing_input({"alg": "EdDSA", "kid": "ed"})
    write("jws-eddsa-valid.jwt", esi.decode() + "." + b64u(edk.sign(esi)))

    # ---- bad JWKs
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    write("jwk-rsa-1024.json", json.dumps(rsa_jwk(weak.public_key())))
    bad = ec_jwk(eck.public_key(), "P-256")
    y = int.from_bytes(base64.urlsafe_b64decode(bad["y"] + "=="), "big")
    bad["y"] = uint_b64u(y ^ 1, 32)
    write("jwk-ec-point-not-on-curve.json", json.dumps(bad))
    k1 = ec.generate_private_key(ec.SECP256K1())
    pn = k1.public_key().public_numbers()
    write("jwk-ec-secp256k1.json", json.dumps({"kty": "EC", "crv": "secp256k1",
                                               "x": uint_b64u(pn.x, 32), "y": uint_b64u(pn.y, 32)}))
    # x with its leading byte removed; make sure one exists by retrying keys.
    while True:
        sk = ec.generate_private_key(ec.SECP256R1())
        if sk.public_key().public_numbers().x >> 248 == 0:
            break
    short = ec_jwk(sk.public_key(), "P-256")
    short["x"] = uint_b64u(sk.public_key().public_numbers().x)
    write("jwk-ec-short-coordinate.json", json.dumps(short))
    xk = x25519.X25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    write("jwk-okp-x25519.json", json.dumps({"kty": "OKP", "crv": "X25519", "x": b64u(xk)}))
    edk2 = ed25519.Ed25519PrivateKey.generate()
    mism = {"kty": "OKP", "crv": "Ed25519", "x": b64u(edpub), "d": b64u(edk2.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))}
    write("jwk-ed25519-d-mismatch.json", json.dumps(mism))

    # ---- x5c
    cert = self_signed(eck, "es256 test")
    cder = cert.public_bytes(serialization.Encoding.DER)
    other = ec.generate_private_key(ec.SECP256R1())
    ocert = self_signed(other, "other")
    oder = ocert.public_bytes(serialization.Encoding.DER)
    std = lambda d: base64.b64encode(d).decode()
    write("jwk-x5c-valid.json", json.dumps(dict(ec_jwk(eck.public_key(), "P-256"), kid="x5c",
                                                x5c=[std(cder), std(oder)])))
    write("jwk-x5c-key-mismatch.json", json.dumps(dict(ec_jwk(eck.public_key(), "P-256"),
                                                       x5c=[std(oder)])))
    write("jwk-x5c-base64url.json", json.dumps(dict(ec_jwk(eck.public_key(), "P-256"),
                                                    x5c=[b64u(cder)])))
    write("es256-cert.pem", cert.public_bytes(serialization.Encoding.PEM).decode().strip())

    # ---- a JWK Set with keys we must skip
    jwks = {"keys": [
        {"kty": "oct", "k": b64u(b"secret"), "kid": "hmac"},
        dict(ec_jwk(eck.public_key(), "P-256"), kid="es256"),
        dict(rsa_jwk(weak.public_key()), kid="weak"),
        dict(rsa_jwk(rk.public_key()), kid="rsa"),
        {"kty": "OKP", "crv": "X25519", "x": b64u(xk), "kid": "x25519"},
        dict(ec_jwk(eck.public_key(), "P-256"), kid="enc-only", alg="ECDH-ES"),
        {"kty": "OKP", "crv": "Ed25519", "x": b64u(edpub), "kid": "ed"},
    ]}
    write("jwks-mixed.json", json.dumps(jwks, indent=1))
    rfc9864()


def rfc9864():
    """"Ed25519" of RFC 9864, signed with the RFC 8037 appendix A key.

    Ed25519 signatures are deterministic and the key is the published one,
    so this vector comes out byte for byte the same on every run (and can be
    made alone with "gen-vectors.py rfc9864")."""
    with open(os.path.join(OUT, "rfc8037-ed25519.json")) as f:
        d = json.load(f)["d"]
    key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(d + "=="))
    si = signing_input({"alg": "Ed25519"})
    write("jws-ed25519-valid.jwt", si.decode() + "." + b64u(key.sign(si)))


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["rfc9864"]:
        rfc9864()
    else:
        main()
