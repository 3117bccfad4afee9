// Cross-implementation test: the npm package `jose` (an independent JOSE
// implementation) against agentid, in both directions.
//
//   1. jose generates keys and signs tokens (ES256, ES384, RS256, PS256,
//      EdDSA, and Ed25519 of RFC 9864); `agentid verify` accepts them
//      against the JWK Set jose exported, and rejects tampered ones.
//   2. `agentid dev jwt-svid` and `agentid dev sign` with `agentid keygen`
//      keys make tokens; jose's jwtVerify accepts them against the bundle /
//      JWK Set agentid printed, and rejects tampered ones.
//
// Environment: AGENTID (the binary), INTEROP_TMP (a private scratch
// directory).  Prints "ok - ..." / "FAIL - ..." lines; exits 1 on failure.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as jose from 'jose';

const AGENTID = process.env.AGENTID;
const TMP = process.env.INTEROP_TMP;
if (!AGENTID || !TMP) {
  console.error('AGENTID and INTEROP_TMP must be set');
  process.exit(2);
}

const TD = 'example.org';
const AUD = 'https://api.example.org';
const ISS = 'https://exchange.example.org';
const ORCH = `spiffe://${TD}/agent/orchestrator`;
const SUMM = `spiffe://${TD}/agent/summarizer`;

let passed = 0;
let failed = 0;
function ok(cond, desc, extra) {
  if (cond) {
    passed++;
    console.log(`ok - ${desc}`);
  } else {
    failed++;
    console.log(`FAIL - ${desc}${extra ? `\n    ${String(extra).replace(/\n/g, '\n    ')}` : ''}`);
  }
}

function agentid(args, input) {
  const r = spawnSync(AGENTID, args, { input, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function b64url(s) {
  return Buffer.from(s).toString('base64url');
}

// Replaces the payload of a compact JWS, keeping header and signature.
function tamper(token, mutate) {
  const [h, p, s] = token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  mutate(claims);
  return `${h}.${b64url(JSON.stringify(claims))}.${s}`;
}

// A SPIFFE bundle's JWT authorities as a JWK Set jose accepts: jose (per
// RFC 7517) only uses keys whose "use" is absent or "sig", so the SPIFFE
// use "jwt-svid" is rewritten, as any SPIFFE-aware consumer would do.
function bundleToJwks(bundle) {
  return {
    keys: bundle.keys
      .filter((k) => k.use === 'jwt-svid')
      .map((k) => ({ ...k, use: 'sig' })),
  };
}

async function expectReject(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return e;
  }
}

// ---------------------------------------------------------------- 1. jose signs, agentid verifies
async function joseSigns() {
  const algs = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'Ed25519'];
  const jwks = { keys: [] };
  const tokens = {};
  const svids = {};
  const now = Math.floor(Date.now() / 1000);

  for (const alg of algs) {
    const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
    const jwk = await jose.exportJWK(publicKey);
    jwk.kid = await jose.calculateJwkThumbprint(jwk, 'sha256');
    jwk.alg = alg;
    jwks.keys.push(jwk);

    tokens[alg] = await new jose.SignJWT({
      client_id: ORCH,
      scope: 'tickets:read tickets:write',
      task: 'interop-1',
      act: { sub: SUMM, act: { sub: ORCH } },
    })
      .setProtectedHeader({ alg, kid: jwk.kid, typ: 'at+jwt' })
      .setIssuer(ISS)
      .setSubject(`spiffe://${TD}/user/alice`)
      .setAudience(AUD)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 300)
      .setJti(`jti-${alg}`)
      .sign(privateKey);

    svids[alg] = await new jose.SignJWT({})
      .setProtectedHeader({ alg, kid: jwk.kid, typ: 'JWT' })
      .setSubject(ORCH)
      .setAudience([AUD, 'other'])
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey);
  }
  const jwksPath = join(TMP, 'jose-jwks.json');
  writeFileSync(jwksPath, JSON.stringify(jwks, null, 2));

  const access = ['verify', '--bundle', jwksPath, '--audience', AUD, '--issuer', ISS,
    '--profile', 'access', '--scope', 'tickets:read'];
  const svid = ['verify', '--bundle', jwksPath, '--trust-domain', TD, '--audience', AUD,
    '--profile', 'jwt-svid'];

  for (const alg of algs) {
    let r = agentid([...access, tokens[alg]]);
    ok(r.status === 0, `agentid verifies a jose ${alg} access token`, r.stderr);
    if (r.status === 0) {
      const claims = JSON.parse(r.stdout);
      ok(claims.jti === `jti-${alg}` && claims.act?.sub === SUMM,
        `agentid prints the claims of the jose ${alg} token`, r.stdout);
    }
    r = agentid([...access, '-'], `${tokens[alg]}\n`);
    ok(r.status === 0, `agentid verifies a jose ${alg} access token from stdin`, r.stderr);

    const forged = tamper(tokens[alg], (c) => { c.scope = 'tickets:read admin'; });
    r = agentid([...access, forged]);
    ok(r.status === 1 && /^invalid: bad_signature: [^\n]*\n$/.test(r.stderr),
      `agentid rejects a tampered jose ${alg} token with bad_signature`,
      `status ${r.status}: ${r.stderr}`);

    r = agentid([...svid, svids[alg]]);
    if (alg === 'EdDSA' || alg === 'Ed25519') {
      ok(r.status === 1 && /^invalid: alg_not_allowed: /.test(r.stderr),
        `agentid rejects a jose ${alg} JWT-SVID (SPIFFE forbids EdDSA)`, `status ${r.status}: ${r.stderr}`);
    } else {
      ok(r.status === 0, `agentid verifies a jose ${alg} JWT-SVID against a plain JWKS`, r.stderr);
    }
  }

  // Expired per agentid's clock override, and a foreign audience.
  let r = agentid([...access, '--now', String(now + 3600), tokens.ES256]);
  ok(r.status === 1 && /^invalid: expired: /.test(r.stderr),
    'agentid rejects an expired jose token', r.stderr);
  r = agentid(['verify', '--bundle', jwksPath, '--audience', 'https://elsewhere',
    '--issuer', ISS, tokens.ES256]);
  ok(r.status === 1 && /^invalid: aud_mismatch: /.test(r.stderr),
    'agentid rejects a jose token for another audience', r.stderr);

  // jose's own key, but the JWK Set says the key is only for another alg.
  const restricted = { keys: jwks.keys.map((k) => (k.kty === 'RSA' ? { ...k, alg: 'RS512' } : k)) };
  const restrictedPath = join(TMP, 'jose-jwks-restricted.json');
  writeFileSync(restrictedPath, JSON.stringify(restricted));
  r = agentid(['verify', '--bundle', restrictedPath, '--audience', AUD, '--issuer', ISS,
    tokens.RS256]);
  ok(r.status === 1 && /^invalid: (key_mismatch|alg_not_allowed|unknown_kid): /.test(r.stderr),
    'agentid honours the JWK "alg" restriction', r.stderr);

  // RFC 9864: "EdDSA" and "Ed25519" are two names of one signature.  jose's
  // Ed25519 token verifies with its key whatever the JWK says about alg when
  // it says nothing, but not when the JWK names the other one.
  const ed = jwks.keys.find((k) => k.alg === 'Ed25519');
  const variants = [
    ['without alg', (({ alg, ...k }) => k)(ed), 0, null],
    ['marked "alg":"EdDSA"', { ...ed, alg: 'EdDSA' }, 1, /^invalid: key_mismatch: /],
  ];
  for (const [what, key, status, re] of variants) {
    const path = join(TMP, 'jose-jwks-ed25519.json');
    writeFileSync(path, JSON.stringify({ keys: [key] }));
    r = agentid(['verify', '--bundle', path, '--audience', AUD, '--issuer', ISS, tokens.Ed25519]);
    ok(r.status === status && (re === null || re.test(r.stderr)),
      `agentid on a jose Ed25519 token with the key ${what}: ${status === 0 ? 'accepted' : 'key_mismatch'}`,
      `status ${r.status}: ${r.stderr}`);
  }
  const edd = jwks.keys.find((k) => k.alg === 'EdDSA');
  writeFileSync(join(TMP, 'jose-jwks-eddsa.json'), JSON.stringify({ keys: [{ ...edd, alg: 'Ed25519' }] }));
  r = agentid(['verify', '--bundle', join(TMP, 'jose-jwks-eddsa.json'), '--audience', AUD,
    '--issuer', ISS, tokens.EdDSA]);
  ok(r.status === 1 && /^invalid: key_mismatch: /.test(r.stderr),
    'agentid on a jose EdDSA token with the key marked "alg":"Ed25519": key_mismatch',
    `status ${r.status}: ${r.stderr}`);
}

// ---------------------------------------------------------------- 2. agentid signs, jose verifies
async function agentidSigns() {
  const ca = join(TMP, 'ca');
  let r = agentid(['dev', 'ca', 'init', '--trust-domain', TD, '--dir', ca]);
  ok(r.status === 0, 'agentid dev ca init', r.stderr);
  const bundle = JSON.parse(readFileSync(join(ca, 'bundle.json'), 'utf8'));
  const bundleJwks = jose.createLocalJWKSet(bundleToJwks(bundle));

  r = agentid(['dev', 'jwt-svid', '--dir', ca, '--id', ORCH, '--audience', AUD,
    '--audience', 'other', '--claim', 'task=t-1']);
  ok(r.status === 0, 'agentid dev jwt-svid', r.stderr);
  const svid = r.stdout.trim();
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(svid, bundleJwks, {
      audience: AUD, typ: 'JWT', algorithms: ['ES256'], requiredClaims: ['exp', 'iat', 'jti'],
    });
    ok(payload.sub === ORCH && payload.task === 't-1' && protectedHeader.kid,
      'jose verifies an agentid dev JWT-SVID against the bundle', JSON.stringify(payload));
  } catch (e) {
    ok(false, 'jose verifies an agentid dev JWT-SVID against the bundle', e);
  }
  let e = await expectReject(jose.jwtVerify(
    tamper(svid, (c) => { c.sub = `spiffe://${TD}/agent/root`; }), bundleJwks, { audience: AUD }));
  ok(e?.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    'jose rejects a tampered agentid JWT-SVID', e);
  e = await expectReject(jose.jwtVerify(svid, bundleJwks, { audience: 'https://elsewhere' }));
  ok(e?.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'jose rejects the JWT-SVID for another audience', e);

  // The X.509 authority in x5c is the CA certificate agentid wrote.
  const x509 = bundle.keys.find((k) => k.use === 'x509-svid');
  const pem = readFileSync(join(ca, 'ca.pem'), 'utf8').replace(/-----[^-]+-----|\s/g, '');
  ok(x509 && x509.x5c?.length === 1 && x509.x5c[0] === pem,
    'the bundle x5c holds the dev CA certificate');

  // Keys from `agentid keygen`, tokens from `agentid dev sign`.
  const keydir = join(TMP, 'keys');
  mkdirSync(keydir, { recursive: true });
  for (const alg of ['ES256', 'ES384', 'ES512', 'RS256', 'PS256', 'EdDSA', 'Ed25519']) {
    const keyFile = join(keydir, `${alg}.key`);
    r = agentid(['keygen', '--alg', alg, '--out', keyFile]);
    ok(r.status === 0, `agentid keygen --alg ${alg}`, r.stderr);
    if (r.status !== 0)
      continue;
    const jwk = JSON.parse(r.stdout);
    const thumb = await jose.calculateJwkThumbprint(jwk, 'sha256');
    ok(jwk.kid === thumb, `agentid ${alg} kid is the RFC 7638 thumbprint jose computes`,
      `${jwk.kid} != ${thumb}`);

    r = agentid(['dev', 'sign', '--key', keyFile, '--alg', alg, '--typ', 'at+jwt',
      '--claims-json', JSON.stringify({
        iss: ISS, sub: `spiffe://${TD}/user/alice`, aud: AUD, client_id: ORCH,
        scope: 'tickets:read', act: { sub: ORCH },
      })]);
    ok(r.status === 0, `agentid dev sign --alg ${alg}`, r.stderr);
    const token = r.stdout.trim();

    // Against the JWK Set made of what keygen printed ...
    try {
      const { payload, protectedHeader } = await jose.jwtVerify(token,
        jose.createLocalJWKSet({ keys: [jwk] }),
        { issuer: ISS, audience: AUD, typ: 'at+jwt', algorithms: [alg] });
      ok(payload.act?.sub === ORCH && protectedHeader.kid === thumb,
        `jose verifies an agentid ${alg} token against the keygen JWK`, JSON.stringify(payload));
    } catch (err) {
      ok(false, `jose verifies an agentid ${alg} token against the keygen JWK`, err);
    }
    // ... and against the SPIFFE bundle `agentid bundle` prints.
    r = agentid(['bundle', '--trust-domain', TD, keyFile]);
    ok(r.status === 0, `agentid bundle of the ${alg} key`, r.stderr);
    try {
      await jose.jwtVerify(token, jose.createLocalJWKSet(bundleToJwks(JSON.parse(r.stdout))),
        { issuer: ISS, audience: AUD, algorithms: [alg] });
      ok(true, `jose verifies an agentid ${alg} token against agentid bundle`);
    } catch (err) {
      ok(false, `jose verifies an agentid ${alg} token against agentid bundle`, err);
    }
    e = await expectReject(jose.jwtVerify(tamper(token, (c) => { c.scope = 'admin'; }),
      jose.createLocalJWKSet({ keys: [jwk] }), { issuer: ISS, audience: AUD }));
    ok(e?.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      `jose rejects a tampered agentid ${alg} token`, e);
  }
}

try {
  await joseSigns();
  await agentidSigns();
} catch (e) {
  ok(false, 'interop script ran to the end', e?.stack ?? e);
}
console.log(`# jose ${JSON.parse(readFileSync(new URL('./node_modules/jose/package.json', import.meta.url))).version}, node ${process.version}`);
process.exit(failed === 0 ? 0 : 1);
