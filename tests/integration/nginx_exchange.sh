#!/bin/sh
# End to end: agentid-exchange issues an orchestrator's token and a sub-agent's
# delegated token; nginx with ngx_http_agentid_module (keys from the exchange's
# /jwks over HTTPS, revocation from its status list over HTTPS) accepts the
# sub-agent where its scope allows, refuses it (403) where it does not, and
# refuses it (401 revoked) after a cascading revocation of its parent.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/exchange_lib.sh"

NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${NGINX_MODULE:-$top_builddir/nginx-module/ngx_http_agentid_module.so}
[ -x "$NGINX" ] || skip "nginx not found at $NGINX"
[ -f "$MODULE" ] || skip "module not built at $MODULE (make nginx-module)"
xc_require

NGX_ENV=
if ldd "$top_builddir/.libs/libagentid.so" 2>/dev/null | grep -q libasan; then
	NGX_ENV="LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0"
fi

XC_DIR=$TMP/x
XC_PORT=$(free_port)
mkdir -p "$XC_DIR"
xc_setup "$XC_DIR" || skip "cannot create test credentials"
xc_config "$XC_DIR" "$XC_PORT"
B=https://127.0.0.1:$XC_PORT
API=https://api.example
xc_start "$XC_DIR" exchange || { fail "agentid-exchange start"; finish; }

# ---- tokens from the exchange: orchestrator, then its sub-agent ----
ORCH=$(xc_jwt orchestrator)
xc_post t1 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT --data-urlencode "scope=read write" -d audience=$API \
    -d task_id=T-7
expect_ok t1 "exchange: orchestrator token"
T1=$(jget t1 .access_token)
SUBJ=$(xc_jwt sub)
xc_post t2 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$T1" \
    -d subject_token_type=$TT_AT --data-urlencode "actor_token=$SUBJ" -d actor_token_type=$TT_JWT \
    -d scope=read -d audience=$API -d task_id=T-7/sub
expect_ok t2 "exchange: sub-agent token (delegated, scope read)"
T2=$(jget t2 .access_token)
[ -n "$T1" ] && [ -n "$T2" ] || { fail "no tokens from the exchange"; finish; }

# ---- nginx in front of a sample API ----
NGX=$TMP/ngx
mkdir -p "$NGX/logs" "$NGX/tmp"
for d in read write orch; do
	mkdir -p "$TMP/www/$d"
	echo "api $d" >"$TMP/www/$d/index.html"
done
PORT=$(free_port)
{
	ngx_conf_head "$NGX" 2 64
	cat <<EOF
    access_log off;
    agentid_fetch_ca $XC_DIR/server.pem;
    agentid_cache 1m;
    server {
        listen 127.0.0.1:$PORT;
        root $TMP/www;
        agentid api;
        agentid_profile access;
        agentid_jwks_url $B/jwks;
        agentid_issuer $B;
        agentid_audience $API;
        agentid_status_list on;
        agentid_status_list_refresh 1s;
        add_header X-Agent \$agentid_agent always;
        add_header X-Chain \$agentid_chain always;
        location /read/ { agentid_require_scope read; }
        location /write/ { agentid_require_scope write; }
        location /orch/ { agentid_allow_agent spiffe://example.org/orchestrator; }
    }
}
EOF
} >"$NGX/nginx.conf"
if ! env $NGX_ENV "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" \
    >"$NGX/logs/start.log" 2>&1; then
	fail "nginx did not start"
	cat "$NGX/logs/start.log" | sed 's/^/    /'
	finish
fi
on_exit '[ -s "$NGX/nginx.pid" ] && kill "$(cat "$NGX/nginx.pid")" 2>/dev/null; sleep 0.3'

req() { # req PATH TOKEN
	CODE=$(curl -s -o "$TMP/b" -D "$TMP/h" -w '%{http_code}' -H "Authorization: Bearer $2" \
	    "http://127.0.0.1:$PORT$1")
}
# until_code SECONDS PATH TOKEN CODE
until_code() {
	n=$(($1 * 5))
	while [ $n -gt 0 ]; do
		req "$2" "$3"
		[ "$CODE" = "$4" ] && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}

# The first status-list refresh runs as the workers start.
until_code 5 /read/ "$T2" 200
assert_eq "$CODE" 200 "sub-agent token accepted where its scope (read) allows"
assert_grep '^X-Agent: spiffe://example.org/sub' "$TMP/h" "\$agentid_agent is the sub-agent"
assert_grep '^X-Chain: spiffe://example.org/sub,spiffe://example.org/orchestrator' "$TMP/h" \
    "\$agentid_chain is the delegation chain"
req /write/ "$T2"
assert_eq "$CODE" 403 "sub-agent token refused (403) where it lacks the scope (write)"
assert_grep 'WWW-Authenticate: Bearer realm="api", error="insufficient_scope".*scope="write"' \
    "$TMP/h" "403 says insufficient_scope and names the scope"
req /orch/ "$T2"
assert_eq "$CODE" 403 "sub-agent refused where only the orchestrator may act"
req /write/ "$T1"
assert_eq "$CODE" 200 "the orchestrator's own token has write"

# ---- cascading revocation: revoking the parent revokes the sub-agent's token ----
xc_post r1 /revoke orchestrator --data-urlencode "token=$T1"
assert_eq "$XC_CODE" 200 "exchange: RFC 7009 revocation of the orchestrator's token"
if until_code 10 /read/ "$T2" 401; then
	pass "after the cascading revocation the sub-agent's token is refused (401)"
else
	fail "sub-agent token still accepted after revocation (got $CODE)"
fi
tr -d '\r' <"$TMP/h" | grep -i '^WWW-Authenticate' >"$TMP/www.txt" || :
assert_grep 'error="invalid_token", error_description="revoked"' "$TMP/www.txt" \
    "the refusal says revoked"
ok=0
for i in 1 2 3 4 5 6; do
	req /read/ "$T2"
	[ "$CODE" = 401 ] && ok=$((ok + 1))
done
assert_eq "$ok" 6 "every worker refuses the revoked token (the cache does not hide it)"
req /write/ "$T1"
assert_eq "$CODE" 401 "the revoked parent is refused too"

assert_no_grep '\[(alert|emerg|crit)\]' "$NGX/logs/error.log" "no alert/crit/emerg in the error log"
assert_no_grep 'AddressSanitizer|runtime error:' "$NGX/logs/error.log" "no sanitizer report"
finish
