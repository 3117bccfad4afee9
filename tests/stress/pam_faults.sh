#!/bin/sh
# Fault test of pam_agentid (issue 7): the real pam_agentid.so driven by
# pamtester under pam_wrapper (private service directory, /etc/pam.d
# untouched).  With the trust bundle missing, corrupt, truncated, empty, a
# directory or unreadable, and with the status list stale, expired, corrupt,
# or behind a loopback port that accepts and never answers, a valid token is
# refused (fail closed), the module logs a clear line through pam_syslog
# (pam_wrapper prints it on stderr as "SYSLOG(<priority>)"), pamtester is
# not killed by a signal, and no login takes longer than its bound (the
# status fetch timeout plus slack).  Every run is also wrapped in
# timeout(1), so a hang ends as a failure rather than a stuck test.
#
# The unreadable-bundle case runs pamtester as "nobody" through setpriv when
# this script runs as root (root reads a chmod 000 file anyway), or as
# ourselves otherwise.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

SO=$top_builddir/pam-module/.libs/pam_agentid.so
[ -r "$SO" ] || skip "pam_agentid.so not built at $SO"
[ -x "$AGENTID" ] || skip "agentid binary not found at $AGENTID"
command -v pamtester >/dev/null 2>&1 || skip "pamtester not installed (apt-get install pamtester)"
command -v python3 >/dev/null 2>&1 || skip "python3 not installed"
PWLIB=
for f in "${PAM_WRAPPER_LIB:-}" $(ls /usr/lib/*/libpam_wrapper.so /usr/lib/libpam_wrapper.so 2>/dev/null); do
	[ -n "$f" ] && [ -r "$f" ] && { PWLIB=$f; break; }
done
[ -n "$PWLIB" ] || skip "libpam_wrapper.so not found (apt-get install libpam-wrapper)"
USER1=daemon
id "$USER1" >/dev/null 2>&1 || skip "local user $USER1 missing"

# A module built with sanitizers needs their runtime loaded ahead of pam_wrapper.
PRELOAD=$PWLIB
if ldd "$SO" 2>/dev/null | grep -q libasan; then
	PRELOAD="$(gcc -print-file-name=libasan.so) $PWLIB"
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	export PAM_WRAPPER_DISABLE_DEEPBIND=1 UID_WRAPPER_DISABLE_DEEPBIND=1
fi

TD=example.org
ISS=https://exchange.example.org
AUD=spiffe://example.org/host/test
AGENT=spiffe://$TD/agent/deploy
STATUS_URI=https://exchange.example.org/status/1
# The status fetch timeout configured below, and the slack a login may take beyond it.
STATUS_TIMEOUT_MS=500
SLACK=1.5
chmod 755 "$TMP"
SVCDIR=$TMP/services
mkdir -p "$SVCDIR"

"$AGENTID" dev ca init --trust-domain "$TD" --dir "$TMP/ca" >/dev/null || { fail "dev ca"; finish; }
"$AGENTID" keygen --alg ES256 --out "$TMP/issuer.key" >/dev/null 2>&1 || { fail "keygen"; finish; }
"$AGENTID" bundle --trust-domain "$TD" --use jwt-svid "$TMP/issuer.key" >"$TMP/issuer.json" ||
	{ fail "issuer JWKS"; finish; }
TOKEN=$("$AGENTID" dev sign --key "$TMP/issuer.key" --typ at+jwt --ttl 600 \
    --claim iss="$ISS" --claim sub="spiffe://$TD/user/alice" --claim aud="$AUD" \
    --claim client_id="$AGENT" --claim scope=ssh:login \
    --claims-json "{\"act\":{\"sub\":\"$AGENT\"},\"status\":{\"status_list\":{\"idx\":1,\"uri\":\"$STATUS_URI\"}}}") ||
	{ fail "mint token"; finish; }
export AGENT_TOKEN="$TOKEN"
echo "$AGENT $USER1" >"$TMP/pam.map"
chmod 644 "$TMP/pam.map" "$TMP/issuer.json"

make_status() { # make_status FILE [agentid status-list make options]
	out=$1
	shift
	"$AGENTID" status-list make --key "$TMP/issuer.key" --uri "$STATUS_URI" --size 64 "$@" \
	    --out "$out" >/dev/null || fail "status-list make $*"
	chmod 644 "$out"
}
make_status "$TMP/status.jwt"

# service NAME OPTIONS...: a PAM service that reads the token from $AGENT_TOKEN.
service() {
	name=$1
	shift
	printf 'auth required %s source=env env=AGENT_TOKEN issuer=%s audience=%s profile=access scope=ssh:login map=%s show_reason %s\naccount required pam_permit.so\n' \
	    "$SO" "$ISS" "$AUD" "$TMP/pam.map" "$*" >"$SVCDIR/$name"
}
printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$SVCDIR/other"

# login SERVICE [RUNAS...]: pamtester authenticate under pam_wrapper; sets RC,
# ELAPSED (seconds); output in $TMP/SERVICE.out.
login() {
	svc=$1
	shift
	t0=$(date +%s.%N)
	"$@" env LD_PRELOAD="$PRELOAD" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$SVCDIR" \
	    PAM_WRAPPER_DEBUGLEVEL=2 timeout 20 pamtester -v "$svc" "$USER1" authenticate \
	    </dev/null >"$TMP/$svc.out" 2>&1
	RC=$?
	ELAPSED=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}

# refused SERVICE LOG_REGEX BOUND_SECONDS DESC [RUNAS...]
refused() {
	svc=$1
	re=$2
	bound=$3
	desc=$4
	shift 4
	login "$svc" "$@"
	if [ "$RC" = 124 ]; then
		fail "$desc: pamtester hung (killed by timeout after 20 s)"
	elif [ "$RC" -gt 128 ]; then
		fail "$desc: pamtester died of signal $((RC - 128))"
		tail -20 "$TMP/$svc.out" | sed 's/^/    /'
	elif [ "$RC" = 0 ]; then
		fail "$desc: the login was ALLOWED (fail open)"
	elif ! grep -E -q -- "$re" "$TMP/$svc.out"; then
		fail "$desc: refused (rc $RC) but no log line matches /$re/"
		grep SYSLOG "$TMP/$svc.out" | head -5 | sed 's/^/    /'
	elif grep -q -E 'AddressSanitizer|LeakSanitizer|runtime error' "$TMP/$svc.out"; then
		fail "$desc: sanitizer report"
		sed 's/^/    /' "$TMP/$svc.out" | head -30
	elif ! awk -v e="$ELAPSED" -v b="$bound" 'BEGIN { exit !(e <= b) }'; then
		fail "$desc: refused, but took ${ELAPSED}s (bound ${bound}s)"
	else
		pass "$desc: refused in ${ELAPSED}s, logged: $(grep -E -o -m1 -- "$re.*" "$TMP/$svc.out" | head -c 110)"
	fi
}

# ---------------------------------------------------------------- baseline
service good bundle="$TMP/issuer.json" status="$TMP/status.jwt"
login good
if [ "$RC" = 0 ]; then
	pass "baseline: a valid token logs in ($ELAPSED s)"
else
	fail "baseline login refused (rc $RC): $(tail -5 "$TMP/good.out")"
	finish
fi

# ---------------------------------------------------------------- trust bundle faults
B=3 # seconds: no network in these cases
service b_missing bundle="$TMP/nonexistent.json"
refused b_missing 'SYSLOG\(3\).*bundle' $B "bundle file missing"

printf '{"keys": [ {"kty": "EC", "crv": "P-256", "x": ' >"$TMP/corrupt.json"
head -c 3000 /dev/urandom | base64 >>"$TMP/corrupt.json"
chmod 644 "$TMP/corrupt.json"
service b_corrupt bundle="$TMP/corrupt.json"
refused b_corrupt 'SYSLOG\(3\).*bundle' $B "bundle file corrupt (not JSON)"

head -c "$(($(wc -c <"$TMP/issuer.json") / 2))" "$TMP/issuer.json" >"$TMP/trunc.json"
chmod 644 "$TMP/trunc.json"
service b_trunc bundle="$TMP/trunc.json"
refused b_trunc 'SYSLOG\(3\).*bundle' $B "bundle file truncated"

: >"$TMP/empty.json"
chmod 644 "$TMP/empty.json"
service b_empty bundle="$TMP/empty.json"
refused b_empty 'SYSLOG\(3\).*bundle' $B "bundle file empty"

printf '{"keys": []}\n' >"$TMP/nokeys.json"
chmod 644 "$TMP/nokeys.json"
service b_nokeys bundle="$TMP/nokeys.json"
refused b_nokeys 'reason=' $B "bundle with no keys (trusts nothing)"

mkdir -p "$TMP/dir.json"
service b_dir bundle="$TMP/dir.json"
refused b_dir 'SYSLOG\(3\).*bundle' $B "bundle path is a directory"

head -c 8000000 /dev/zero | tr '\0' ' ' >"$TMP/huge.json"
chmod 644 "$TMP/huge.json"
service b_huge bundle="$TMP/huge.json"
refused b_huge 'SYSLOG\(3\).*bundle' $B "bundle file of 8 MB of blanks"

cp "$TMP/issuer.json" "$TMP/unreadable.json"
chmod 000 "$TMP/unreadable.json"
service b_unread bundle="$TMP/unreadable.json"
if [ "$(id -u)" != 0 ]; then
	refused b_unread 'SYSLOG\(3\).*bundle' $B "bundle file unreadable (mode 000)"
elif command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
	# As root the file would be readable: drop to nobody, who can read everything else.
	refused b_unread 'SYSLOG\(3\).*bundle' $B "bundle file unreadable (mode 000, as nobody)" \
	    setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups
else
	echo "# root without setpriv or a nobody user: unreadable-bundle case skipped"
fi

# ---------------------------------------------------------------- status list faults
BASE="bundle=$TMP/issuer.json"
make_status "$TMP/status.old"
sleep 2
service s_stale "$BASE" status="$TMP/status.old" status_max_age=1
refused s_stale 'status_unavailable.*stale' $B "status list older than status_max_age"

make_status "$TMP/status.expired" --exp-in -60
service s_expired "$BASE" status="$TMP/status.expired"
refused s_expired 'status' $B "status list expired"

make_status "$TMP/status.corrupt"
printf 'x' | dd of="$TMP/status.corrupt" bs=1 seek=40 conv=notrunc 2>/dev/null
service s_corrupt "$BASE" status="$TMP/status.corrupt"
refused s_corrupt 'status' $B "status list corrupt"

service s_missing "$BASE" status="$TMP/nonexistent.jwt"
refused s_missing 'status' $B "status list file missing"

# A loopback port that accepts connections and never answers: the fetch must end at
# status_timeout, fail closed, and say so.
BH_PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64); s.settimeout(0.2)
held, end = [], time.monotonic() + 60
while time.monotonic() < end:
    try:
        held.append(s.accept()[0])
    except OSError:
        pass
' "$BH_PORT" &
BH=$!
on_exit "kill $BH 2>/dev/null"
sleep 0.3
# The token names the list by its URI; a URL status= must be that URI, so mint one for it.
BH_URI=http://127.0.0.1:$BH_PORT/status/1
AGENT_TOKEN=$("$AGENTID" dev sign --key "$TMP/issuer.key" --typ at+jwt --ttl 600 \
    --claim iss="$ISS" --claim sub="spiffe://$TD/user/alice" --claim aud="$AUD" \
    --claim client_id="$AGENT" --claim scope=ssh:login \
    --claims-json "{\"act\":{\"sub\":\"$AGENT\"},\"status\":{\"status_list\":{\"idx\":1,\"uri\":\"$BH_URI\"}}}")
export AGENT_TOKEN
TB=$(awk -v t=$STATUS_TIMEOUT_MS -v s=$SLACK 'BEGIN { printf "%.2f", t / 1000 + s }')
service s_blackhole "$BASE" status="$BH_URI" status_timeout=$STATUS_TIMEOUT_MS
refused s_blackhole 'status' "$TB" "status URL on a black-hole port (timeout ${STATUS_TIMEOUT_MS} ms)"
service s_blackhole_default "$BASE" status="$BH_URI"
refused s_blackhole_default 'status' 3.5 "status URL on a black-hole port (default timeout 2 s)"
kill "$BH" 2>/dev/null
wait "$BH" 2>/dev/null
service s_refused "$BASE" status="$BH_URI" status_timeout=$STATUS_TIMEOUT_MS
refused s_refused 'status' "$TB" "status URL on a closed port"
# status_fail_open is the operator's explicit opt-out: allowed, with a warning.
service s_open "$BASE" status="$BH_URI" status_timeout=$STATUS_TIMEOUT_MS status_fail_open
login s_open
if [ "$RC" = 0 ] && grep -q 'SYSLOG(4).*status_fail_open' "$TMP/s_open.out"; then
	pass "status_fail_open: allowed with a warning in ${ELAPSED}s"
else
	fail "status_fail_open: rc $RC: $(grep SYSLOG "$TMP/s_open.out" | head -3)"
fi
finish
