#!/bin/sh
# agentid-exchange against independent peers, over real TLS on 127.0.0.1
# with the SQLite store:
#   - liboauth2 (OpenIDC; tests/interop/liboauth2_verify.c, built here into
#     $TMP) verifies issued tokens with oauth2_token_verify against the
#     server's jwks_uri, bearer and DPoP-bound (with a proof for a resource
#     request), and rejects tampered or foreign ones;
#   - npm oauth4webapi performs the RFC 8693 exchange (genericTokenEndpointRequest,
#     DPoP, JWT-SVID client assertion) and npm jose verifies what it got,
#     act chain included (tests/interop/exchange-peers.mjs).
# Skipped (77) without node and tests/interop/node_modules (jose, oauth4webapi:
# `cd tests/interop && npm ci`) or without liboauth2 (Debian: liboauth2-dev).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/exchange_lib.sh"

INTEROP=$top_srcdir/tests/interop
NODE=${NODE:-node}
CC=${CC:-cc}

xc_require
command -v "$NODE" >/dev/null 2>&1 || skip "node not found (install nodejs for the peer tests)"
major=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 20 ] || skip "node $major is too old for oauth4webapi 3 (need >= 20)"
for m in jose oauth4webapi; do
	[ -f "$INTEROP/node_modules/$m/package.json" ] ||
	    skip "npm package $m not installed: run 'cd $INTEROP && npm ci'"
done
pkg-config --exists liboauth2 2>/dev/null ||
    skip "liboauth2 not found by pkg-config (Debian/Ubuntu: apt-get install liboauth2-dev)"
command -v "$CC" >/dev/null 2>&1 || skip "no C compiler ($CC) to build the liboauth2 verifier"
# shellcheck disable=SC2046
if ! "$CC" -o "$TMP/liboauth2_verify" "$INTEROP/liboauth2_verify.c" \
    $(pkg-config --cflags --libs liboauth2) >"$TMP/cc.log" 2>&1; then
	cat "$TMP/cc.log"
	skip "cannot build tests/interop/liboauth2_verify.c against liboauth2"
fi
LV=$TMP/liboauth2_verify

XC_DIR=$TMP/x
XC_PORT=$(free_port)
mkdir -p "$XC_DIR"
xc_setup "$XC_DIR" || skip "cannot create test credentials"
xc_config "$XC_DIR" "$XC_PORT"
B=https://127.0.0.1:$XC_PORT
xc_start "$XC_DIR" node1 || { fail "server start"; finish; }

xc_get meta /.well-known/oauth-authorization-server
JWKS_URI=$(jget meta .jwks_uri)
[ "$XC_CODE" = 200 ] && [ "$JWKS_URI" = "$B/jwks" ] && pass "metadata names jwks_uri $JWKS_URI" ||
    fail "metadata: $XC_CODE jwks_uri=$JWKS_URI"

# ---- liboauth2: bearer tokens obtained with curl ----
# liboauth2 has no CA-file option for jwks_uri (its libcurl uses the system
# bundle), so the fetch runs with jwks_uri.ssl_verify=false (-k); what is
# under test is the token, the JWK Set and the signature, not the transport,
# which curl checks against the test CA throughout.
ORCH=$(xc_jwt orchestrator)
SUBJ=$(xc_jwt sub)
xc_post t1 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT --data-urlencode "scope=read write" \
    -d audience=https://api.example -d task_id=LIBOAUTH2
expect_ok t1 "orchestrator gets a bearer token (curl, mTLS)"
T1=$(jget t1 .access_token)
xc_post t2 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$T1" \
    -d subject_token_type=$TT_AT --data-urlencode "actor_token=$SUBJ" -d actor_token_type=$TT_JWT \
    -d scope=read
expect_ok t2 "orchestrator delegates it to sub (curl)"
T2=$(jget t2 .access_token)

# lv NAME TOKEN [-d PROOF -m METHOD -u URL]: liboauth2_verify; claims in $TMP/NAME.claims
lv() {
	name=$1
	tok=$2
	shift 2
	lv_rc=0
	"$LV" -k "$@" "$JWKS_URI" "$tok" >"$TMP/$name.claims" 2>"$TMP/$name.err" || lv_rc=$?
}
lv_claim() {
	jq -c "$2" "$TMP/$1.claims" 2>/dev/null
}

lv t1 "$T1"
if [ $lv_rc = 0 ] && [ "$(lv_claim t1 .iss)" = "\"$B\"" ] &&
    [ "$(lv_claim t1 .aud)" = '"https://api.example"' ] &&
    [ "$(lv_claim t1 .sub)" = '"spiffe://example.org/orchestrator"' ] &&
    [ "$(lv_claim t1 .scope)" = '"read write"' ] && [ "$(lv_claim t1 .task)" = '"LIBOAUTH2"' ]; then
	pass "liboauth2 oauth2_token_verify (jwks_uri) accepts the token: iss, aud, sub, scope, task"
else
	fail "liboauth2 on the bearer token: rc=$lv_rc $(cat "$TMP/t1.err" "$TMP/t1.claims" | head -c 600)"
fi
lv t2 "$T2"
if [ $lv_rc = 0 ] && [ "$(lv_claim t2 '[.act.sub, .act.act.sub]')" = \
    '["spiffe://example.org/sub","spiffe://example.org/orchestrator"]' ] &&
    [ "$(lv_claim t2 .parent_jti)" = "$(lv_claim t1 .jti)" ]; then
	pass "liboauth2 accepts the delegated token; act chain sub <- orchestrator, parent_jti"
else
	fail "liboauth2 on the delegated token: rc=$lv_rc $(cat "$TMP/t2.err" "$TMP/t2.claims" | head -c 600)"
fi
# The header of T1 with the payload of T2: the signature no longer matches.
SPLICED=$(printf '%s' "$T1" | cut -d. -f1).$(printf '%s' "$T2" | cut -d. -f2).$(printf '%s' "$T1" | cut -d. -f3)
lv spliced "$SPLICED"
[ $lv_rc = 1 ] && pass "liboauth2 rejects a token whose payload was swapped" ||
    fail "liboauth2 on a spliced token: rc=$lv_rc $(head -c 300 "$TMP/spliced.claims")"
FORGED=$("$AGENTID" dev sign --key "$XC_DIR/idp.key" --typ at+jwt --claim iss="$B" \
    --claim sub=spiffe://example.org/orchestrator --claim client_id=x --claim aud=y 2>/dev/null)
lv forged "$FORGED"
[ -n "$FORGED" ] && [ $lv_rc = 1 ] && pass "liboauth2 rejects a token signed by a key outside jwks_uri" ||
    fail "liboauth2 on a foreign-key token: rc=$lv_rc $(head -c 300 "$TMP/forged.claims")"

# ---- oauth4webapi + jose (writes DPoP-bound tokens and proofs for liboauth2) ----
status=0
ISSUER=$B INTEROP_TMP=$TMP NODE_EXTRA_CA_CERTS=$XC_DIR/server.pem \
    ORCH_SUBJECT=$(xc_jwt orchestrator) ORCH_ASSERTION=$(xc_jwt orchestrator) \
    SUB_ACTOR=$(xc_jwt sub) SUB_ASSERTION=$(xc_jwt sub) SUB2_ACTOR=$(xc_jwt sub2) \
    "$NODE" "$INTEROP/exchange-peers.mjs" >"$TMP/peers.log" 2>&1 || status=$?
cat "$TMP/peers.log"
T_PASS=$((T_PASS + $(grep -c '^ok - ' "$TMP/peers.log")))
T_FAIL=$((T_FAIL + $(grep -c '^FAIL - ' "$TMP/peers.log")))
if [ "$status" -ne 0 ] && ! grep -q '^FAIL - ' "$TMP/peers.log"; then
	fail "exchange-peers.mjs exited with status $status"
fi

# ---- liboauth2 as a DPoP resource server on the tokens oauth4webapi obtained ----
RS=https://rs.example/resource
if [ -s "$TMP/dpop_token" ] && [ -s "$TMP/dpop_proof" ]; then
	DT=$(cat "$TMP/dpop_token")
	lv dpop "$DT" -d "$(cat "$TMP/dpop_proof")" -m GET -u "$RS"
	if [ $lv_rc = 0 ] && [ "$(lv_claim dpop '.cnf.jkt | type')" = '"string"' ]; then
		pass "liboauth2 (type=dpop) accepts the DPoP-bound token with the client's proof"
	else
		fail "liboauth2 DPoP: rc=$lv_rc $(cat "$TMP/dpop.err" | head -c 600)"
	fi
	OTHER=$("$NODE" "$top_srcdir/tests/integration/dpop_proof.js" "$XC_DIR/dpop.key" GET "$RS" "$DT")
	lv dpop_other "$DT" -d "$OTHER" -m GET -u "$RS"
	[ $lv_rc = 1 ] && grep -q 'thumbprint' "$TMP/dpop_other.err" &&
	    pass "liboauth2 rejects a DPoP proof of a key the token is not bound to (cnf.jkt)" ||
	    fail "liboauth2 DPoP with another key: rc=$lv_rc $(head -c 300 "$TMP/dpop_other.err")"
	lv dpop_url "$DT" -d "$(cat "$TMP/dpop_proof")" -m GET -u https://rs.example/other
	[ $lv_rc = 1 ] && grep -q 'htu' "$TMP/dpop_url.err" &&
	    pass "liboauth2 rejects the proof on another URL (htu)" ||
	    fail "liboauth2 DPoP htu: rc=$lv_rc $(head -c 300 "$TMP/dpop_url.err")"
else
	fail "no DPoP-bound token from exchange-peers.mjs for the liboauth2 check"
fi
if [ -s "$TMP/delegated_token" ] && [ -s "$TMP/delegated_proof" ]; then
	lv deleg "$(cat "$TMP/delegated_token")" -d "$(cat "$TMP/delegated_proof")" -m GET -u "$RS"
	if [ $lv_rc = 0 ] && [ "$(lv_claim deleg '[.act.sub, .act.act.sub, .act.act.act.sub]')" = \
	    '["spiffe://example.org/sub2","spiffe://example.org/sub","spiffe://example.org/orchestrator"]' ]; then
		pass "liboauth2 (type=dpop) accepts the delegated token; act chain sub2 <- sub <- orchestrator"
	else
		fail "liboauth2 on the delegated DPoP token: rc=$lv_rc $(cat "$TMP/deleg.err" | head -c 600)"
	fi
else
	fail "no delegated token from exchange-peers.mjs for the liboauth2 check"
fi

xc_get health /healthz
[ "$XC_CODE" = 200 ] && pass "server still serving after the peer checks" || fail "/healthz $XC_CODE"
xc_stop node1

# ---- the other signing algorithms: a server per algorithm, liboauth2 and jose ----
# liboauth2 verifies with cjose, which has no EdDSA; jose covers that one.
for alg in ES384 ES512 RS256 PS256 PS512 EdDSA; do
	XC_DIR=$TMP/alg-$alg
	XC_PORT=$(free_port)
	mkdir -p "$XC_DIR/keys"
	cp -R "$TMP/x/ca" "$XC_DIR/ca"
	cp "$TMP/x/server.pem" "$TMP/x/server.key" "$TMP/x/idp.jwks" "$TMP/x/orchestrator.pem" \
	    "$TMP/x/orchestrator.key" "$XC_DIR/"
	xc_config "$XC_DIR" "$XC_PORT"
	sed "s/^signing:\$/signing:\\
  alg: $alg/" "$XC_DIR/exchange.yaml" >"$XC_DIR/exchange.yaml.new" &&
	    mv "$XC_DIR/exchange.yaml.new" "$XC_DIR/exchange.yaml"
	B=https://127.0.0.1:$XC_PORT
	JWKS_URI=$B/jwks
	xc_start "$XC_DIR" "alg-$alg" || { fail "server start with signing alg $alg"; continue; }
	xc_post "a-$alg" /token orchestrator -d grant_type=$TE \
	    --data-urlencode "subject_token=$(xc_jwt orchestrator)" -d subject_token_type=$TT_JWT \
	    -d scope=read -d audience=https://api.example
	AT=$(jget "a-$alg" .access_token)
	if [ "$XC_CODE" != 200 ] || [ "$(printf '%s' "$AT" | cut -d. -f1 | tr '_-' '/+' |
	    awk '{ n = length($0) % 4; if (n == 2) $0 = $0 "=="; else if (n == 3) $0 = $0 "="; print }' |
	    base64 -d 2>/dev/null | jq -r .alg)" != "$alg" ]; then
		fail "$alg: no $alg-signed token: $XC_CODE $(head -c 300 "$TMP/a-$alg.json")"
		xc_stop "alg-$alg"
		continue
	fi
	if [ "$alg" != EdDSA ]; then
		lv "l-$alg" "$AT"
		[ $lv_rc = 0 ] && [ "$(lv_claim "l-$alg" .iss)" = "\"$B\"" ] &&
		    pass "liboauth2 verifies a $alg access token against jwks_uri" ||
		    fail "liboauth2 on $alg: rc=$lv_rc $(head -c 400 "$TMP/l-$alg.err")"
	fi
	if (cd "$INTEROP" && NODE_EXTRA_CA_CERTS=$XC_DIR/server.pem AT=$AT ISSUER=$B \
	    "$NODE" --input-type=module -e '
		import * as jose from "jose";
		const { protectedHeader } = await jose.jwtVerify(process.env.AT,
		    jose.createRemoteJWKSet(new URL(process.env.ISSUER + "/jwks")),
		    { issuer: process.env.ISSUER, audience: "https://api.example", typ: "at+jwt" });
		console.log(protectedHeader.alg);') >"$TMP/j-$alg.out" 2>&1 &&
	    [ "$(cat "$TMP/j-$alg.out")" = "$alg" ]; then
		pass "jose verifies a $alg access token against jwks_uri (typ, iss, aud)"
	else
		fail "jose on $alg: $(head -c 400 "$TMP/j-$alg.out")"
	fi
	xc_stop "alg-$alg"
done
finish
