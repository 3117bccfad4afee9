// Makes an RFC 9449 DPoP proof with node's own crypto (an implementation independent of
// libagentid): dpop_proof.js KEY.pem METHOD URL [ACCESS_TOKEN]   or   KEY.pem --jkt
// A P-256 key signs ES256; an Ed25519 key signs with the RFC 9864 name "Ed25519", or with
// "EdDSA" (RFC 8037) when DPOP_ALG=EdDSA is in the environment.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const [keyFile, htm, htu, ath] = process.argv.slice(2);
const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
const pub = crypto.createPublicKey(key).export({ format: "jwk" });
const ed = pub.kty === "OKP";
// RFC 7638 member order: crv, kty, x (OKP) or crv, kty, x, y (EC).
const jwk = ed ? { crv: pub.crv, kty: pub.kty, x: pub.x } : { crv: pub.crv, kty: pub.kty, x: pub.x, y: pub.y };
const b64 = (b) => Buffer.from(b).toString("base64url");
if (htm === "--jkt") {
  console.log(b64(crypto.createHash("sha256").update(JSON.stringify(jwk)).digest()));
  process.exit(0);
}
const alg = ed ? process.env.DPOP_ALG || "Ed25519" : "ES256";
const header = { typ: "dpop+jwt", alg, jwk };
const payload = { jti: b64(crypto.randomBytes(16)), htm, htu, iat: Math.floor(Date.now() / 1000) };
if (ath) payload.ath = b64(crypto.createHash("sha256").update(ath).digest());
const input = b64(JSON.stringify(header)) + "." + b64(JSON.stringify(payload));
const sig = ed ? crypto.sign(null, Buffer.from(input), key)
               : crypto.sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
console.log(input + "." + b64(sig));
