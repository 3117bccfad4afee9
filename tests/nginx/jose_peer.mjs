// Tokens and DPoP proofs from implementations independent of libagentid:
// the npm package jose (installed in tests/interop) signs the tokens; the
// npm package dpop (npm ci in tests/nginx) makes the DPoP proofs, or jose
// when dpop is not installed.  Used by tests/integration/nginx_jose.sh.
//
//   node jose_peer.mjs OUTDIR ISS AUD URL
//
// writes OUTDIR/jwks.json (ES256 and two Ed25519 public keys, one marked
// "alg":"EdDSA" and one "alg":"Ed25519" (RFC 9864); kid = RFC 7638
// thumbprint) and prints "name token" lines; "*_proof" lines are DPoP proofs
// for GET URL bound to the "bound" token (ES256 proof key) or the
// "bound_ed" token (Ed25519 proof key, alg "Ed25519").
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createHash, randomBytes } from "node:crypto";

const [outdir, iss, aud, url] = process.argv.slice(2);
const interop = process.env.INTEROP;
const jose = await import(
  pathToFileURL(join(interop, "node_modules/jose/dist/node/esm/index.js")).href
);

const dpopPath = join(process.env.PEERS || ".", "node_modules/dpop/build/index.js");
const DPoP = existsSync(dpopPath) ? await import(pathToFileURL(dpopPath).href) : null;

const b64 = (b) => Buffer.from(b).toString("base64url");
const now = Math.floor(Date.now() / 1000);

async function keypair(alg, opts) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true, ...opts });
  const jwk = await jose.exportJWK(publicKey);
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = alg;
  jwk.use = "sig";
  return { publicKey, privateKey, jwk };
}

const es = await keypair("ES256");
const ed = await keypair("EdDSA", { crv: "Ed25519" });
const ed9864 = await keypair("Ed25519");
const dpopKey = await keypair("ES256");
const dpopEdKey = await keypair("Ed25519");
writeFileSync(join(outdir, "jwks.json"), JSON.stringify({ keys: [es.jwk, ed.jwk, ed9864.jwk] }));

const base = {
  iss, aud, client_id: "jose-peer", sub: "spiffe://example.org/user/bob", scope: "read",
  act: { sub: "spiffe://example.org/agent/jose" }, jti: b64(randomBytes(12)),
};

async function sign(k, claims, header = {}) {
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: k.jwk.alg, kid: k.jwk.kid, typ: "at+jwt", ...header })
    .setIssuedAt(now)
    .setExpirationTime(claims.exp ?? now + 300)
    .sign(k.privateKey);
}

const out = {};
out.es256 = await sign(es, { ...base });
out.eddsa = await sign(ed, { ...base, jti: b64(randomBytes(12)) });
out.ed25519 = await sign(ed9864, { ...base, jti: b64(randomBytes(12)) });
// An Ed25519-headed token whose key the JWK Set marks "alg":"EdDSA".
out.ed25519_eddsa_key = await sign(ed9864, { ...base, jti: b64(randomBytes(12)) },
  { kid: ed.jwk.kid });
out.expired = await sign(es, { ...base, exp: now - 600 });
out.wrong_aud = await sign(es, { ...base, aud: "https://elsewhere.example" });
out.no_scope = await sign(es, { ...base, scope: "other" });
out.wrong_typ = await sign(es, { ...base }, { typ: "JWT" });
out.unsecured = new jose.UnsecuredJWT({ ...base, exp: now + 300 }).encode();
// Algorithm confusion: HS256 keyed with the public key's JSON.
out.hs256 = await new jose.SignJWT({ ...base })
  .setProtectedHeader({ alg: "HS256", kid: es.jwk.kid, typ: "at+jwt" })
  .setIssuedAt(now).setExpirationTime(now + 300)
  .sign(new TextEncoder().encode(JSON.stringify(es.jwk)));

function publicJwk(k) {
  const jwk = { ...k.jwk };
  delete jwk.kid; delete jwk.alg; delete jwk.use;
  return jwk;
}
const dpopJwk = publicJwk(dpopKey);
const dpopEdJwk = publicJwk(dpopEdKey);
const dpopPair = DPoP ? await DPoP.generateKeyPair("ES256") : null;
// npm dpop names Ed25519 keys by the RFC 9864 algorithm "Ed25519".
const dpopEdPair = DPoP ? await DPoP.generateKeyPair("Ed25519") : null;
const jkt = DPoP ? await DPoP.calculateThumbprint(dpopPair.publicKey)
                 : await jose.calculateJwkThumbprint(dpopJwk);
const jktEd = DPoP ? await DPoP.calculateThumbprint(dpopEdPair.publicKey)
                   : await jose.calculateJwkThumbprint(dpopEdJwk);
out.bound = await sign(es, { ...base, jti: b64(randomBytes(12)), cnf: { jkt } });
out.bound_ed = await sign(es, { ...base, jti: b64(randomBytes(12)), cnf: { jkt: jktEd } });
out.dpop_impl = DPoP ? "dpop" : "jose";

async function proof(htm, htu, token, ed25519 = false) {
  if (DPoP) return DPoP.generateProof(ed25519 ? dpopEdPair : dpopPair, htu, htm, undefined, token);
  const [alg, k, jwk] = ed25519 ? ["Ed25519", dpopEdKey, dpopEdJwk] : ["ES256", dpopKey, dpopJwk];
  return new jose.SignJWT({
    jti: b64(randomBytes(16)), htm, htu, iat: now,
    ath: b64(createHash("sha256").update(token).digest()),
  }).setProtectedHeader({ alg, typ: "dpop+jwt", jwk }).sign(k.privateKey);
}
out.bound_proof = await proof("GET", url, out.bound);
out.bound_proof_post = await proof("POST", url, out.bound);
out.bound_ed_proof = await proof("GET", url, out.bound_ed, true);
out.bound_ed_proof_post = await proof("POST", url, out.bound_ed, true);
out.bound_ed_proof_alg = JSON.parse(Buffer.from(out.bound_ed_proof.split(".")[0], "base64url")).alg;

for (const [k, v] of Object.entries(out)) console.log(`${k} ${v}`);
