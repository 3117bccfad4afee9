#!/bin/sh
# agentid-exchange operational limits and plumbing:
#  1. a request must arrive whole within limits.request_timeout: clients that
#     drip their headers or body a byte at a time are disconnected, while an
#     idle keep-alive connection lives until limits.timeout;
#  2. PostgreSQL unreachable (a port that accepts and never answers): requests
#     get 503 promptly, the connection warning is rate-limited, /healthz says
#     503 with the store named, and the node recovers by itself;
#  3. unix-domain socket listeners with plain HTTP and a configured mode;
#  4. limits.max_connections: the connection above the limit is closed while
#     the others are served, and the server accepts again once below it;
#  5. the sd_notify protocol (NOTIFY_SOCKET): READY=1 once listening,
#     RELOADING=1 and READY=1 around SIGHUP, STOPPING=1 on SIGTERM.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/exchange_lib.sh"

xc_require
command -v python3 >/dev/null 2>&1 || skip "python3 not installed"

XC_DIR=$TMP/x
XC_PORT=$(free_port)
mkdir -p "$XC_DIR"
xc_setup "$XC_DIR" || skip "cannot create test credentials"
CA=$XC_DIR/server.pem

# limits_config PORT LIMITS_LINES [LISTEN_LINES] [STORAGE]: the test configuration
# with extra lines under limits: and listen:.
limits_config() {
	xc_config "$XC_DIR" "$1" "${4:-}"
	awk -v lim="$2" -v lst="${3:-}" '
	{ print }
	/^limits:$/ && lim != "" { print lim }
	/^    port: / && lst != "" { print lst }' "$XC_DIR/exchange.yaml" >"$XC_DIR/e.tmp" &&
	    mv "$XC_DIR/e.tmp" "$XC_DIR/exchange.yaml"
}

# Python helpers over raw TLS connections.  drip KIND SECONDS: sends a request
# one byte per second and prints "closed AFTER" or "open AFTER".
cat >"$TMP/conns.py" <<'EOF'
import socket, ssl, sys, time
mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
HEAD = (b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n")
GET = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

def tls():
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                           server_hostname="127.0.0.1")

def closed(s, wait=0.05):
    try:
        s.settimeout(wait)
        return s.recv(4096) == b""
    except (socket.timeout, ssl.SSLWantReadError):
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True

def healthz(s):
    s.settimeout(5)
    s.sendall(GET)
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b" ")[1].decode() if data.startswith(b"HTTP/1.1") else "none"

if mode in ("header", "body"):
    limit = float(sys.argv[4])
    s = tls()
    payload = HEAD if mode == "header" else b"a" * 400
    if mode == "body":
        s.sendall(HEAD)
    start, pos = time.monotonic(), 0
    while time.monotonic() - start < limit:
        if pos < len(payload):
            try:
                s.sendall(payload[pos:pos + 1])
            except OSError:
                print("closed %.1f" % (time.monotonic() - start)); sys.exit(0)
            pos += 1
        if closed(s, 0.9):
            print("closed %.1f" % (time.monotonic() - start)); sys.exit(0)
    print("open %.1f" % (time.monotonic() - start))
elif mode == "idle":
    # A keep-alive connection after one request, then idle: how long it lives.
    s = tls()
    code = healthz(s)
    start = time.monotonic()
    while time.monotonic() - start < float(sys.argv[4]):
        if closed(s, 0.5):
            print("%s closed %.1f" % (code, time.monotonic() - start)); sys.exit(0)
    print("%s open %.1f" % (code, time.monotonic() - start))
elif mode == "maxconn":
    n = int(sys.argv[4])
    held = [tls() for _ in range(n)]
    time.sleep(0.3)
    try:
        extra = tls()
        extra_state = "closed" if closed(extra, 1.0) else "open"
    except (ssl.SSLError, OSError):
        extra_state = "refused"
    served = sum(1 for s in held if healthz(s) == "200")
    held[0].close()
    time.sleep(0.5)
    try:
        again = healthz(tls())
    except (ssl.SSLError, OSError):
        again = "none"
    print("extra=%s served=%d again=%s" % (extra_state, served, again))
EOF

# ---------------------------------------------------------------- 1. request deadline
limits_config "$XC_PORT" "  request_timeout: 3
  max_connections: 0"
xc_start "$XC_DIR" deadline || { fail "server start"; finish; }
python3 "$TMP/conns.py" header "$XC_PORT" "$CA" 12 >"$TMP/drip_h" 2>&1 &
DH=$!
python3 "$TMP/conns.py" body "$XC_PORT" "$CA" 12 >"$TMP/drip_b" 2>&1 &
DB=$!
python3 "$TMP/conns.py" idle "$XC_PORT" "$CA" 12 >"$TMP/idle" 2>&1 &
DI=$!
wait $DH $DB $DI
for kind in h b; do
	read -r state after <"$TMP/drip_$kind"
	if [ "$state" = closed ] && awk -v t="$after" 'BEGIN { exit !(t >= 2 && t <= 5.5) }'; then
		pass "request arriving a byte per second ($kind) closed after ${after}s (request_timeout 3)"
	else
		fail "request arriving a byte per second ($kind): $(cat "$TMP/drip_$kind") (want closed after ~3s)"
	fi
done
read -r code state after <"$TMP/idle"
if [ "$code" = 200 ] && [ "$state" = closed ] &&
    awk -v t="$after" 'BEGIN { exit !(t >= 4 && t <= 7.5) }'; then
	pass "idle keep-alive connection lives until the idle timeout (closed after ${after}s, timeout 5)"
else
	fail "idle keep-alive connection: $(cat "$TMP/idle") (want 200, closed after ~5s)"
fi
xc_get h1 /healthz
assert_eq "$XC_CODE" 200 "server serves after the slow clients"
xc_stop deadline

# ---------------------------------------------------------------- 3. unix socket listener
SOCK=$TMP/xc.sock
limits_config "$XC_PORT" "" "  - unix: $SOCK
    mode: \"0600\""
xc_start "$XC_DIR" unix || { fail "server start with a unix listener"; finish; }
[ -S "$SOCK" ] && pass "unix socket created" || fail "no unix socket at $SOCK"
MODE=$(stat -c %a "$SOCK" 2>/dev/null)
assert_eq "$MODE" 600 "unix socket mode is the configured 0600"
code=$(curl -s -o "$TMP/u.json" -w '%{http_code}' --unix-socket "$SOCK" http://localhost/healthz)
assert_eq "$code" 200 "plain HTTP /healthz over the unix socket"
code=$(curl -s -o "$TMP/u2.json" -w '%{http_code}' --unix-socket "$SOCK" http://localhost/jwks)
[ "$code" = 200 ] && [ "$(jq -r '.keys | length' "$TMP/u2.json")" -ge 1 ] &&
    pass "/jwks over the unix socket" || fail "/jwks over the unix socket: $code"
ORCH=$(xc_jwt orchestrator --ttl 600)
code=$(curl -s -o "$TMP/u3.json" -w '%{http_code}' --unix-socket "$SOCK" http://localhost/token \
    -d grant_type=$TE --data-urlencode "subject_token=$ORCH" -d subject_token_type=$TT_JWT \
    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-spiffe \
    --data-urlencode "client_assertion=$ORCH")
[ "$code" = 200 ] && [ "$(jq -r .token_type "$TMP/u3.json")" = Bearer ] &&
    pass "token exchange over the unix socket" ||
    fail "token exchange over the unix socket: $code $(head -c 200 "$TMP/u3.json")"
xc_get h2 /healthz
assert_eq "$XC_CODE" 200 "TLS listener still serves beside the unix socket"
xc_stop unix
[ -e "$SOCK" ] && fail "unix socket left behind after stop" || pass "unix socket removed on stop"
printf 'listen:\n  - unix: /tmp/x.sock\n    port: 1\n' >"$TMP/bad.yaml"
"$AGENTID_EXCHANGE" --check-config "$TMP/bad.yaml" >"$TMP/bad.out" 2>&1
assert_grep "either 'unix' or 'address'" "$TMP/bad.out" "unix together with port is a config error"

# ---------------------------------------------------------------- 4. max_connections
limits_config "$XC_PORT" "  max_connections: 3"
xc_start "$XC_DIR" maxconn || { fail "server start"; finish; }
python3 "$TMP/conns.py" maxconn "$XC_PORT" "$CA" 3 >"$TMP/mc" 2>&1
assert_grep "extra=(closed|refused) served=3 again=200" "$TMP/mc" \
    "max_connections 3: the 4th connection is closed, 3 served, accepted again below the limit"
grep -q 'connection limit reached' "$TMP/maxconn.log" &&
    pass "the connection limit is logged" || fail "no log line for the connection limit"
xc_stop maxconn

# ---------------------------------------------------------------- 5. sd_notify
NSOCK=$TMP/notify.sock
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(0.5)
end = time.monotonic() + 30
with open(sys.argv[2], "w") as out:
    while time.monotonic() < end:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            continue
        out.write(msg.replace("\n", " ").strip() + "\n"); out.flush()
        if "STOPPING=1" in msg:
            break
' "$NSOCK" "$TMP/notify.msgs" &
NL=$!
on_exit "kill $NL 2>/dev/null"
i=0
while [ ! -S "$NSOCK" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
limits_config "$XC_PORT" ""
NOTIFY_SOCKET=$NSOCK
export NOTIFY_SOCKET
xc_start "$XC_DIR" notify || { fail "server start"; finish; }
unset NOTIFY_SOCKET
sleep 0.3
grep -q '^READY=1' "$TMP/notify.msgs" && pass "READY=1 sent once listening" ||
    fail "no READY=1: $(cat "$TMP/notify.msgs")"
kill -HUP "$(cat "$TMP/notify.pid")"
sleep 1
grep -q 'RELOADING=1' "$TMP/notify.msgs" && [ "$(grep -c '^READY=1' "$TMP/notify.msgs")" -ge 2 ] &&
    pass "RELOADING=1 then READY=1 around SIGHUP" || fail "reload notifications: $(cat "$TMP/notify.msgs")"
xc_stop notify
wait $NL
grep -q 'STOPPING=1' "$TMP/notify.msgs" && pass "STOPPING=1 on SIGTERM" ||
    fail "no STOPPING=1: $(cat "$TMP/notify.msgs")"
sed 's/^/# notify: /' "$TMP/notify.msgs"

# ---------------------------------------------------------------- 2. PostgreSQL unreachable
PGBIN=
for d in "${PG_BINDIR:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV) /usr/local/bin /usr/bin; do
	if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
		PGBIN=$d
		break
	fi
done
if [ -z "$PGBIN" ] || { [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; }; then
	echo "# PostgreSQL server binaries (or the postgres user) not found: store-outage part skipped"
	finish
fi
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
$AS_PG "$PGBIN/initdb" -D "$PGDATA/data" -U agentid -A trust >"$TMP/initdb.log" 2>&1 ||
    { fail "initdb: $(tail -5 "$TMP/initdb.log")"; finish; }
pg_start || { fail "PostgreSQL start: $(cat "$TMP/pgctl.log")"; finish; }
on_exit "$AS_PG '$PGBIN/pg_ctl' -D '$PGDATA/data' -m fast -w stop >/dev/null 2>&1"
# No connect_timeout in conninfo: the server's default must bound reconnects.
limits_config "$XC_PORT" "" "" "storage:
  driver: postgres
  conninfo: host=127.0.0.1 port=$PGPORT user=agentid dbname=postgres"
xc_start "$XC_DIR" pg || { fail "server start on PostgreSQL"; finish; }
ORCH=$(xc_jwt orchestrator --ttl 600)
xc_post t1 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT
expect_ok t1 "exchange with PostgreSQL up"
$AS_PG "$PGBIN/pg_ctl" -D "$PGDATA/data" -m fast -w stop >/dev/null 2>&1
# The port now accepts connections and never answers.
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
' "$PGPORT" 14 >/dev/null 2>&1 &
BH=$!
on_exit "kill $BH 2>/dev/null"
sleep 0.5
WORST=0
n503=0
i=0
# Twenty exchanges, two at a time, against the black hole.
while [ $i -lt 10 ]; do
	pids=
	for j in 1 2; do
		curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 20 --cacert "$CA" \
		    --cert "$XC_DIR/orchestrator.pem" --key "$XC_DIR/orchestrator.key" \
		    "https://127.0.0.1:$XC_PORT/token" -d grant_type=$TE \
		    --data-urlencode "subject_token=$ORCH" -d subject_token_type=$TT_JWT \
		    >>"$TMP/bh.out.$j" &
		pids="$pids $!"
	done
	wait $pids
	i=$((i + 1))
done
cat "$TMP/bh.out.1" "$TMP/bh.out.2" >"$TMP/bh.out"
n503=$(grep -c '^503 ' "$TMP/bh.out")
WORST=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$TMP/bh.out")
assert_eq "$n503" 20 "store unreachable: every exchange answered 503"
awk -v t="$WORST" 'BEGIN { exit !(t < 6) }' &&
    pass "store unreachable: slowest 503 took ${WORST}s (connect_timeout default 2s)" ||
    fail "store unreachable: slowest answer ${WORST}s"
code=$(curl -s -o "$TMP/hz.json" -w '%{http_code}' --max-time 10 --cacert "$CA" \
    "https://127.0.0.1:$XC_PORT/healthz")
[ "$code" = 503 ] && [ "$(jq -r .status "$TMP/hz.json")" = unavailable ] &&
    [ "$(jq -r .store "$TMP/hz.json")" = unavailable ] &&
    pass "/healthz while the store is down: 503 $(cat "$TMP/hz.json")" ||
    fail "/healthz while the store is down: $code $(cat "$TMP/hz.json")"
WARN=$(grep -c 'postgres: connection lost' "$TMP/pg.log")
[ "$WARN" -ge 1 ] && [ "$WARN" -le 15 ] &&
    pass "connection-lost warning rate-limited ($WARN lines for 20 requests)" ||
    fail "connection-lost warnings: $WARN lines"
kill "$BH" 2>/dev/null
wait "$BH" 2>/dev/null
pg_start || fail "PostgreSQL restart"
# No traffic: the node must notice by itself that the store is back.
i=0
code=000
while [ $i -lt 40 ]; do
	code=$(curl -s -o "$TMP/hz2.json" -w '%{http_code}' --max-time 10 --cacert "$CA" \
	    "https://127.0.0.1:$XC_PORT/healthz")
	[ "$code" = 200 ] && break
	sleep 0.25
	i=$((i + 1))
done
assert_eq "$code" 200 "/healthz back to 200 once PostgreSQL returns, without traffic"
xc_post t2 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT
expect_ok t2 "exchange succeeds again after the outage"
xc_stop pg
finish
