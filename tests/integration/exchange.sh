#!/bin/sh
# agentid-exchange end to end: the real server over real TLS on 127.0.0.1 with
# the SQLite store; requests with curl.  Flows: orchestrator (mTLS) -> token;
# on behalf of an IdP user; delegation to sub and sub2 with narrowing; each
# narrowing violation; DPoP binding; mTLS binding; revocation cascading to
# descendants (introspect + status list); admin API; restart keeps ledger and
# revocations; bad input gets the right 4xx and the server keeps serving;
# signing with the RFC 9864 algorithm Ed25519, and Ed25519 DPoP proofs.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/exchange_lib.sh"

xc_require
XC_DIR=$TMP/x
XC_PORT=$(free_port)
mkdir -p "$XC_DIR"
xc_setup "$XC_DIR" || skip "cannot create test credentials"
xc_config "$XC_DIR" "$XC_PORT"
B=https://127.0.0.1:$XC_PORT

if "$AGENTID_EXCHANGE" --check-config "$XC_DIR/exchange.yaml" >"$OUT" 2>"$ERR"; then
	pass "--check-config accepts the test configuration"
else
	fail "--check-config: $(cat "$ERR")"
fi
printf 'listen:\n  - address: 127.0.0.1\n    port: 1\n    bogus: 1\n' >"$TMP/bad.yaml"
if ! "$AGENTID_EXCHANGE" --check-config "$TMP/bad.yaml" >"$OUT" 2>"$ERR" &&
    grep -q 'bad.yaml:4: unknown key' "$ERR"; then
	pass "--check-config names the line of an unknown key"
else
	fail "--check-config error: $(cat "$ERR")"
fi

xc_start "$XC_DIR" node1 || { fail "server start"; finish; }

# ---- discovery ----
xc_get meta /.well-known/oauth-authorization-server
[ "$XC_CODE" = 200 ] && [ "$(jget meta .issuer)" = "$B" ] &&
    [ "$(jget meta .token_endpoint)" = "$B/token" ] && pass "RFC 8414 metadata" ||
    fail "metadata: $XC_CODE"
xc_get jwks /jwks
[ "$XC_CODE" = 200 ] && [ "$(jget jwks '.keys | length')" = 2 ] &&
    pass "/jwks publishes current and next key" || fail "jwks: $XC_CODE"
xc_get health /healthz
[ "$XC_CODE" = 200 ] && pass "/healthz" || fail "/healthz $XC_CODE"

# ---- 1. orchestrator (mTLS X.509-SVID) -> its own token ----
ORCH=$(xc_jwt orchestrator)
xc_post t1 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT --data-urlencode "scope=read write" -d task_id=T-42 \
    --data-urlencode "task_description=triage the incident"
expect_ok t1 "orchestrator exchanges its JWT-SVID over mTLS"
T1=$(jget t1 .access_token)
C1=$(claims "$T1")
[ "$(printf '%s' "$C1" | jq -r .sub)" = spiffe://example.org/orchestrator ] &&
    [ "$(printf '%s' "$C1" | jq -r .act.sub)" = spiffe://example.org/orchestrator ] &&
    [ "$(printf '%s' "$C1" | jq -r .task)" = T-42 ] &&
    [ "$(printf '%s' "$C1" | jq -r .task_description)" = "triage the incident" ] &&
    [ "$(printf '%s' "$C1" | jq -r .status.status_list.uri)" = "$B/statuslists/0" ] &&
    [ "$(printf '%s' "$C1" | jq -r .scope)" = "read write" ] &&
    [ "$(jget t1 .issued_token_type)" = $TT_AT ] && [ "$(jget t1 .token_type)" = Bearer ] &&
    pass "token claims: sub, act, task, task_description, status, scope" ||
    fail "token claims: $C1"
# dpop_bound TAG KEY: answer TAG granted a DPoP token bound to KEY (token_type DPoP, cnf.jkt
# the key's thumbprint)
dpop_bound() {
	[ "$XC_CODE" = 200 ] && [ "$(jget "$1" .token_type)" = DPoP ] &&
	    [ "$(claims "$(jget "$1" .access_token)" | jq -r .cnf.jkt)" = \
	    "$(node "$top_srcdir/tests/integration/dpop_proof.js" "$2" --jkt)" ]
}
# verify_issued JWKS TOKEN: agentid verify of an access token of this server against JWKS
verify_issued() {
	"$AGENTID" verify --bundle "$1" --profile access --issuer "$B" \
	    --audience https://api.example "$2" >"$OUT" 2>"$ERR"
}
curl -s --cacert "$XC_DIR/server.pem" "$B/jwks" >"$TMP/jwks.json"
if verify_issued "$TMP/jwks.json" "$T1"; then
	pass "issued token verifies with agentid verify against /jwks"
else
	fail "agentid verify: $(cat "$ERR")"
fi

# JWT-SVID client assertion instead of mTLS
xc_post t1b /token none -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT -d scope=read \
    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-spiffe \
    --data-urlencode "client_assertion=$ORCH"
expect_ok t1b "JWT-SVID client assertion authenticates the client"
# The server keeps verified assertions (per worker, by the hash of the exact
# bytes): the same one again is accepted, one with a changed signature is not.
xc_post t1c /token none -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT -d scope=read \
    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-spiffe \
    --data-urlencode "client_assertion=$ORCH"
expect_ok t1c "the same client assertion is accepted again"
BADSIG=$(printf '%s' "$ORCH" | awk '{ n = length($0) - 20; c = substr($0, n, 1);
	print substr($0, 1, n - 1) (c == "A" ? "B" : "A") substr($0, n + 1) }')
xc_post t1d /token none -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT -d scope=read \
    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-spiffe \
    --data-urlencode "client_assertion=$BADSIG"
expect_oauth t1d 401 invalid_client "a client assertion with a changed signature"

# ---- 2. on behalf of a user from a trusted external IdP ----
USER=$("$AGENTID" dev sign --key "$XC_DIR/idp.key" --typ JWT --claim iss=https://idp.example \
    --claim sub=alice --claim aud=agentid-exchange --claim "scope=read write email")
SUBJ=$(xc_jwt sub)
xc_post u1 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$USER" \
    -d subject_token_type=$TT_JWT -d scope=read
expect_ok u1 "orchestrator acts on behalf of an IdP user"
CU=$(claims "$(jget u1 .access_token)")
[ "$(printf '%s' "$CU" | jq -r .sub)" = alice ] &&
    [ "$(printf '%s' "$CU" | jq -r .act.sub)" = spiffe://example.org/orchestrator ] &&
    pass "user token: sub is the user, act the orchestrator" || fail "user claims: $CU"
U1=$(jget u1 .access_token)
xc_post u2 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$U1" \
    -d subject_token_type=$TT_AT --data-urlencode "actor_token=$SUBJ" -d actor_token_type=$TT_JWT
expect_ok u2 "delegation on behalf of the user to sub"
[ "$(claims "$(jget u2 .access_token)" | jq -r .act.act.sub)" = spiffe://example.org/orchestrator ] &&
    pass "user delegation nests the orchestrator" || fail "user delegation act"
BADUSER=$("$AGENTID" dev sign --key "$XC_DIR/idp.key" --typ JWT --claim iss=https://idp.example \
    --claim sub=alice --claim aud=someone-else)
xc_post u3 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$BADUSER" \
    -d subject_token_type=$TT_JWT
expect_oauth u3 400 invalid_grant "user token for another audience"

# ---- 3. delegation orchestrator -> sub -> sub2 with narrowing ----
xc_post t2 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$T1" \
    -d subject_token_type=$TT_AT --data-urlencode "actor_token=$SUBJ" -d actor_token_type=$TT_JWT \
    -d scope=read -d audience=https://api.example -d task_id=T-42/logs
expect_ok t2 "orchestrator delegates to sub with narrower scope"
T2=$(jget t2 .access_token)
C2=$(claims "$T2")
J1=$(printf '%s' "$C1" | jq -r .jti)
[ "$(printf '%s' "$C2" | jq -r .act.sub)" = spiffe://example.org/sub ] &&
    [ "$(printf '%s' "$C2" | jq -r .act.act.sub)" = spiffe://example.org/orchestrator ] &&
    [ "$(printf '%s' "$C2" | jq -r .parent_jti)" = "$J1" ] &&
    [ "$(printf '%s' "$C2" | jq -r .scope)" = read ] &&
    [ "$(printf '%s' "$C2" | jq -r .aud)" = https://api.example ] &&
    [ "$(printf '%s' "$C2" | jq -r .task)" = T-42/logs ] &&
    [ "$(printf '%s' "$C2" | jq -r .exp)" -le "$(printf '%s' "$C1" | jq -r .exp)" ] &&
    pass "child: act nests parent, parent_jti, narrowed scope/aud/task, exp <= parent" ||
    fail "child claims: $C2"
SUB2=$(xc_jwt sub2)
xc_post t3 /token sub -d grant_type=$TE --data-urlencode "subject_token=$T2" \
    -d subject_token_type=$TT_AT --data-urlencode "actor_token=$SUB2" -d actor_token_type=$TT_JWT
expect_ok t3 "sub delegates to sub2 (depth 3)"
T3=$(jget t3 .access_token)
C3=$(claims "$T3")
[ "$(printf '%s' "$C3" | jq -c '[.act.sub, .act.act.sub, .act.act.act.sub]')" = \
    '["spiffe://example.org/sub2","spiffe://example.org/sub","spiffe://example.org/orchestrator"]' ] &&
    [ "$(printf '%s' "$C3" | jq -r .task)" = T-42/logs ] &&
    pass "grandchild chain is sub2 <- sub <- orchestrator, task inherited" || fail "grandchild: $C3"

# ---- 4. narrowing violations ----
xc_post v1 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$T2" \
    -d subject_token_type=$TT_AT -d scope=read
expect_oauth v1 400 unauthorized_client "a client that is not the holder cannot use a token"
xc_post v2 /token sub -d grant_type=$TE --data-urlencode "subject_token=$T2" \
    -d subject_token_type=$TT_AT --data-urlencode "scope=read write"
expect_oauth v2 400 invalid_scope "widening scope beyond the parent"
xc_post v3 /token sub -d grant_type=$TE --data-urlencode "subject_token=$T2" \
    -d subject_token_type=$TT_AT -d audience=https://db.example
expect_oauth v3 400 invalid_target "audience outside the parent and policy"
xc_post v4 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$T1" \
    -d subject_token_type=$TT_AT -d scope=admin
expect_oauth v4 400 invalid_scope "scope outside policy"
ORCHJ=$(xc_jwt orchestrator)
xc_post v5 /token sub2 -d grant_type=$TE --data-urlencode "subject_token=$T3" \
    -d subject_token_type=$TT_AT --data-urlencode "actor_token=$ORCHJ" -d actor_token_type=$TT_JWT
expect_oauth v5 400 invalid_grant "an agent twice in the chain"
STR=$(xc_jwt stranger)
xc_post v6 /token sub2 -d grant_type=$TE --data-urlencode "subject_token=$T3" \
    -d subject_token_type=$TT_AT --data-urlencode "actor_token=$STR" -d actor_token_type=$TT_JWT
expect_oauth v6 400 unauthorized_client "delegation not allowed by policy"
SUBJ=$(xc_jwt sub)
xc_post v7 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$T1" \
    -d subject_token_type=$TT_AT --data-urlencode "actor_token=$SUBJ" -d actor_token_type=$TT_JWT \
    -d task_id=OTHER
expect_oauth v7 400 invalid_request "a child cannot switch to another task"
EXPIRED=$(xc_jwt orchestrator --ttl 1)
sleep 2
xc_post v8 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$EXPIRED" \
    -d subject_token_type=$TT_JWT
expect_oauth v8 400 invalid_grant "expired subject token"
xc_post v9 /token orchestrator -d grant_type=$TE -d subject_token=garbage.garbage.garbage \
    -d subject_token_type=$TT_AT
expect_oauth v9 400 invalid_grant "garbage subject token"
FORGED=$("$AGENTID" dev sign --key "$XC_DIR/idp.key" --typ at+jwt --claim iss="$B" \
    --claim sub=spiffe://example.org/orchestrator --claim client_id=x --claim aud=y)
xc_post v10 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$FORGED" \
    -d subject_token_type=$TT_AT
expect_oauth v10 400 invalid_grant "access token signed by another key"

# ---- 5. client authentication ----
xc_post c1 /token none -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT
expect_oauth c1 401 invalid_client "no client authentication"
xc_post c2 /token evil -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT
expect_oauth c2 401 invalid_client "client certificate from an untrusted trust domain"
xc_post c3 /token sub -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT
expect_oauth c3 400 unauthorized_client "client asks for a token of another agent"

# ---- 6. proof of possession ----
xc_post b1 /token stranger -d grant_type=$TE --data-urlencode "subject_token=$STR" \
    -d subject_token_type=$TT_JWT
if [ "$XC_CODE" = 200 ] && [ "$(claims "$(jget b1 .access_token)" | jq -r '.cnf["x5t#S256"]')" = \
    "$(openssl x509 -in "$XC_DIR/stranger.pem" -outform DER | openssl dgst -sha256 -binary |
	base64 | tr '+/' '-_' | tr -d '=')" ]; then
	pass "policy require_binding: mTLS client gets cnf x5t#S256 of its certificate"
else
	fail "mTLS binding: $XC_CODE $(head -c 300 "$TMP/b1.json")"
fi
if command -v node >/dev/null 2>&1; then
	dpop() {
		node "$top_srcdir/tests/integration/dpop_proof.js" "$XC_DIR/dpop.key" POST "$B/token" "${1:-}"
	}
	P=$(dpop)
	xc_post d1 /token orchestrator -H "DPoP: $P" -d grant_type=$TE \
	    --data-urlencode "subject_token=$ORCH" -d subject_token_type=$TT_JWT
	if dpop_bound d1 "$XC_DIR/dpop.key"; then
		pass "DPoP proof binds the token (cnf.jkt, token_type DPoP)"
	else
		fail "DPoP: $XC_CODE $(head -c 300 "$TMP/d1.json")"
	fi
	xc_post d2 /token orchestrator -H "DPoP: $P" -d grant_type=$TE \
	    --data-urlencode "subject_token=$ORCH" -d subject_token_type=$TT_JWT
	expect_oauth d2 400 invalid_dpop_proof "replayed DPoP proof"
	D1=$(jget d1 .access_token)
	xc_post d3 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$D1" \
	    -d subject_token_type=$TT_AT
	expect_oauth d3 400 invalid_grant "DPoP-bound subject token without proof"
	xc_post d4 /token orchestrator -H "DPoP: $(dpop)" -d grant_type=$TE \
	    --data-urlencode "subject_token=$D1" -d subject_token_type=$TT_AT -d scope=read
	expect_ok d4 "DPoP-bound subject token with a proof of its key"
	WRONG=$(node "$top_srcdir/tests/integration/dpop_proof.js" "$XC_DIR/dpop.key" GET "$B/token")
	xc_post d5 /token orchestrator -H "DPoP: $WRONG" -d grant_type=$TE \
	    --data-urlencode "subject_token=$ORCH" -d subject_token_type=$TT_JWT
	expect_oauth d5 400 invalid_dpop_proof "DPoP proof for another method"
else
	echo "# node not installed: DPoP checks skipped"
fi

# ---- 6b. the CLI client: agentid exchange / agentid revoke ----
ORCH=$(xc_jwt orchestrator)
if "$AGENTID" exchange --server "$B" --cacert "$XC_DIR/server.pem" --cert "$XC_DIR/orchestrator.pem" \
    --key "$XC_DIR/orchestrator.key" --subject-token "$ORCH" --scope read --task CLI-1 \
    --dpop-key "$XC_DIR/dpop.key" >"$OUT" 2>"$ERR" && [ "$(jq -r .token_type "$OUT")" = DPoP ]; then
	pass "agentid exchange (mTLS + DPoP) prints the response"
else
	fail "agentid exchange: $(cat "$ERR" "$OUT")"
fi
CT=$(jq -r .access_token "$OUT")
SUBJ=$(xc_jwt sub)
"$AGENTID" exchange --server "$B/token" --cacert "$XC_DIR/server.pem" --client-assertion "$ORCH" \
    --subject-token "$CT" --actor-token "$SUBJ" --scope write --dpop-key "$XC_DIR/dpop.key" \
    >"$OUT" 2>"$ERR"
rc=$?
[ $rc = 1 ] && grep -q 'invalid_scope' "$ERR" && pass "agentid exchange: refusal exits 1 with the RFC error" ||
    fail "agentid exchange refusal: rc=$rc $(cat "$ERR")"
"$AGENTID" exchange --server "$B" >"$OUT" 2>"$ERR"
[ $? = 2 ] && pass "agentid exchange: usage error exits 2" || fail "usage exit"
"$AGENTID" revoke --server "$B" --cacert "$XC_DIR/server.pem" --cert "$XC_DIR/admin.pem" \
    --key "$XC_DIR/admin.key" --task CLI-1 >"$OUT" 2>"$ERR"
[ $? = 0 ] && [ "$(jq -r .revoked "$OUT")" = 1 ] && pass "agentid revoke --task" ||
    fail "agentid revoke: $(cat "$ERR" "$OUT")"

# ---- 7. introspection, revocation cascade, status list ----
xc_post i1 /introspect orchestrator --data-urlencode "token=$T3"
[ "$XC_CODE" = 200 ] && [ "$(jget i1 .active)" = true ] &&
    [ "$(jget i1 .act.act.sub)" = spiffe://example.org/sub ] &&
    pass "introspection: active with act" || fail "introspect: $(cat "$TMP/i1.json")"
xc_post i2 /introspect none --data-urlencode "token=$T3"
expect_oauth i2 401 invalid_client "introspection needs client authentication"
xc_post r1 /revoke orchestrator --data-urlencode "token=$T1"
[ "$XC_CODE" = 200 ] && pass "RFC 7009 revoke" || fail "revoke: $XC_CODE"
for n in 1 2 3; do
	eval "tok=\$T$n"
	xc_post ri$n /introspect orchestrator --data-urlencode "token=$tok"
	[ "$(jget ri$n .active)" = false ] && pass "revocation cascades: T$n inactive" ||
	    fail "T$n still active after revoking T1"
done
xc_post r2 /token sub2 -d grant_type=$TE --data-urlencode "subject_token=$T3" \
    -d subject_token_type=$TT_AT
expect_oauth r2 400 invalid_grant "a revoked token cannot be exchanged"
curl -s --cacert "$XC_DIR/server.pem" -o "$TMP/sl.jwt" "$B/statuslists/0"
if command -v node >/dev/null 2>&1; then
	bits=$(node -e '
const z=require("zlib"),fs=require("fs");
const p=JSON.parse(Buffer.from(fs.readFileSync(process.argv[1],"utf8").split(".")[1],"base64url"));
const b=z.inflateSync(Buffer.from(p.status_list.lst,"base64url"));
const out=[];for(const i of process.argv.slice(2).map(Number))out.push((b[i>>3]>>(i&7))&1);
console.log(out.join(""));' "$TMP/sl.jwt" \
	    "$(printf '%s' "$C1" | jq .status.status_list.idx)" \
	    "$(printf '%s' "$C2" | jq .status.status_list.idx)" \
	    "$(printf '%s' "$C3" | jq .status.status_list.idx)" \
	    "$(printf '%s' "$CU" | jq .status.status_list.idx)")
	[ "$bits" = 1110 ] && pass "status list: revoked subtree set, unrelated token clear" ||
	    fail "status list bits $bits (want 1110)"
fi
hdr=$(cut -d. -f1 "$TMP/sl.jwt" | tr '_-' '/+' | base64 -d 2>/dev/null)
case $hdr in *statuslist+jwt*) pass "status list is a statuslist+jwt" ;; *) fail "status list header $hdr" ;; esac

# admin API: revoke everything of task-less user tokens by subject
xc_post a1 /admin/revoke orchestrator -d subject=alice
[ "$XC_CODE" = 403 ] && pass "admin API refuses a non-admin" || fail "admin non-admin: $XC_CODE"
xc_post a2 /admin/revoke admin -d subject=alice
[ "$XC_CODE" = 200 ] && [ "$(jget a2 .revoked)" -ge 2 ] &&
    pass "admin revoke by subject (cascade): $(jget a2 .revoked) tokens" ||
    fail "admin revoke: $XC_CODE $(cat "$TMP/a2.json")"
ORCH=$(xc_jwt orchestrator)
xc_post t5 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT -d task_id=T-99
T5=$(jget t5 .access_token)
xc_post a3 /admin/revoke admin -d task=T-99
xc_post a4 /introspect orchestrator --data-urlencode "token=$T5"
[ "$(jget a3 .revoked)" = 1 ] && [ "$(jget a4 .active)" = false ] &&
    pass "admin revoke by task" || fail "revoke by task"
xc_post a5 /admin/revoke admin -d task=x -d jti=y
expect_oauth a5 400 invalid_request "admin API wants exactly one selector"

# ---- 8. bad input ----
xc_post e1 /token orchestrator -H 'Content-Type: application/json' -d '{}'
expect_oauth e1 400 invalid_request "wrong content type"
xc_post e2 /token orchestrator -d grant_type=$TE -d grant_type=$TE
expect_oauth e2 400 invalid_request "duplicate parameter"
xc_post e3 /token orchestrator -d 'grant_type=%zz'
expect_oauth e3 400 invalid_request "bad percent-encoding"
xc_post e4 /token orchestrator -d grant_type=password
expect_oauth e4 400 unsupported_grant_type "unknown grant type"
xc_post e5 /token orchestrator -d 'a=1&&b=2'
expect_oauth e5 400 invalid_request "empty pair"
head -c 40000 /dev/zero | tr '\0' a >"$TMP/big"
xc_post e6 /token orchestrator --data-binary "@$TMP/big"
[ "$XC_CODE" = 413 ] && pass "oversized body -> 413" || fail "oversized body: $XC_CODE"
xc_post e7 /token orchestrator -d grant_type=$TE -d subject_token_type=$TT_JWT
expect_oauth e7 400 invalid_request "missing subject_token"
xc_post e8 /token orchestrator -d grant_type=$TE -d subject_token=x -d subject_token_type=urn:x
expect_oauth e8 400 invalid_request "unknown subject_token_type"
XC_CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$XC_DIR/server.pem" "$B/token")
[ "$XC_CODE" = 405 ] && pass "GET /token -> 405" || fail "GET /token: $XC_CODE"
printf 'GARBAGE\r\n\r\n' | openssl s_client -quiet -connect 127.0.0.1:$XC_PORT >/dev/null 2>&1
xc_get h2 /healthz
[ "$XC_CODE" = 200 ] && pass "server keeps serving after garbage" || fail "server died"

# ---- 9. metrics and audit ----
xc_get m /metrics
grep -q 'agentid_exchange_tokens_issued_total [1-9]' "$TMP/m.json" &&
    grep -q 'agentid_exchange_token_seconds_bucket' "$TMP/m.json" &&
    pass "Prometheus /metrics" || fail "metrics"
grep -q '"exchange.granted"' "$XC_DIR/audit.log" && grep -q '"exchange.denied"' "$XC_DIR/audit.log" &&
    grep -q '"token.revoked"' "$XC_DIR/audit.log" &&
    pass "audit log has granted, denied and revoked records" || fail "audit records"

# ---- 10. SIGHUP and restart keep ledger and revocations ----
kill -HUP "$(cat "$TMP/node1.pid")"
sleep 0.3
xc_get h3 /healthz
[ "$XC_CODE" = 200 ] && grep -q 'configuration reloaded' "$TMP/node1.log" &&
    pass "SIGHUP reloads" || fail "SIGHUP"
ORCH=$(xc_jwt orchestrator)
xc_post t6 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT
T6=$(jget t6 .access_token)
xc_stop node1
xc_start "$XC_DIR" node1b || fail "restart"
xc_post k1 /introspect orchestrator --data-urlencode "token=$T6"
xc_post k2 /introspect orchestrator --data-urlencode "token=$T2"
[ "$(jget k1 .active)" = true ] && [ "$(jget k2 .active)" = false ] &&
    pass "restart keeps the ledger and the revocations" || fail "after restart: $(cat "$TMP/k1.json") $(cat "$TMP/k2.json")"
xc_post k3 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$T6" \
    -d subject_token_type=$TT_AT -d scope=read
expect_ok k3 "a token issued before the restart can be exchanged"
xc_stop node1b
grep -qi 'error' "$TMP/node1.log" "$TMP/node1b.log" && echo "# server log has errors:" && grep -i error "$TMP"/node1*.log | head -5

# ---- 11. signing alg Ed25519 (RFC 9864) and Ed25519 DPoP proofs ----
# The header of a JWS, decoded (no verification).
header() {
	printf '%s' "$1" | cut -d. -f1 | tr '_-' '/+' | awk '{ n = length($0) % 4; if (n == 2) $0 = $0 "=="; else if (n == 3) $0 = $0 "="; print }' | base64 -d 2>/dev/null
}
sed -e 's|^signing:$|signing:\n  alg: Ed25519|' -e 's|keys/current.pem|keys/ed-current.pem|' \
    -e 's|keys/next.pem|keys/ed-next.pem|' "$XC_DIR/exchange.yaml" >"$XC_DIR/exchange.yaml.new" &&
	mv "$XC_DIR/exchange.yaml.new" "$XC_DIR/exchange.yaml"
grep -q '^  alg: Ed25519$' "$XC_DIR/exchange.yaml" || fail "config edit for signing alg Ed25519"
xc_start "$XC_DIR" node2 || { fail "start with signing alg Ed25519"; finish; }
xc_get ejwks /jwks
[ "$XC_CODE" = 200 ] && [ "$(jget ejwks '[.keys[] | .alg] | unique | join(",")')" = Ed25519 ] &&
    [ "$(jget ejwks '[.keys[] | .crv] | unique | join(",")')" = Ed25519 ] &&
    [ "$(jget ejwks '.keys | length')" = 2 ] &&
    pass "signing alg Ed25519: /jwks publishes Ed25519 keys marked alg Ed25519" ||
    fail "Ed25519 jwks: $XC_CODE $(head -c 300 "$TMP/ejwks.json")"
xc_get emeta /.well-known/oauth-authorization-server
[ "$(jget emeta '.dpop_signing_alg_values_supported | index("Ed25519") != null')" = true ] &&
    [ "$(jget emeta '.dpop_signing_alg_values_supported | index("EdDSA") != null')" = true ] &&
    pass "metadata lists EdDSA and Ed25519 for DPoP" || fail "metadata dpop algs: $(head -c 400 "$TMP/emeta.json")"
ORCH=$(xc_jwt orchestrator)
xc_post e1 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT -d scope=read
expect_ok e1 "signing alg Ed25519: orchestrator gets a token"
E1=$(jget e1 .access_token)
[ "$(header "$E1" | jq -r .alg)" = Ed25519 ] && pass "the token's header says alg Ed25519" ||
    fail "Ed25519 token header: $(header "$E1")"
# (the /jwks this node served above, in ejwks.json)
if verify_issued "$TMP/ejwks.json" "$E1"; then
	pass "the Ed25519 token verifies with agentid verify against /jwks"
else
	fail "agentid verify Ed25519: $(cat "$ERR")"
fi
# The same key marked "alg":"EdDSA" is no key for an Ed25519-headed token.
jq '.keys |= map(.alg = "EdDSA")' "$TMP/ejwks.json" >"$TMP/ejwks-eddsa.json"
verify_issued "$TMP/ejwks-eddsa.json" "$E1"
[ $? = 1 ] && grep -q '^invalid: key_mismatch: ' "$ERR" &&
    pass "the Ed25519 token against its key marked alg EdDSA: key_mismatch" ||
    fail "Ed25519 token vs EdDSA-marked key: $(cat "$ERR")"
if command -v node >/dev/null 2>&1; then
	openssl genpkey -algorithm ed25519 -out "$XC_DIR/dpop-ed.key" 2>/dev/null
	EDP=$(node "$top_srcdir/tests/integration/dpop_proof.js" "$XC_DIR/dpop-ed.key" POST "$B/token")
	[ "$(header "$EDP" | jq -r .alg)" = Ed25519 ] || fail "dpop_proof.js made no Ed25519 proof"
	xc_post e2 /token orchestrator -H "DPoP: $EDP" -d grant_type=$TE \
	    --data-urlencode "subject_token=$ORCH" -d subject_token_type=$TT_JWT -d scope=read
	if dpop_bound e2 "$XC_DIR/dpop-ed.key"; then
		pass "DPoP proof with alg Ed25519 binds the token"
	else
		fail "Ed25519 DPoP: $XC_CODE $(head -c 300 "$TMP/e2.json")"
	fi
	E2=$(jget e2 .access_token)
	xc_post e3 /token orchestrator -H "DPoP: $(DPOP_ALG=EdDSA node \
	    "$top_srcdir/tests/integration/dpop_proof.js" "$XC_DIR/dpop-ed.key" POST "$B/token")" \
	    -d grant_type=$TE --data-urlencode "subject_token=$E2" -d subject_token_type=$TT_AT \
	    -d scope=read
	expect_ok e3 "the Ed25519-signed DPoP-bound token is exchanged with an EdDSA proof of its key"
fi
xc_stop node2

finish
