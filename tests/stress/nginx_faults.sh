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
# A second part runs four workers sharing a Token Status List fetched over
# http from loopback: the list server is killed, comes back, answers 500,
# garbage, a list of an unknown key or of another URI; the last good list
# must serve every worker until agentid_status_list_max_age, then fail
# closed (or open where configured), and come back with the server.
# A third part starts the four workers FRESH_STARTS (15) times with the list
# in a local file (agentid_status_list_file): from the first request after
# each start, every worker must judge tokens by it.
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
# fault_start NAME PORT DIR PATH: fault_server.py serving DIR on PORT (log NAME.log, its pid
# in NAME_PID), waited for until PATH answers; fault_stop NAME stops it.
fault_start() {
	python3 "$top_srcdir/tests/stress/fault_server.py" "$2" "$3" >>"$TMP/$1.log" 2>&1 &
	eval "$1_PID=\$!"
	wait_until 51 curl -s -o /dev/null "http://127.0.0.1:$2/$4" || :
}
fault_stop() {
	eval "f_pid=\${$1_PID:-}"
	[ -n "$f_pid" ] && kill "$f_pid" 2>/dev/null && wait "$f_pid" 2>/dev/null
	eval "$1_PID="
}
ks_PID=
ks_start() { fault_start ks "$KPORT" "$KEYS" jwks.json; }
ks_stop() { fault_stop ks; }
on_exit 'ks_stop'
ks_start

# ---------------------------------------------------------------- nginx
{
	ngx_conf_head "$NGX" 2 256
	cat <<EOF
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
} >"$NGX/nginx.conf"
# ngx_start PREFIX WHAT: nginx with PREFIX/nginx.conf, stopped on exit; MASTER is its pid.
ngx_start() {
	if ! env $NGX_ENV "$NGINX" -p "$1" -c "$1/nginx.conf" -e "$1/logs/error.log" \
	    >"$TMP/nginx.start" 2>&1; then
		fail "$2 start: $(cat "$TMP/nginx.start")"
		finish
	fi
	on_exit "[ -s '$1/nginx.pid' ] && kill \"\$(cat '$1/nginx.pid')\" 2>/dev/null; sleep 0.3"
	wait_until 50 test -s "$1/nginx.pid"
	MASTER=$(cat "$1/nginx.pid")
}
# ngx_stop: stops the nginx of the last ngx_start and waits (at most 5 s) for its master to go.
ngx_stop() {
	kill "$MASTER" 2>/dev/null
	wait_until 50 sh -c "! kill -0 $MASTER 2>/dev/null"
}
ngx_start "$NGX" nginx

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
		[ -n "$ks_PID" ] || ks_start
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

# ---------------------------------------------------------------- status lists, shared by workers
# A second nginx with SWORKERS workers behind a reuseport listener (the
# kernel spreads new connections over all of them; every response names its
# worker in X-Pid) checks tokens against a Token Status List served over
# http on loopback by fault_server.py, refreshed every second.  Entry 3 is
# revoked, entry 5 valid.  The list server is killed, brought back on the
# same port, and made to answer 500, garbage, a list signed by an unknown
# key and a list of another URI; the last good list must stay in use in every
# worker until it is older than agentid_status_list_max_age.
ngx_stop
ks_stop

SWORKERS=4
MAX_AGE=${STATUS_MAX_AGE:-8}
SL=$TMP/sl
NGX2=$TMP/ngx2
SPORT=$(free_port)
SLPORT=$(free_port)
mkdir -p "$SL" "$NGX2/logs" "$NGX2/tmp" "$TMP/www/closed" "$TMP/www/failopen"
for d in closed failopen; do echo "hello $d" >"$TMP/www/$d/index.html"; done
"$AGENTID" bundle --trust-domain issuer.test --use jwt-svid "$TMP/good.key" >"$TMP/issuer.json" ||
	{ fail "issuer bundle"; finish; }
SL_URI=http://127.0.0.1:$SLPORT/list.jwt
mklist() { # mklist OUT URI KEY [--revoke IDX]...
	ml_out=$1
	ml_uri=$2
	ml_key=$3
	shift 3
	"$AGENTID" status-list make --key "$ml_key" --uri "$ml_uri" --size 64 --ttl 1 "$@" \
	    --out "$ml_out" >/dev/null
}
mklist "$SL/good.jwt" "$SL_URI" "$TMP/good.key" --revoke 3 || { fail "status-list make"; finish; }
# Both bad lists say "nothing revoked": taking either would let entry 3 through.
mklist "$SL/foreign.jwt" "$SL_URI" "$TMP/stray.key" || { fail "status-list make"; finish; }
mklist "$SL/othersub.jwt" "http://127.0.0.1:$SLPORT/other.jwt" "$TMP/good.key" ||
	{ fail "status-list make"; finish; }
cp "$SL/good.jwt" "$SL/list.jwt"
echo good >"$SL/MODE"
status_tok() { # status_tok IDX
	"$AGENTID" dev sign --key "$TMP/good.key" --typ at+jwt --ttl 3600 --claims-json \
	    "{\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"client_id\":\"orch\",\"sub\":\"$ORCH\",\"scope\":\"read\",\"status\":{\"status_list\":{\"idx\":$1,\"uri\":\"$SL_URI\"}}}"
}
TOK_REV=$(status_tok 3)
TOK_VAL=$(status_tok 5)
[ -n "$TOK_REV" ] && [ -n "$TOK_VAL" ] || { fail "could not mint status tokens"; finish; }

sl_PID=
sl_start() { fault_start sl "$SLPORT" "$SL" list.jwt; }
sl_stop() { fault_stop sl; }
on_exit 'sl_stop'
sl_start

{
	ngx_conf_head "$NGX2" $SWORKERS 256
	cat <<EOF
    access_log off;
    server {
        listen 127.0.0.1:$SPORT reuseport;
        root $TMP/www;
        agentid_profile access;
        agentid_audience $AUD;
        agentid_issuer $ISS;
        agentid_bundle $TMP/issuer.json;
        agentid_status_list on;
        agentid_status_list_refresh 1s;
        agentid_status_list_max_age ${MAX_AGE}s;
        add_header X-Pid \$pid always;
        location /closed/ { agentid on; }
        location /failopen/ { agentid on; agentid_status_fail open; }
    }
}
EOF
} >"$NGX2/nginx.conf"
ngx_start "$NGX2" "nginx (status lists)"

# sreq PATH TOKEN: prints "CODE PID REASON", REASON the error_description of
# WWW-Authenticate or "-".
sreq() {
	curl -s -o /dev/null -D - --max-time 10 -H "Authorization: Bearer $2" \
	    "http://127.0.0.1:$SPORT$1" | tr -d '\r' | awk '
		NR == 1 { code = $2 }
		tolower($1) == "x-pid:" { pid = $2 }
		tolower($1) == "www-authenticate:" && match($0, /error_description="[^"]*"/) {
			reason = substr($0, RSTART + 19, RLENGTH - 20)
		}
		END { printf "%s %s %s\n", code ? code : "000", pid ? pid : "-",
		    reason ? reason : "-" }'
}
nworkers() { # nworkers FILE: how many workers answered the requests in FILE
	awk '$2 != "-" { print $2 }' "$1" | sort -u | wc -l | tr -d ' '
}
# every_worker "CODE REASON" PATH TOKEN DESC: requests until every worker has
# answered (at most 200); every answer must be CODE with REASON.
every_worker() {
	: >"$TMP/ew"
	n=0
	while [ "$(nworkers "$TMP/ew")" -lt "$SWORKERS" ] && [ $n -lt 200 ]; do
		sreq "$2" "$3" >>"$TMP/ew"
		n=$((n + 1))
	done
	seen=$(nworkers "$TMP/ew")
	bad=$(awk -v w="$1" '$1 " " $3 != w' "$TMP/ew" | wc -l | tr -d ' ')
	if [ "$bad" = 0 ] && [ "$seen" = "$SWORKERS" ]; then
		pass "$4: $1 from all $SWORKERS workers ($n requests)"
		return 0
	fi
	fail "$4: $bad of $n answers were not '$1'; $seen of $SWORKERS workers answered"
	awk '{ print $1, $3 }' "$TMP/ew" | sort | uniq -c | sed 's/^/    /'
	return 1
}
# until_status "CODE REASON" PATH TOKEN SECONDS: polls until an answer is
# CODE REASON, then lets the other workers catch up (they look at the zone
# four times a second and judge staleness on their own clock).  Sets WAITED.
until_status() {
	u_end=$(($(date +%s) + $4))
	u_start=$(date +%s)
	while [ "$(date +%s)" -lt "$u_end" ]; do
		[ "$(sreq "$2" "$3" | awk '{ print $1, $3 }')" = "$1" ] && break
		sleep 0.2
	done
	WAITED=$(($(date +%s) - u_start))
	sleep 1.5
}
refresh_warnings() {
	grep -c -F "status list refresh:" "$NGX2/logs/error.log" || :
}

# Every worker registers the list when it first sees a token naming it.
i=0
while [ "$(grep -F "status list \"$SL_URI\" will be fetched" "$NGX2/logs/error.log" |
    sed -E 's/^.*\] ([0-9]+)#.*$/\1/' | sort -u | wc -l | tr -d ' ')" -lt "$SWORKERS" ] &&
    [ $i -lt 300 ]; do
	sreq /closed/ "$TOK_VAL" >/dev/null
	i=$((i + 1))
done
until_status "200 -" /closed/ "$TOK_VAL" 10
every_worker "200 -" /closed/ "$TOK_VAL" "list server up: valid entry allowed"
every_worker "401 revoked" /closed/ "$TOK_REV" "list server up: revoked entry refused"
# (taken now: a slow start, as under sanitizers, may fork the last worker late)
SWORKERS0=$(workers)
echo "# status lists: nginx master $MASTER, workers $SWORKERS0"

# -- the list server dies: within max_age the last good list keeps working
sl_stop
t0=$(date +%s)
w0=$(refresh_warnings)
every_worker "200 -" /closed/ "$TOK_VAL" "list server killed, within max_age: valid entry allowed"
every_worker "401 revoked" /closed/ "$TOK_REV" "list server killed, within max_age: revoked entry refused"
every_worker "200 -" /failopen/ "$TOK_VAL" "list server killed, within max_age: valid entry allowed (fail open)"
every_worker "401 revoked" /failopen/ "$TOK_REV" "list server killed, within max_age: revoked entry refused (fail open)"
el=$(($(date +%s) - t0))
[ "$el" -lt "$MAX_AGE" ] || echo "# warning: the checks took ${el}s, agentid_status_list_max_age is ${MAX_AGE}s"

# -- past max_age: closed refuses, open lets through
until_status "401 status_unavailable" /closed/ "$TOK_VAL" $((MAX_AGE + 10))
echo "# the list went stale ${WAITED}s after the last check (max_age ${MAX_AGE}s)"
every_worker "401 status_unavailable" /closed/ "$TOK_VAL" "list stale (fail closed): valid entry refused"
every_worker "401 revoked" /closed/ "$TOK_REV" "list stale (fail closed): revoked entry still refused as revoked"
every_worker "200 -" /failopen/ "$TOK_VAL" "list stale, agentid_status_fail open: valid entry allowed"
every_worker "401 revoked" /failopen/ "$TOK_REV" \
    "list stale, agentid_status_fail open: what the stale list revoked stays refused"
w1=$(refresh_warnings)
[ "$w1" -gt "$w0" ] && pass "failed refreshes are logged ($((w1 - w0)) while the server was down)" ||
	fail "no failed refresh logged while the list server was down"

# -- the list server comes back on the same port (the same bytes: a confirmation)
sl_start
until_status "200 -" /closed/ "$TOK_VAL" 15
echo "# recovered ${WAITED}s after the list server came back"
every_worker "200 -" /closed/ "$TOK_VAL" "list server back: valid entry allowed"
every_worker "401 revoked" /closed/ "$TOK_REV" "list server back: revoked entry refused"

# -- bad answers must not replace the last good list (stale-if-error)
for mode in error garbage foreign othersub; do
	case $mode in
	error | garbage) echo "$mode" >"$SL/MODE" ;;
	*) cp "$SL/$mode.jwt" "$SL/list.jwt" ;;
	esac
	w0=$(refresh_warnings)
	: >"$SL/requests.log"
	sleep 2.5
	every_worker "401 revoked" /closed/ "$TOK_REV" "$mode: revoked entry still refused"
	every_worker "200 -" /closed/ "$TOK_VAL" "$mode: valid entry still allowed"
	fetches=$(wc -l <"$SL/requests.log" | tr -d ' ')
	w1=$(refresh_warnings)
	if [ "$fetches" -gt 0 ] && [ "$w1" -gt "$w0" ]; then
		pass "$mode: $fetches fetches refused ($((w1 - w0)) logged)"
	else
		fail "$mode: $fetches fetches, $((w1 - w0)) refusals logged (the fault was not exercised)"
	fi
	grep -F "status list refresh:" "$NGX2/logs/error.log" | tail -n 1 |
	    sed 's/^[0-9/: ]*\[[a-z]*\] [0-9#]*: \*\{0,1\}[0-9]* \{0,1\}/# /'
	cp "$SL/good.jwt" "$SL/list.jwt"
	echo good >"$SL/MODE"
	# the next fault starts after a good fetch confirmed the list again
	: >"$SL/requests.log"
	i=0
	while [ ! -s "$SL/requests.log" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	sleep 0.5
done
every_worker "401 revoked" /closed/ "$TOK_REV" "after the bad answers: revoked entry refused"
every_worker "200 -" /closed/ "$TOK_VAL" "after the bad answers: valid entry allowed"

if [ "$(workers)" = "$SWORKERS0" ]; then
	pass "status lists: no worker died"
else
	fail "status lists: workers changed: $SWORKERS0 -> $(workers)"
fi
BADLOG='\[(crit|alert|emerg)\]|exited on signal|exited with code|AddressSanitizer|runtime error'
if grep -E -q "$BADLOG" "$NGX2/logs/error.log"; then
	fail "status lists: the error log has crit/alert/emerg lines or a crash"
	grep -E "$BADLOG" "$NGX2/logs/error.log" | head -5 | sed 's/^/    /'
else
	pass "status lists: no crit/alert/emerg line and no crash in the error log"
fi

# ---------------------------------------------------------------- fresh starts
# A list served from a local file (agentid_status_list_file) is read by every worker before its
# first request: right after a fresh start, whichever worker answers, a valid entry is allowed
# and a revoked one refused; never status_unavailable while the first fetch is pending.
# Several starts, because the workers race for the zone's lease.
ngx_stop
NGX3=$TMP/ngx3
mkdir -p "$NGX3/logs" "$NGX3/tmp"
sed -e "s|$NGX2|$NGX3|g" \
    -e "s|agentid_status_list_refresh 1s;|&\n        agentid_status_list_file $SL_URI $SL/good.jwt;|" \
    "$NGX2/nginx.conf" >"$NGX3/nginx.conf"
STARTS=${FRESH_STARTS:-15}
n=0
: >"$TMP/fresh"
while [ $n -lt "$STARTS" ]; do
	: >"$NGX3/logs/error.log"
	ngx_start "$NGX3" "nginx (fresh start $n)"
	for t in 1 2 3; do
		echo "$(sreq /closed/ "$TOK_VAL" | awk '{ print $1, $3 }') want 200 -" >>"$TMP/fresh"
		echo "$(sreq /closed/ "$TOK_REV" | awk '{ print $1, $3 }') want 401 revoked" >>"$TMP/fresh"
	done
	ngx_stop
	n=$((n + 1))
done
bad=$(awk '$1 " " $2 != $4 " " $5' "$TMP/fresh" | wc -l | tr -d ' ')
if [ "$bad" = 0 ]; then
	pass "fresh starts: a status-list file is in force from the first request ($STARTS starts)"
else
	fail "fresh starts: $bad of $(wc -l <"$TMP/fresh" | tr -d ' ') answers wrong ($STARTS starts)"
	awk '$1 " " $2 != $4 " " $5' "$TMP/fresh" | sort | uniq -c | sed 's/^/    /'
fi
finish
