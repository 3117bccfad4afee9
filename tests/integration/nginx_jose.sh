#!/bin/sh
# ngx_http_agentid_module against independent implementations: access tokens
# made by the npm package jose and DPoP proofs made by the npm package dpop
# (tests/nginx/jose_peer.mjs) are accepted or refused exactly as the rules
# say.  Skipped without node or without tests/interop/node_modules (npm ci in
# tests/interop); without tests/nginx/node_modules (npm ci in tests/nginx)
# the proofs come from jose instead of dpop.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${NGINX_MODULE:-$top_builddir/nginx-module/ngx_http_agentid_module.so}
INTEROP=$top_srcdir/tests/interop
[ -x "$NGINX" ] || skip "nginx not found at $NGINX"
[ -f "$MODULE" ] || skip "module not built at $MODULE (make nginx-module)"
command -v node >/dev/null 2>&1 || skip "node not found"
[ -f "$INTEROP/node_modules/jose/package.json" ] || skip "jose not installed (npm ci in $INTEROP)"
command -v curl >/dev/null 2>&1 || skip "curl not found"

NGX_ENV=
if ldd "$top_builddir/.libs/libagentid.so" 2>/dev/null | grep -q libasan; then
	NGX_ENV="LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0"
fi

ISS=https://jose-issuer.example
AUD=https://api.example.org
NGX=$TMP/ngx
mkdir -p "$NGX/logs" "$NGX/tmp" "$TMP/www/j"
echo "hello jose" >"$TMP/www/j/index.html"
PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000))
URL="http://127.0.0.1:$PORT/j/"

INTEROP=$INTEROP PEERS=$top_srcdir/tests/nginx node "$top_srcdir/tests/nginx/jose_peer.mjs" "$TMP" "$ISS" "$AUD" "$URL" \
    >"$TMP/tokens" 2>"$TMP/node.err" || { fail "jose_peer.mjs: $(cat "$TMP/node.err")"; finish; }
tok() {
	awk -v n="$1" '$1 == n { print $2 }' "$TMP/tokens"
}

{
	ngx_conf_head "$NGX" 2 64
	cat <<EOF
    access_log off;
    server {
        listen 127.0.0.1:$PORT;
        root $TMP/www;
        location /j/ {
            agentid on;
            agentid_profile access;
            agentid_bundle $TMP/jwks.json;
            agentid_issuer $ISS;
            agentid_audience $AUD;
            agentid_require_scope read;
            agentid_dpop optional;
            add_header X-Agent \$agentid_agent always;
        }
    }
}
EOF
} >"$NGX/nginx.conf"
env $NGX_ENV "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" >"$TMP/start" 2>&1 ||
	{ fail "nginx did not start: $(cat "$TMP/start")"; finish; }
on_exit '[ -s "$NGX/nginx.pid" ] && kill "$(cat "$NGX/nginx.pid")" 2>/dev/null; sleep 0.3'
sleep 0.3

# expect CODE REASON NAME DESC [curl args]: REASON "-" for none (an extended regex otherwise).
expect() {
	e_code=$1
	e_reason=$2
	e_desc=$4
	shift 4
	CODE=$(curl -s -o /dev/null -D "$TMP/h" -w '%{http_code}' "$@" "$URL")
	if [ "$CODE" != "$e_code" ]; then
		fail "$e_desc: got $CODE, wanted $e_code ($(grep -i www-auth "$TMP/h" | tr -d '\r'))"
		return
	fi
	if [ "$e_reason" != - ] && ! grep -Eqi "error_description=\"$e_reason\"" "$TMP/h"; then
		fail "$e_desc: $CODE but not $e_reason ($(grep -i www-auth "$TMP/h" | tr -d '\r'))"
		return
	fi
	pass "$e_desc"
}
bearer() {
	printf 'Authorization: Bearer %s' "$(tok "$1")"
}

expect 200 - es256 "jose ES256 access token accepted" -H "$(bearer es256)"
assert_grep '^X-Agent: spiffe://example.org/agent/jose' "$TMP/h" "agent from a jose token"
expect 200 - eddsa "jose EdDSA (Ed25519) access token accepted" -H "$(bearer eddsa)"
expect 200 - ed25519 "jose Ed25519 (RFC 9864) access token accepted" -H "$(bearer ed25519)"
expect 401 key_mismatch ed25519_eddsa_key \
    "jose Ed25519 token whose JWK is marked alg EdDSA refused" -H "$(bearer ed25519_eddsa_key)"
expect 401 expired expired "jose token expired 10 minutes ago refused" -H "$(bearer expired)"
expect 401 aud_mismatch wrong_aud "jose token for another audience refused" -H "$(bearer wrong_aud)"
expect 403 insufficient_scope no_scope "jose token without the scope refused (403)" \
    -H "$(bearer no_scope)"
expect 401 typ_mismatch wrong_typ "jose token with typ JWT refused by the access profile" \
    -H "$(bearer wrong_typ)"
expect 401 '(alg_not_allowed|malformed)' unsecured "jose unsecured JWT (alg none) refused" \
    -H "$(bearer unsecured)"
expect 401 alg_not_allowed hs256 "jose HS256 keyed with the public key refused" \
    -H "$(bearer hs256)"
BOUND=$(tok bound)
echo "# DPoP proofs made by the npm package $(tok dpop_impl)"
expect 200 - bound "jose DPoP-bound token with a peer (npm dpop) proof accepted" \
    -H "Authorization: DPoP $BOUND" -H "DPoP: $(tok bound_proof)"
expect 401 dpop_replay bound "the same peer proof again refused (replay)" \
    -H "Authorization: DPoP $BOUND" -H "DPoP: $(tok bound_proof)"
expect 401 dpop_invalid bound "a peer proof for POST refused on GET" \
    -H "Authorization: DPoP $BOUND" -H "DPoP: $(tok bound_proof_post)"
expect 401 binding_required bound "the jose DPoP-bound token as a bearer token refused" \
    -H "Authorization: Bearer $BOUND"
# RFC 9864: npm dpop signs Ed25519 proofs with alg "Ed25519" (not "EdDSA").
BOUND_ED=$(tok bound_ed)
assert_eq "$(tok bound_ed_proof_alg)" Ed25519 "the peer's Ed25519 proof is headed alg Ed25519"
expect 200 - bound_ed "a peer Ed25519 DPoP proof (alg Ed25519) accepted" \
    -H "Authorization: DPoP $BOUND_ED" -H "DPoP: $(tok bound_ed_proof)"
expect 401 dpop_replay bound_ed "the same Ed25519 proof again refused (replay)" \
    -H "Authorization: DPoP $BOUND_ED" -H "DPoP: $(tok bound_ed_proof)"
expect 401 dpop_invalid bound_ed "a peer Ed25519 proof for POST refused on GET" \
    -H "Authorization: DPoP $BOUND_ED" -H "DPoP: $(tok bound_ed_proof_post)"
grep -q '^WWW-Authenticate: DPoP .*algs="[^"]*Ed25519' "$TMP/h" &&
	pass "WWW-Authenticate DPoP algs lists Ed25519" ||
	fail "WWW-Authenticate DPoP algs lists Ed25519 ($(grep -i www-auth "$TMP/h" | tr -d '\r'))"
assert_no_grep '\[(alert|emerg|crit)\]' "$NGX/logs/error.log" "no alert/crit/emerg in the error log"
finish
