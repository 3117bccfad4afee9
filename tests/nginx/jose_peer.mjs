// Tokens and DPoP proofs from implementations independent of libagentid:
// the npm package jose (installed in tests/interop) signs the tokens; the
// npm package dpop (npm ci in tests/nginx) makes the DPoP proofs, or jose
// when dpop is not installed.  Used by tests/integration/nginx_jose.sh.
//
//   node jose_peer.mjs OUTDIR ISS AUD URL
//
// writes OUTDIR/jwks.json (ES256 and Ed25519 public keys, kid = RFC 7638
// thumbprint) and prints "name token" lines; "*_proof" lines are DPoP proofs
// for GET URL bound to the "bound" token.
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
const dpopKey = await keypair("ES256");
writeFileSync(join(outdir, "jwks.json"), JSON.stringify({ keys: [es.jwk, ed.jwk] }));

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

const dpopJwk = { ...dpopKey.jwk };
delete dpopJwk.kid; delete dpopJwk.alg; delete dpopJwk.use;
const dpopPair = DPoP ? await DPoP.generateKeyPair("ES256") : null;
const jkt = DPoP ? await DPoP.calculateThumbprint(dpopPair.publicKey)
                 : await jose.calculateJwkThumbprint(dpopJwk);
out.bound = await sign(es, { ...base, jti: b64(randomBytes(12)), cnf: { jkt } });
out.dpop_impl = DPoP ? "dpop" : "jose";

async function proof(htm, htu, token) {
  if (DPoP) return DPoP.generateProof(dpopPair, htu, htm, undefined, token);
  return new jose.SignJWT({
    jti: b64(randomBytes(16)), htm, htu, iat: now,
    ath: b64(createHash("sha256").update(token).digest()),
  }).setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: dpopJwk }).sign(dpopKey.privateKey);
}
out.bound_proof = await proof("GET", url, out.bound);
out.bound_proof_post = await proof("POST", url, out.bound);

for (const [k, v] of Object.entries(out)) console.log(`${k} ${v}`);
