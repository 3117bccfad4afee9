#!/bin/sh
# Fault and load test of agentid-exchange (issue 7), loopback only, bounded in time.
#
#  1. Mixed load for $STRESS_SECONDS (default 60) over TLS with the SQLite
#     store: wrk drives valid delegations, garbage and forged tokens,
#     malformed bodies, introspection, status lists and health checks
#     (tests/stress/exchange_load.lua) while tests/stress/slow_clients.py
#     keeps idle and byte-dribbling connections open.  Wanted: zero 5xx,
#     no crash, /healthz answers promptly all along, slow connections are
#     closed by the server's timeout, and resident memory grows by less
#     than RSS_BOUND_KIB (64 MiB) from before the load to after it.
#  2. kill -9 in the middle of a load while tokens are being issued and
#     revoked; after a restart every revocation acknowledged with a 200
#     before the kill is still in force (/introspect and the status list),
#     and every token whose issuance was acknowledged is still in the ledger.
#  3. The PostgreSQL store with the database stopped during a load: the
#     endpoints that need it answer 503 promptly (no 500, no hang), the
#     server recovers by itself when PostgreSQL returns, and the state is
#     consistent (revocations kept, status indexes unique).  Skipped when
#     the PostgreSQL server binaries are absent.
#
# Environment: STRESS_SECONDS (phase 1 length), STRESS_CONNECTIONS (wrk, 50),
# RSS_BOUND_KIB, AGENTID_EXCHANGE, top_builddir, top_srcdir.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/exchange_lib.sh"

xc_require
command -v wrk >/dev/null 2>&1 || skip "wrk not installed (apt-get install wrk)"
command -v python3 >/dev/null 2>&1 || skip "python3 not installed"
SECS=${STRESS_SECONDS:-60}
CONNS=${STRESS_CONNECTIONS:-50}
# The stated bound of resident-memory growth over the load (KiB).
RSS_BOUND_KIB=${RSS_BOUND_KIB:-65536}
# Under AddressSanitizer freed memory sits in a quarantine (256 MiB by default)
# and shadow memory grows with the heap: RSS says nothing there, so the bound
# is checked in the normal build only (the sanitizer pass checks for errors).
XC_BIN=$AGENTID_EXCHANGE
[ -x "$(dirname "$XC_BIN")/.libs/$(basename "$XC_BIN")" ] &&
    XC_BIN=$(dirname "$XC_BIN")/.libs/$(basename "$XC_BIN")
ASAN_BUILD=
ldd "$XC_BIN" 2>/dev/null | grep -q libasan && ASAN_BUILD=yes
# /healthz must answer within this many seconds while the load runs.
HEALTH_BOUND=2
# The server's idle/read timeout (limits.timeout in the configuration).
XC_TIMEOUT=5
STRESS=$top_srcdir/tests/stress

XC_DIR=$TMP/x
XC_PORT=$(free_port)
mkdir -p "$XC_DIR"
xc_setup "$XC_DIR" || skip "cannot create test credentials"
xc_config "$XC_DIR" "$XC_PORT"
B=https://127.0.0.1:$XC_PORT
CA=$XC_DIR/server.pem

rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

alive() {
	kill -0 "$1" 2>/dev/null
}

# ok_form SUBJECT_TOKEN [more urlencoded pairs]: a delegation request body
# authenticated by a JWT-SVID client assertion (wrk cannot present certificates).
form_body() {
	printf 'grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange&subject_token=%s&subject_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Aaccess_token&actor_token=%s&actor_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Ajwt&scope=read&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-spiffe&client_assertion=%s' \
	    "$1" "$2" "$3"
}

# prepare_bodies DIR: the request bodies of the Lua script, for the server at $B.
prepare_bodies() {
	bd=$1
	mkdir -p "$bd"
	orch=$(xc_jwt orchestrator --ttl 3600)
	sub=$(xc_jwt sub --ttl 3600)
	parent=$(curl -s --cacert "$CA" --cert "$XC_DIR/orchestrator.pem" \
	    --key "$XC_DIR/orchestrator.key" "$B/token" -d grant_type=$TE \
	    --data-urlencode "subject_token=$orch" -d subject_token_type=$TT_JWT \
	    --data-urlencode "scope=read write" | jq -r .access_token)
	[ -n "$parent" ] && [ "$parent" != null ] || return 1
	form_body "$parent" "$sub" "$orch" >"$bd/body_valid"
	form_body "garbage.garbage.garbage" "$sub" "$orch" >"$bd/body_garbage"
	# The parent's header and claims with another token's signature.
	forged="${parent%.*}.$(printf '%s' "$sub" | cut -d. -f3)"
	form_body "$forged" "$sub" "$orch" >"$bd/body_forged"
	printf 'token=%s&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-spiffe&client_assertion=%s' \
	    "$parent" "$orch" >"$bd/body_introspect"
	code=$(curl -s -o "$bd/sanity.json" -w '%{http_code}' --cacert "$CA" "$B/token" \
	    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "@$bd/body_valid")
	[ "$code" = 200 ] || { echo "# sanity delegation: $code $(head -c 300 "$bd/sanity.json")"; return 1; }
}

# wrk_run SECONDS OUTFILE [STRESS_DIR]: mixed load in the background; sets WRK_PID.
wrk_run() {
	STRESS_DIR=${3:-$TMP/bodies} wrk -t2 -c"$CONNS" -d"$1s" --timeout 10s \
	    -s "$STRESS/exchange_load.lua" "$B" >"$2" 2>&1 &
	WRK_PID=$!
}

# field NAME FILE: a key=value of the RESULT line wrk printed.
field() {
	sed -n "s/^RESULT.* $1=\([0-9.]*\).*/\1/p" "$2"
}

# health_probe OUTFILE STOPFILE: /healthz once a second until STOPFILE exists.
health_probe() {
	while [ ! -e "$2" ]; do
		curl -s -o /dev/null --max-time 10 -w '%{http_code} %{time_total}\n' --cacert "$CA" \
		    "$B/healthz" >>"$1" 2>/dev/null || echo "000 10" >>"$1"
		sleep 1
	done
}

# ---------------------------------------------------------------- 1. mixed load
echo "# phase 1: ${SECS}s of mixed load, $CONNS wrk connections + 16 slow clients"
xc_start "$XC_DIR" load || { fail "server start"; finish; }
PID=$(cat "$TMP/load.pid")
prepare_bodies "$TMP/bodies" && pass "request bodies prepared (sanity delegation 200)" ||
    { fail "cannot prepare the request bodies"; finish; }
RSS0=$(rss_kib "$PID")
rm -f "$TMP/stop1"
health_probe "$TMP/health1" "$TMP/stop1" &
HP=$!
python3 "$STRESS/slow_clients.py" 127.0.0.1 "$XC_PORT" "$CA" "$SECS" 4 >"$TMP/slow.out" 2>&1 &
SLOW=$!
wrk_run "$SECS" "$TMP/wrk1.out"
RSSMAX=$RSS0
t=0
while alive "$WRK_PID"; do
	sleep 5
	t=$((t + 5))
	r=$(rss_kib "$PID")
	[ -n "$r" ] && [ "$r" -gt "$RSSMAX" ] && RSSMAX=$r
	[ -n "$r" ] || break
done
wait "$WRK_PID"
wait "$SLOW"
touch "$TMP/stop1"
wait "$HP"
RSS1=$(rss_kib "$PID")
sed 's/^/# /' "$TMP/wrk1.out" | grep -E 'RESULT|Socket|Latency|Req/Sec' || cat "$TMP/wrk1.out"
sed 's/^/# /' "$TMP/slow.out"

if alive "$PID"; then
	pass "server alive after ${SECS}s of mixed load"
else
	fail "server died during the load: $(tail -20 "$TMP/load.log")"
	finish
fi
REQS=$(field requests "$TMP/wrk1.out")
S2=$(field s2xx "$TMP/wrk1.out")
S4=$(field s4xx "$TMP/wrk1.out")
S5=$(($(field s500 "$TMP/wrk1.out") + $(field s503 "$TMP/wrk1.out") + $(field s5xx_other "$TMP/wrk1.out")))
OTHER=$(field other "$TMP/wrk1.out")
[ -n "$REQS" ] && [ "$REQS" -gt 0 ] && [ "$S2" -gt 0 ] && [ "$S4" -gt 0 ] &&
    pass "load ran: $REQS requests ($S2 2xx, $S4 4xx)" || fail "wrk produced no result"
assert_eq "$S5" 0 "zero 5xx responses under mixed load"
assert_eq "$OTHER" 0 "no response outside 2xx/4xx"
HN=$(wc -l <"$TMP/health1" | tr -d ' ')
HBAD=$(awk -v b=$HEALTH_BOUND '$1 != 200 || $2 > b' "$TMP/health1" | wc -l | tr -d ' ')
HMAX=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$TMP/health1")
[ "$HN" -gt 0 ] && [ "$HBAD" = 0 ] &&
    pass "/healthz answered 200 within ${HEALTH_BOUND}s all along ($HN probes, max ${HMAX}s)" ||
    fail "/healthz during load: $HBAD of $HN probes failed or slower than ${HEALTH_BOUND}s (max ${HMAX}s)"
# Every kind of slow client must have been disconnected by the server, none
# kept longer than its timeout plus handshake and scheduling slack.
SLOW_BOUND=$((XC_TIMEOUT * 3 + 5))
for kind in tcp_idle tls_idle header_drip body_drip; do
	line=$(grep "kind=$kind " "$TMP/slow.out")
	closed=$(printf '%s' "$line" | sed 's/.*closed_by_server=\([0-9]*\).*/\1/')
	life=$(printf '%s' "$line" | sed 's/.*max_lifetime=\([0-9.]*\).*/\1/')
	# A run shorter than the bound cannot see a close; it still checks the lifetime.
	if [ -n "$line" ] && { [ "$closed" -gt 0 ] || [ "$SECS" -le "$SLOW_BOUND" ]; } &&
	    awk -v l="$life" -v b=$SLOW_BOUND 'BEGIN { exit !(l <= b) }'; then
		pass "slow clients ($kind): closed by the server, longest ${life}s (bound ${SLOW_BOUND}s)"
	else
		fail "slow clients ($kind): ${line:-no result} (bound ${SLOW_BOUND}s)"
	fi
done
GROWTH=$((RSS1 - RSS0))
echo "# VmRSS before ${RSS0} KiB, max ${RSSMAX} KiB, after ${RSS1} KiB"
if [ -n "$ASAN_BUILD" ]; then
	echo "# AddressSanitizer build: RSS growth not checked (quarantine and shadow memory)"
elif [ "$GROWTH" -lt "$RSS_BOUND_KIB" ]; then
	pass "RSS growth ${GROWTH} KiB < bound ${RSS_BOUND_KIB} KiB (before ${RSS0}, after ${RSS1})"
else
	fail "RSS grew by ${GROWTH} KiB (bound ${RSS_BOUND_KIB} KiB; before ${RSS0}, after ${RSS1})"
fi
xc_get h1 /healthz
assert_eq "$XC_CODE" 200 "server serves after the load"

# ---------------------------------------------------------------- 2. kill -9 mid-load
echo "# phase 2: tokens issued and revoked under load, then kill -9"
# issue_revoke_loop STOPFILE: issues tokens and revokes two of every three,
# alternating RFC 7009 /revoke and the admin API.  A token lands in
# revoked.txt only after its revocation was answered 200, in kept.txt after
# its issuance was answered 200 when it is not to be revoked.
issue_revoke_loop() {
	i=0
	: >"$TMP/revoked.txt"
	: >"$TMP/kept.txt"
	orch=$(xc_jwt orchestrator --ttl 3600)
	while [ ! -e "$1" ]; do
		i=$((i + 1))
		code=$(curl -s -o "$TMP/iss.json" -w '%{http_code}' --max-time 10 --cacert "$CA" \
		    --cert "$XC_DIR/orchestrator.pem" --key "$XC_DIR/orchestrator.key" "$B/token" \
		    -d grant_type=$TE --data-urlencode "subject_token=$orch" \
		    -d subject_token_type=$TT_JWT -d "task_id=K-$i") || code=000
		[ "$code" = 200 ] || { sleep 0.05; continue; }
		tok=$(jq -r .access_token "$TMP/iss.json")
		case $((i % 3)) in
		0)
			echo "$tok" >>"$TMP/kept.txt"
			continue
			;;
		1)
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CA" \
			    --cert "$XC_DIR/orchestrator.pem" --key "$XC_DIR/orchestrator.key" \
			    "$B/revoke" --data-urlencode "token=$tok") || code=000
			;;
		2)
			jti=$(claims "$tok" | jq -r .jti)
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CA" \
			    --cert "$XC_DIR/admin.pem" --key "$XC_DIR/admin.key" \
			    "$B/admin/revoke" --data-urlencode "jti=$jti") || code=000
			;;
		esac
		if [ "$code" = 200 ]; then
			echo "$tok" >>"$TMP/revoked.txt"
		else
			echo "$tok" >>"$TMP/unacked.txt"
		fi
	done
}
rm -f "$TMP/stop2"
wrk_run 30 "$TMP/wrk2.out"
issue_revoke_loop "$TMP/stop2" &
LOOP=$!
sleep 8
kill -9 "$PID"
KILLED_AT=$(date +%s)
wait "$PID" 2>/dev/null
rm -f "$TMP/load.pid"
sleep 0.5
touch "$TMP/stop2"
wait "$LOOP"
kill "$WRK_PID" 2>/dev/null
wait "$WRK_PID" 2>/dev/null
NREV=$(wc -l <"$TMP/revoked.txt" | tr -d ' ')
NKEPT=$(wc -l <"$TMP/kept.txt" | tr -d ' ')
echo "# killed at $KILLED_AT: $NREV acknowledged revocations, $NKEPT kept tokens"
[ "$NREV" -gt 5 ] && pass "$NREV revocations acknowledged before kill -9" ||
    fail "too few revocations before the kill ($NREV)"
xc_start "$XC_DIR" restarted || { fail "restart after kill -9: $(tail "$TMP/restarted.log")"; finish; }
PID=$(cat "$TMP/restarted.pid")
pass "server restarts on the database left by kill -9"
still=0
n=0
while read -r tok; do
	n=$((n + 1))
	xc_post ri /introspect orchestrator --data-urlencode "token=$tok"
	[ "$XC_CODE" = 200 ] && [ "$(jget ri .active)" = false ] || still=$((still + 1))
done <"$TMP/revoked.txt"
assert_eq "$still" 0 "all $n acknowledged revocations in force after restart (/introspect)"
lost=0
n=0
while read -r tok; do
	n=$((n + 1))
	xc_post ki /introspect orchestrator --data-urlencode "token=$tok"
	[ "$XC_CODE" = 200 ] && [ "$(jget ki .active)" = true ] || lost=$((lost + 1))
done <"$TMP/kept.txt"
assert_eq "$lost" 0 "all $n acknowledged, unrevoked tokens still active after restart"
python3 "$STRESS/statusbits.py" "$CA" "$TMP/revoked.txt" 1 >"$TMP/sb1" 2>&1
grep -q 'STATUS .* mismatched=0 ' "$TMP/sb1" &&
    pass "status lists show every acknowledged revocation ($(cat "$TMP/sb1"))" ||
    fail "status lists after restart: $(cat "$TMP/sb1")"
python3 "$STRESS/statusbits.py" "$CA" "$TMP/kept.txt" 0 >"$TMP/sb0" 2>&1
grep -q 'STATUS .* mismatched=0 ' "$TMP/sb0" &&
    pass "status lists leave unrevoked tokens valid ($(cat "$TMP/sb0"))" ||
    fail "status lists, unrevoked tokens: $(cat "$TMP/sb0")"
xc_stop restarted

# ---------------------------------------------------------------- 3. PostgreSQL stopped under load
PGBIN=
for d in "${PG_BINDIR:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV) /usr/local/bin /usr/bin; do
	if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
		PGBIN=$d
		break
	fi
done
if [ -z "$PGBIN" ]; then
	echo "# PostgreSQL server binaries not found: database-loss phase skipped"
	finish
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
	echo "# running as root without a postgres user: database-loss phase skipped"
	finish
fi
echo "# phase 3: PostgreSQL stopped during the load"
# The operator's bound on a connection attempt (libpq connect_timeout), which
# is all that limits a reconnect to an unreachable (black-holed) database.
PG_CONNECT_TIMEOUT=2
PGDATA=$TMP/pg
mkdir -p "$PGDATA"
AS_PG=
if [ "$(id -u)" = 0 ]; then
	chown postgres "$TMP" "$PGDATA"
	chmod 755 "$TMP"
	AS_PG="runuser -u postgres --"
fi
PGPORT=$(free_port)
pg_start() {
	$AS_PG "$PGBIN/pg_ctl" -D "$PGDATA/data" -l "$PGDATA/log" -w \
	    -o "-k $PGDATA -p $PGPORT -c listen_addresses=127.0.0.1" start >"$TMP/pgctl.log" 2>&1
}
pg_stop() {
	$AS_PG "$PGBIN/pg_ctl" -D "$PGDATA/data" -m fast -w stop >/dev/null 2>&1
}
psql_q() {
	$AS_PG "$PGBIN/psql" -h "$PGDATA" -p "$PGPORT" -U agentid -d postgres -At -c "$1" 2>&1
}
$AS_PG "$PGBIN/initdb" -D "$PGDATA/data" -U agentid -A trust >"$TMP/initdb.log" 2>&1 ||
    { fail "initdb: $(tail -5 "$TMP/initdb.log")"; finish; }
pg_start || { fail "PostgreSQL start: $(cat "$TMP/pgctl.log")"; finish; }
on_exit "$AS_PG '$PGBIN/pg_ctl' -D '$PGDATA/data' -m fast -w stop >/dev/null 2>&1"
XC_DIR=$TMP/p
XC_PORT=$(free_port)
B=https://127.0.0.1:$XC_PORT
mkdir -p "$XC_DIR"
cp -r "$TMP/x/." "$XC_DIR/"
rm -f "$XC_DIR"/exchange.db*
xc_config "$XC_DIR" "$XC_PORT" "storage:
  driver: postgres
  conninfo: host=127.0.0.1 port=$PGPORT user=agentid dbname=postgres connect_timeout=$PG_CONNECT_TIMEOUT"
CA=$XC_DIR/server.pem
xc_start "$XC_DIR" pgnode || { fail "server start on PostgreSQL"; finish; }
PID=$(cat "$TMP/pgnode.pid")
prepare_bodies "$TMP/pgbodies" || { fail "cannot prepare bodies (PostgreSQL)"; finish; }
# A revoked and a live token from before the outage.
ORCH=$(xc_jwt orchestrator --ttl 3600)
xc_post pa /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT -d task_id=PG-A
PRE_LIVE=$(jget pa .access_token)
xc_post pb /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT -d task_id=PG-B
PRE_REV=$(jget pb .access_token)
xc_post pr /revoke orchestrator --data-urlencode "token=$PRE_REV"
assert_eq "$XC_CODE" 200 "revocation acknowledged before the outage"

wrk_run 5 "$TMP/wrk3a.out" "$TMP/pgbodies"
wait "$WRK_PID"
assert_eq "$(field s500 "$TMP/wrk3a.out")+$(field s503 "$TMP/wrk3a.out")" "0+0" \
    "PostgreSQL store: no 5xx under load with the database up ($(field requests "$TMP/wrk3a.out") requests)"

wrk_run 8 "$TMP/wrk3b.out" "$TMP/pgbodies"
sleep 1
pg_stop && pass "PostgreSQL stopped during the load" || fail "pg_ctl stop"
sleep 1
# Direct probes while the database is down: a clear 503, promptly.
probe() { # probe NAME CRED PATH [curl args]: sets XC_CODE and P_TIME
	name=$1
	cred=$2
	path=$3
	shift 3
	[ "$cred" = none ] || set -- --cert "$XC_DIR/$cred.pem" --key "$XC_DIR/$cred.key" "$@"
	out=$(curl -s -o "$TMP/$name.json" -w '%{http_code} %{time_total}' --max-time 15 \
	    --cacert "$CA" "$@" "$B$path") || out="000 15"
	XC_CODE=${out% *}
	P_TIME=${out#* }
}
expect_503() { # expect_503 DESC
	if [ "$XC_CODE" = 503 ] && awk -v t="$P_TIME" 'BEGIN { exit !(t < 5) }'; then
		pass "database down: $1 -> 503 in ${P_TIME}s ($(head -c 80 "$TMP/pr.json" | tr -d '\n'))"
	else
		fail "database down: $1 -> $XC_CODE in ${P_TIME}s, want 503 within 5s: $(head -c 200 "$TMP/pr.json")"
	fi
}
probe pr none /token -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "@$TMP/pgbodies/body_valid"
expect_503 "token exchange"
probe pr orchestrator /introspect --data-urlencode "token=$PRE_LIVE"
expect_503 "introspection"
probe pr orchestrator /revoke --data-urlencode "token=$PRE_LIVE"
expect_503 "RFC 7009 revocation"
probe pr admin /admin/revoke -d task=PG-A
expect_503 "admin revocation"
probe pr none /statuslists/0
case $XC_CODE in
200 | 503) pass "database down: status list -> $XC_CODE in ${P_TIME}s (cached copy or 503)" ;;
*) fail "database down: status list -> $XC_CODE in ${P_TIME}s" ;;
esac
probe pr none /healthz
echo "# database down: /healthz -> $XC_CODE in ${P_TIME}s"
alive "$PID" && pass "server alive while the database is down" || fail "server died without its database"
wait "$WRK_PID"
S500=$(field s500 "$TMP/wrk3b.out")
S503=$(field s503 "$TMP/wrk3b.out")
TO=$(field timeouts "$TMP/wrk3b.out")
echo "# outage load: $(grep RESULT "$TMP/wrk3b.out")"
assert_eq "$S500" 0 "no 500 during the outage ($S503 503s)"
[ "$S503" -gt 0 ] && pass "the outage shows as 503s under load" || fail "no 503 seen during the outage"
assert_eq "$TO" 0 "no request timed out (10 s) during the outage"

# A database that is unreachable rather than down: the port accepts and then
# never answers (a network partition).  Only libpq's connect_timeout bounds
# a reconnect; a request must still end in a 503 within a few of those.
BH_BOUND=$((PG_CONNECT_TIMEOUT * 4 + 2))
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128); s.settimeout(0.2)
held, end = [], time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        held.append(s.accept()[0])
    except OSError:
        pass
' "$PGPORT" 25 >/dev/null 2>&1 &
BH=$!
sleep 0.5
( probe ph none /healthz; echo "$XC_CODE $P_TIME" >"$TMP/bh_health" ) &
HPB=$!
probe pr none /token -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "@$TMP/pgbodies/body_valid"
wait "$HPB"
if [ "$XC_CODE" = 503 ] && awk -v t="$P_TIME" -v b=$BH_BOUND 'BEGIN { exit !(t < b) }'; then
	pass "database unreachable (black hole): token exchange -> 503 in ${P_TIME}s (bound ${BH_BOUND}s)"
else
	fail "database unreachable (black hole): token exchange -> $XC_CODE in ${P_TIME}s, want 503 within ${BH_BOUND}s"
fi
echo "# database unreachable: a concurrent /healthz -> $(cat "$TMP/bh_health") (code, seconds)"
kill "$BH" 2>/dev/null
wait "$BH" 2>/dev/null

pg_start && pass "PostgreSQL back" || fail "PostgreSQL restart: $(cat "$TMP/pgctl.log")"
i=0
code=000
while [ $i -lt 20 ]; do
	code=$(curl -s -o "$TMP/rec.json" -w '%{http_code}' --max-time 10 --cacert "$CA" "$B/token" \
	    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "@$TMP/pgbodies/body_valid")
	[ "$code" = 200 ] && break
	sleep 0.5
	i=$((i + 1))
done
assert_eq "$code" 200 "exchanges succeed again once PostgreSQL is back (after ${i} retries)"
wrk_run 5 "$TMP/wrk3c.out" "$TMP/pgbodies"
wait "$WRK_PID"
assert_eq "$(field s500 "$TMP/wrk3c.out")+$(field s503 "$TMP/wrk3c.out")" "0+0" \
    "no 5xx under load after recovery ($(field requests "$TMP/wrk3c.out") requests)"
xc_post q1 /introspect orchestrator --data-urlencode "token=$PRE_LIVE"
assert_eq "$(jget q1 .active)" true "a token issued before the outage is still active"
xc_post q2 /introspect orchestrator --data-urlencode "token=$PRE_REV"
assert_eq "$(jget q2 .active)" false "a revocation made before the outage is still in force"
xc_post q3 /admin/revoke admin -d task=PG-A
xc_post q4 /introspect orchestrator --data-urlencode "token=$PRE_LIVE"
[ "$(jget q3 .revoked)" = 1 ] && [ "$(jget q4 .active)" = false ] &&
    pass "revocation works after recovery" || fail "revoke after recovery: $(cat "$TMP/q3.json")"
DUP=$(psql_q "SELECT count(*) - count(DISTINCT status_idx) FROM tokens")
assert_eq "$DUP" 0 "no status index handed out twice"
NEXT_OK=$(psql_q "SELECT (SELECT value FROM counters WHERE name = 'status_next') > coalesce(max(status_idx), -1) FROM tokens")
assert_eq "$NEXT_OK" t "the status-index counter is past every issued index"
ORPHAN=$(psql_q "SELECT count(*) FROM tokens t WHERE parent_jti IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tokens p WHERE p.jti = t.parent_jti)")
assert_eq "$ORPHAN" 0 "every delegated token's parent is in the ledger"
echo "# ledger: $(psql_q 'SELECT count(*) FROM tokens') tokens, $(psql_q 'SELECT count(*) FROM tokens WHERE revoked = 1') revoked"
xc_stop pgnode
grep -E 'postgres' "$TMP/pgnode.log" | sort | uniq -c | sort -rn | head -5 | sed 's/^/# server log: /'
finish
