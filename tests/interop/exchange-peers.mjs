// Independent peers against a running agentid-exchange (started by
// tests/integration/exchange_peers.sh):
//
//   1. oauth4webapi (an OAuth 2 client library that knows nothing of agentid)
//      discovers the server (RFC 8414) and performs an RFC 8693 token
//      exchange with genericTokenEndpointRequest, a DPoP proof from its DPoP
//      support (RFC 9449) and a JWT-SVID client assertion
//      (client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-spiffe).
//   2. jose verifies the issued access token against the server's jwks_uri
//      (createRemoteJWKSet) with typ at+jwt, iss and aud; oauth4webapi's own
//      RFC 9068 resource-server check (validateJwtAccessToken) accepts it
//      with a DPoP proof made for a resource request.
//   3. Delegation orchestrator -> sub -> sub2 through the same client
//      library; jose sees the nested act chain and parent_jti.
//
// Environment: ISSUER (https://127.0.0.1:PORT), NODE_EXTRA_CA_CERTS (the
// server certificate), the JWT-SVIDs ORCH_SUBJECT, ORCH_ASSERTION,
// SUB_ACTOR, SUB_ASSERTION, SUB2_ACTOR (all addressed to ISSUER), and
// INTEROP_TMP, where the tokens and resource-request DPoP proofs are
// written for the liboauth2 checks of the calling script:
//   dpop_token, dpop_proof (GET https://rs.example/resource, ath of
//   dpop_token), delegated_token, delegated_proof.
// Prints "ok - ..." / "FAIL - ..." lines; exits 1 on failure.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as jose from 'jose';
import * as oauth from 'oauth4webapi';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} must be set`);
    process.exit(2);
  }
  return v;
};
const ISSUER = env('ISSUER');
const TMP = env('INTEROP_TMP');
const ORCH_SUBJECT = env('ORCH_SUBJECT');
const ORCH_ASSERTION = env('ORCH_ASSERTION');
const SUB_ACTOR = env('SUB_ACTOR');
const SUB_ASSERTION = env('SUB_ASSERTION');
const SUB2_ACTOR = env('SUB2_ACTOR');

const TD = 'spiffe://example.org';
const ORCH = `${TD}/orchestrator`;
const SUB = `${TD}/sub`;
const SUB2 = `${TD}/sub2`;
const API = 'https://api.example';
const RS_URL = new URL('https://rs.example/resource');
const TE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_JWT = 'urn:ietf:params:oauth:token-type:jwt';
const TT_AT = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_SPIFFE = 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe';

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

function describe(err) {
  if (err instanceof oauth.ResponseBodyError)
    return `${err.status} ${err.error}: ${err.error_description}`;
  const cause = err?.cause ? ` (${JSON.stringify(err.cause).slice(0, 300)})` : '';
  return `${err?.name}: ${err?.message}${err?.code ? ` [${err.code}]` : ''}${cause}`;
}

// JWT-SVID client authentication, as a custom oauth4webapi ClientAuth: the
// library lets the caller supply how a client authenticates; it sets the
// grant and the DPoP proof itself.
function jwtSpiffe(assertion) {
  return (_as, client, body) => {
    body.set('client_id', client.client_id);
    body.set('client_assertion_type', JWT_SPIFFE);
    body.set('client_assertion', assertion);
  };
}

// One token exchange; a use_dpop_nonce challenge is answered once, as
// RFC 9449 section 8 asks of clients.
async function exchange(as, client, auth, dpop, params) {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await oauth.genericTokenEndpointRequest(as, client, auth, TE, params, { DPoP: dpop });
      return await oauth.processGenericTokenEndpointResponse(as, client, res);
    } catch (err) {
      if (attempt === 0 && oauth.isDPoPNonceError(err))
        continue;
      throw err;
    }
  }
}

// A DPoP proof for a resource request (with ath), made by oauth4webapi's
// protectedResourceRequest; the request is captured instead of sent.
async function resourceProof(dpop, token) {
  let captured;
  await oauth.protectedResourceRequest(token, 'GET', RS_URL, new Headers(), null, {
    DPoP: dpop,
    [oauth.customFetch]: async (url, init) => {
      captured = new Request(url, init);
      return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
    },
  });
  return captured;
}

async function main() {
  // ---- discovery (RFC 8414) ----
  let as;
  try {
    const issuer = new URL(ISSUER);
    as = await oauth.processDiscoveryResponse(issuer,
        await oauth.discoveryRequest(issuer, { algorithm: 'oauth2' }));
    ok(as.token_endpoint === `${ISSUER}/token` && typeof as.jwks_uri === 'string',
        'oauth4webapi: RFC 8414 discovery accepted (issuer matches, token_endpoint, jwks_uri)',
        JSON.stringify(as));
  } catch (err) {
    ok(false, 'oauth4webapi: RFC 8414 discovery', describe(err));
    return;
  }
  const JWKS = jose.createRemoteJWKSet(new URL(as.jwks_uri));

  // ---- 1. RFC 8693 exchange with DPoP and a JWT-SVID client assertion ----
  const keyPair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false,
      ['sign', 'verify']);
  const orch = { client_id: ORCH };
  const dpop = oauth.DPoP(orch, keyPair);
  const jkt = await dpop.calculateThumbprint();
  let t1;
  try {
    t1 = await exchange(as, orch, jwtSpiffe(ORCH_ASSERTION), dpop, {
      subject_token: ORCH_SUBJECT,
      subject_token_type: TT_JWT,
      scope: 'read write',
      audience: API,
      task_id: 'PEER-1',
    });
    ok(t1.token_type === 'dpop' && t1.issued_token_type === TT_AT && t1.scope === 'read write' &&
        typeof t1.expires_in === 'number',
        'oauth4webapi genericTokenEndpointRequest: RFC 8693 exchange with DPoP and a JWT-SVID ' +
        'client assertion succeeds (token_type DPoP, issued_token_type access_token)',
        JSON.stringify({ ...t1, access_token: '...' }));
  } catch (err) {
    ok(false, 'oauth4webapi genericTokenEndpointRequest: RFC 8693 exchange', describe(err));
    return;
  }
  writeFileSync(join(TMP, 'dpop_token'), t1.access_token);

  // ---- 2. jose and oauth4webapi verify the issued token ----
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(t1.access_token, JWKS, {
      issuer: ISSUER,
      audience: API,
      typ: 'at+jwt',
      requiredClaims: ['sub', 'client_id', 'iat', 'exp', 'jti'],
    });
    ok(protectedHeader.typ === 'at+jwt' && typeof protectedHeader.kid === 'string' &&
        payload.sub === ORCH && payload.client_id === ORCH && payload.act?.sub === ORCH &&
        payload.cnf?.jkt === jkt && payload.task === 'PEER-1' && payload.scope === 'read write',
        'jose jwtVerify against createRemoteJWKSet(jwks_uri): typ at+jwt, iss, aud; ' +
        'sub, client_id, act, task and cnf.jkt of the oauth4webapi DPoP key',
        JSON.stringify({ protectedHeader, payload }));
  } catch (err) {
    ok(false, 'jose jwtVerify of the exchanged token', describe(err));
  }
  try {
    await jose.jwtVerify(t1.access_token, JWKS, { issuer: ISSUER, audience: 'https://db.example' });
    ok(false, 'jose rejects the token for an audience it was not issued to');
  } catch (err) {
    ok(err instanceof jose.errors.JWTClaimValidationFailed && err.claim === 'aud',
        'jose rejects the token for an audience it was not issued to', describe(err));
  }
  try {
    const [h, p, s] = t1.access_token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url'));
    claims.scope = 'read write deploy';
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    await jose.jwtVerify(forged, JWKS, { issuer: ISSUER, audience: API });
    ok(false, 'jose rejects the token with a changed payload');
  } catch (err) {
    ok(err instanceof jose.errors.JWSSignatureVerificationFailed,
        'jose rejects the token with a changed payload', describe(err));
  }
  try {
    const request = await resourceProof(dpop, t1.access_token);
    const claims = await oauth.validateJwtAccessToken(as, request, API);
    ok(claims.sub === ORCH && claims.cnf?.jkt === jkt,
        'oauth4webapi validateJwtAccessToken (RFC 9068 + RFC 9449 at the resource) accepts ' +
        'the token with a DPoP proof of its key', JSON.stringify(claims));
  } catch (err) {
    ok(false, 'oauth4webapi validateJwtAccessToken', describe(err));
  }
  try {
    const other = oauth.DPoP(orch, await crypto.subtle.generateKey(
        { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']));
    await oauth.validateJwtAccessToken(as, await resourceProof(other, t1.access_token), API);
    ok(false, 'oauth4webapi validateJwtAccessToken rejects a DPoP proof of another key');
  } catch (err) {
    ok(err instanceof oauth.OperationProcessingError && /confirmation mismatch/.test(err.message),
        'oauth4webapi validateJwtAccessToken rejects a DPoP proof of another key', describe(err));
  }
  const proof1 = (await resourceProof(dpop, t1.access_token)).headers.get('dpop');
  writeFileSync(join(TMP, 'dpop_proof'), proof1);

  // ---- 3. delegation orchestrator -> sub -> sub2, seen by jose ----
  let t2;
  let t3;
  try {
    t2 = await exchange(as, orch, jwtSpiffe(ORCH_ASSERTION), dpop, {
      subject_token: t1.access_token,
      subject_token_type: TT_AT,
      actor_token: SUB_ACTOR,
      actor_token_type: TT_JWT,
      scope: 'read',
    });
    const sub = { client_id: SUB };
    t3 = await exchange(as, sub, jwtSpiffe(SUB_ASSERTION), dpop, {
      subject_token: t2.access_token,
      subject_token_type: TT_AT,
      actor_token: SUB2_ACTOR,
      actor_token_type: TT_JWT,
    });
    ok(t2.scope === 'read' && t3.issued_token_type === TT_AT,
        'oauth4webapi: delegation orchestrator -> sub -> sub2 (actor tokens, narrowed scope)');
  } catch (err) {
    ok(false, 'oauth4webapi: delegation orchestrator -> sub -> sub2', describe(err));
    return;
  }
  writeFileSync(join(TMP, 'delegated_token'), t3.access_token);
  writeFileSync(join(TMP, 'delegated_proof'),
      (await resourceProof(dpop, t3.access_token)).headers.get('dpop'));
  try {
    const c2 = jose.decodeJwt(t2.access_token);
    const { payload } = await jose.jwtVerify(t3.access_token, JWKS, {
      issuer: ISSUER,
      audience: API,
      typ: 'at+jwt',
    });
    const chain = [];
    for (let a = payload.act; a; a = a.act)
      chain.push(a.sub);
    ok(JSON.stringify(chain) === JSON.stringify([SUB2, SUB, ORCH]) && payload.sub === ORCH &&
        payload.client_id === SUB && payload.parent_jti === c2.jti && payload.scope === 'read' &&
        payload.task === 'PEER-1' && payload.exp <= jose.decodeJwt(t1.access_token).exp,
        'jose: the delegated token verifies; act chain sub2 <- sub <- orchestrator, parent_jti, ' +
        'narrowed scope, inherited task, exp within the parent',
        JSON.stringify(payload));
  } catch (err) {
    ok(false, 'jose: the delegated token verifies', describe(err));
  }

  // ---- a refusal reaches the client library as the RFC error ----
  try {
    await exchange(as, { client_id: SUB }, jwtSpiffe(SUB_ASSERTION), dpop, {
      subject_token: t2.access_token,
      subject_token_type: TT_AT,
      scope: 'read write',
    });
    ok(false, 'oauth4webapi sees invalid_scope for a widening request');
  } catch (err) {
    ok(err instanceof oauth.ResponseBodyError && err.status === 400 &&
        err.error === 'invalid_scope',
        'oauth4webapi sees invalid_scope for a widening request', describe(err));
  }
}

try {
  await main();
} catch (err) {
  ok(false, 'exchange-peers.mjs', err?.stack ?? String(err));
}
console.log(`# exchange-peers.mjs: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
