#!/bin/sh
# Fault test of ngx_http_agentid_module (issue 7): agentid_jwks_url and
# agentid_bundle_url point at a loopback server (tests/stress/fault_server.py)
# that, in turn, refuses connections, resets them, answers 500, returns
# garbage, returns a 64 MiB body, dribbles one byte a second, or never
# answers.  During every fault, with tokens of an unknown kid asking for
# early refreshes all along:
#   - an unauthenticated location of the same nginx answers within
#     OPEN_BOUND seconds (0.5: a check that no worker blocks, not a benchmark);
#   - tokens signed by the last good keys keep being accepted (stale-if-error);
#   - no worker crashes.
# Afterwards the server is fixed and serves a new key, which the module picks
# up without a reload.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${NGINX_MODULE:-$top_builddir/nginx-module/ngx_http_agentid_module.so}
[ -x "$NGINX" ] || skip "nginx not found at $NGINX"
[ -f "$MODULE" ] || skip "module not built at $MODULE (make nginx-module)"
[ -x "$AGENTID" ] || skip "agentid binary not found at $AGENTID"
command -v curl >/dev/null 2>&1 || skip "curl not found"
command -v python3 >/dev/null 2>&1 || skip "python3 not found"
command -v jq >/dev/null 2>&1 || skip "jq not found"

# A libagentid built with sanitizers needs their runtime loaded first.
NGX_ENV=
if ldd "$top_builddir/.libs/libagentid.so" 2>/dev/null | grep -q libasan; then
	NGX_ENV="LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0"
fi

OPEN_BOUND=${OPEN_BOUND:-0.5}
WINDOW=${FAULT_SECONDS:-7}
TD=example.org
AUD=https://api.example.org
ISS=https://exchange.example.org
ORCH=spiffe://$TD/agent/orchestrator
NGX=$TMP/ngx
KEYS=$TMP/keys
mkdir -p "$NGX/logs" "$NGX/tmp" "$KEYS" "$TMP/www/open" "$TMP/www/auth" "$TMP/www/svid"
for d in open auth svid; do echo "hello $d" >"$TMP/www/$d/index.html"; done

free_port() {
	python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}
PORT=$(free_port)
KPORT=$(free_port)

# ---------------------------------------------------------------- keys and tokens
"$AGENTID" dev ca init --trust-domain "$TD" --dir "$TMP/ca" >/dev/null || { fail "dev ca"; finish; }
"$AGENTID" dev ca init --trust-domain "$TD" --dir "$TMP/ca2" >/dev/null || { fail "dev ca 2"; finish; }
for k in good new stray; do
	"$AGENTID" keygen --alg ES256 --out "$TMP/$k.key" >/dev/null 2>&1 || { fail "keygen"; finish; }
done
# Documents with spiffe_refresh_hint 1: the module refetches every second while they are good.
"$AGENTID" bundle --trust-domain issuer.test --use jwt-svid "$TMP/good.key" |
	jq -c '. + {spiffe_refresh_hint: 1}' >"$KEYS/jwks.json" || { fail "jwks"; finish; }
jq -c '. + {spiffe_refresh_hint: 1}' "$TMP/ca/bundle.json" >"$KEYS/bundle.json" ||
	{ fail "bundle"; finish; }
access() { # access KEYFILE
	"$AGENTID" dev sign --key "$1" --typ at+jwt --ttl 3600 --claims-json \
	    "{\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"client_id\":\"orch\",\"sub\":\"$ORCH\",\"scope\":\"read\"}"
}
TOK_GOOD=$(access "$TMP/good.key")
TOK_NEW=$(access "$TMP/new.key")
TOK_STRAY=$(access "$TMP/stray.key")
SVID_GOOD=$("$AGENTID" dev jwt-svid --dir "$TMP/ca" --id "$ORCH" --audience "$AUD" --ttl 3600)
SVID_STRAY=$("$AGENTID" dev jwt-svid --dir "$TMP/ca2" --id "$ORCH" --audience "$AUD" --ttl 3600)
[ -n "$TOK_GOOD" ] && [ -n "$SVID_GOOD" ] || { fail "could not mint tokens"; finish; }

# ---------------------------------------------------------------- the key server
echo good >"$KEYS/MODE"
KS_PID=
ks_start() {
	python3 "$top_srcdir/tests/stress/fault_server.py" "$KPORT" "$KEYS" >>"$TMP/ks.log" 2>&1 &
	KS_PID=$!
	i=0
	until curl -s -o /dev/null "http://127.0.0.1:$KPORT/jwks.json" || [ $i -gt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}
ks_stop() {
	[ -n "$KS_PID" ] && kill "$KS_PID" 2>/dev/null && wait "$KS_PID" 2>/dev/null
	KS_PID=
}
on_exit 'ks_stop'
ks_start

# ---------------------------------------------------------------- nginx
USER_LINE=
[ "$(id -u)" -eq 0 ] && USER_LINE="user root;"
cat >"$NGX/nginx.conf" <<EOF
load_module $MODULE;
$USER_LINE
worker_processes 2;
error_log $NGX/logs/error.log info;
pid $NGX/nginx.pid;
events { worker_connections 256; }
http {
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    access_log off;
    server {
        listen 127.0.0.1:$PORT;
        root $TMP/www;
        agentid_audience $AUD;
        location /open/ { }
        location /auth/ {
            agentid on;
            agentid_profile access;
            agentid_issuer $ISS;
            agentid_jwks_url http://127.0.0.1:$KPORT/jwks.json;
        }
        location /svid/ {
            agentid on;
            agentid_profile jwt-svid;
            agentid_bundle_url http://127.0.0.1:$KPORT/bundle.json $TD;
        }
    }
}
EOF
if ! env $NGX_ENV "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" \
    >"$TMP/nginx.start" 2>&1; then
	fail "nginx start: $(cat "$TMP/nginx.start")"
	finish
fi
on_exit '[ -s "$NGX/nginx.pid" ] && kill "$(cat "$NGX/nginx.pid")" 2>/dev/null; sleep 0.3'
i=0
while [ ! -s "$NGX/nginx.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
MASTER=$(cat "$NGX/nginx.pid")

code() { # code PATH [TOKEN]
	if [ -n "${2:-}" ]; then
		curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $2" \
		    "http://127.0.0.1:$PORT$1"
	else
		curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$PORT$1"
	fi
}
workers() {
	ps -o pid= --ppid "$MASTER" 2>/dev/null | tr -d ' ' | sort | tr '\n' ' '
}

i=0
until [ "$(code /auth/ "$TOK_GOOD")" = 200 ] && [ "$(code /svid/ "$SVID_GOOD")" = 200 ]; do
	i=$((i + 1))
	[ $i -lt 50 ] || break
	sleep 0.2
done
ok=0
for i in 1 2 3 4 5 6; do
	[ "$(code /auth/ "$TOK_GOOD")" = 200 ] && [ "$(code /svid/ "$SVID_GOOD")" = 200 ] && ok=$((ok + 1))
done
assert_eq "$ok" 6 "keys from agentid_jwks_url and agentid_bundle_url work (every worker)"
WORKERS0=$(workers)
echo "# nginx master $MASTER, workers $WORKERS0"

# ---------------------------------------------------------------- faults
# During the fault, tokens of unknown keys ask for early refreshes all along.
poke() {
	while [ ! -e "$TMP/stop_poke" ]; do
		code /auth/ "$TOK_STRAY" >/dev/null
		code /svid/ "$SVID_STRAY" >/dev/null
		sleep 0.3
	done
}

fault() { # fault MODE
	mode=$1
	if [ "$mode" = refused ]; then
		ks_stop
	else
		[ -n "$KS_PID" ] || ks_start
		echo "$mode" >"$KEYS/MODE"
	fi
	: >"$KEYS/requests.log"
	rm -f "$TMP/stop_poke"
	poke &
	POKE=$!
	: >"$TMP/lat"
	bad_auth=0
	n=0
	end=$(($(date +%s) + WINDOW))
	while [ "$(date +%s)" -lt "$end" ]; do
		curl -s -o /dev/null --max-time 10 -w '%{http_code} %{time_total}\n' \
		    "http://127.0.0.1:$PORT/open/" >>"$TMP/lat" || echo "000 10" >>"$TMP/lat"
		c1=$(code /auth/ "$TOK_GOOD")
		c2=$(code /svid/ "$SVID_GOOD")
		n=$((n + 1))
		[ "$c1" = 200 ] && [ "$c2" = 200 ] || bad_auth=$((bad_auth + 1))
		sleep 0.1
	done
	touch "$TMP/stop_poke"
	wait "$POKE"
	nlat=$(wc -l <"$TMP/lat" | tr -d ' ')
	max=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { printf "%.3f", m }' "$TMP/lat")
	nbad=$(awk -v b="$OPEN_BOUND" '$1 != 200 || $2 > b' "$TMP/lat" | wc -l | tr -d ' ')
	fetches=$(wc -l <"$KEYS/requests.log" | tr -d ' ')
	if [ "$nbad" = 0 ]; then
		pass "$mode: unauthenticated location answered within ${OPEN_BOUND}s ($nlat requests, max ${max}s; $fetches key fetches during the fault)"
	else
		fail "$mode: $nbad of $nlat unauthenticated requests failed or took over ${OPEN_BOUND}s (max ${max}s)"
	fi
	assert_eq "$bad_auth" 0 "$mode: tokens of the last good keys keep working ($n rounds, jwks + bundle URL)"
	if [ "$mode" != refused ] && [ "$fetches" -eq 0 ]; then
		fail "$mode: the module never fetched during the fault (the fault was not exercised)"
	fi
	if [ "$(workers)" = "$WORKERS0" ]; then
		pass "$mode: no worker died"
	else
		fail "$mode: workers changed: $WORKERS0 -> $(workers)"
	fi
}

for mode in refused reset error garbage huge slow hang; do
	fault "$mode"
done

if grep -E -q 'exited on signal|AddressSanitizer|runtime error' "$NGX/logs/error.log"; then
	fail "nginx error log reports a crash or a sanitizer error"
	grep -E 'exited on signal|AddressSanitizer|runtime error' "$NGX/logs/error.log" | head -5
else
	pass "no crash or sanitizer report in the error log"
fi
grep -E -q 'fetching "http://127.0.0.1:[0-9]+/(jwks|bundle).json" failed' "$NGX/logs/error.log" &&
    pass "fetch failures are logged" || fail "no fetch failure in the error log"
grep -E 'agentid' "$NGX/logs/error.log" | sed 's/^[0-9/: ]*\[[a-z]*\] [0-9#]*: //' |
	sed 's/[0-9]\{4,\}/N/g' | sort | uniq -c | sort -rn | head -8 | sed 's/^/# error.log: /'

# ---------------------------------------------------------------- recovery with a new key
ks_stop
"$AGENTID" bundle --trust-domain issuer.test --use jwt-svid "$TMP/new.key" |
	jq -c '. + {spiffe_refresh_hint: 1}' >"$KEYS/jwks.json"
echo good >"$KEYS/MODE"
ks_start
i=0
until [ "$(code /auth/ "$TOK_NEW")" = 200 ] || [ $i -ge 100 ]; do
	sleep 0.25
	i=$((i + 1))
done
c=$(code /auth/ "$TOK_NEW")
assert_eq "$c" 200 "after the faults the module picks up a new key without reload ($((i / 4)) s)"
finish
