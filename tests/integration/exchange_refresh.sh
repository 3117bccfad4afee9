#!/bin/sh
# agentid-exchange with keys from the network: the trust domain's bundle comes
# from a SPIFFE bundle endpoint (bundle_url, https_web profile) and the IdP's
# keys from a jwks_url, both served over HTTPS by tests/integration/https_files.py
# with a private web CA that the exchange trusts through bundle_ca / jwks_ca.
# Checks: --check-config validates bundle_ca / jwks_ca (with line numbers);
# tokens of key A are accepted; after the files are rotated to key B the
# refresh (per spiffe_refresh_hint, raised to key_refresh.min_interval)
# accepts B and refuses A; with the endpoint down the last good keys keep
# working, the server keeps serving and says so (log, /metrics); an endpoint
# whose certificate bundle_ca did not sign gives no keys: its tokens are refused.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/exchange_lib.sh"

xc_require
command -v python3 >/dev/null 2>&1 || skip "python3 not installed"
XC_DIR=$TMP/x
XC_PORT=$(free_port)
mkdir -p "$XC_DIR"
xc_setup "$XC_DIR" || skip "cannot create test credentials"
D=$XC_DIR

# ---- web PKI of the key server: a CA, its server certificate, and a CA that signed nothing
mkca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/$1.key" \
	    -out "$D/$1.pem" -days 2 -subj "/CN=$1" -addext basicConstraints=critical,CA:TRUE \
	    -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
}
mkca webca && mkca otherca || skip "cannot create the web CAs"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$D/web.ext"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/web.key" \
    -out "$D/web.csr" -subj /CN=127.0.0.1 >/dev/null 2>&1 &&
    openssl x509 -req -in "$D/web.csr" -CA "$D/webca.pem" -CAkey "$D/webca.key" \
	-CAcreateserial -out "$D/web.pem" -days 2 -extfile "$D/web.ext" >/dev/null 2>&1 ||
    skip "cannot create the web server certificate"

# ---- key A (ca, idp.key) and key B (ca2, idp2.key) of the same issuers
"$AGENTID" dev ca init --trust-domain example.org --dir "$D/ca2" >/dev/null &&
    "$AGENTID" keygen --alg ES256 --out "$D/idp2.key" >/dev/null 2>&1 &&
    "$AGENTID" bundle --trust-domain idp.example "$D/idp2.key" >"$D/idp2.jwks" 2>/dev/null ||
    skip "cannot create the second keys"
WWW=$D/www
mkdir -p "$WWW"
# publish JWT_CA JWKS: the bundle keeps ca's X.509 authority (the clients' mTLS
# certificates) and takes its JWT authorities from JWT_CA; spiffe_refresh_hint 1.
publish() {
	jq --slurpfile j "$D/$1/bundle.json" \
	    '.keys = ([.keys[] | select(.use == "x509-svid")] + [$j[0].keys[] | select(.use == "jwt-svid")]) | .spiffe_refresh_hint = 1' \
	    "$D/ca/bundle.json" >"$WWW/bundle.json.tmp" && mv "$WWW/bundle.json.tmp" "$WWW/bundle.json"
	cp "$D/$2" "$WWW/idp.jwks.tmp" && mv "$WWW/idp.jwks.tmp" "$WWW/idp.jwks"
}
publish ca idp.jwks
cp "$D/evil/bundle.json" "$WWW/evil.json"

# web_start [PORT]: the key server, PID in $WEB_PID, port in $WPORT
web_start() {
	rm -f "$D/web.port"
	python3 "$top_srcdir/tests/integration/https_files.py" "$WWW" "$D/web.pem" "$D/web.key" \
	    "$D/web.port" ${1:-} 2>>"$TMP/web.log" &
	WEB_PID=$!
	on_exit "kill $WEB_PID 2>/dev/null"
	i=0
	while [ ! -s "$D/web.port" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	WPORT=$(cat "$D/web.port" 2>/dev/null)
	[ -n "$WPORT" ]
}
web_start || { fail "the HTTPS key server starts"; finish; }
W=https://127.0.0.1:$WPORT
curl -s -o /dev/null --cacert "$D/webca.pem" "$W/bundle.json" &&
    pass "the key server serves over HTTPS with its own CA" || fail "key server: curl"

# ---- configuration: keys from the key server; evil.example's endpoint is vouched for by the wrong CA
xc_config "$D" "$XC_PORT"
sed -i "s|^    bundle_file: ca/bundle.json|    bundle_url: $W/bundle.json\\
    bundle_ca: webca.pem|; s|^    jwks_file: idp.jwks|    jwks_url: $W/idp.jwks\\
    jwks_ca: webca.pem|" "$D/exchange.yaml"
cp "$D/exchange.yaml" "$D/good.yaml"
sed -i "s|^external_issuers:|  - name: evil.example\\
    bundle_url: $W/evil.json\\
    bundle_ca: otherca.pem\\
external_issuers:|" "$D/exchange.yaml"
printf 'key_refresh:\n  min_interval: 2\n' >>"$D/exchange.yaml"
printf 'key_refresh:\n  min_interval: 2\n' >>"$D/good.yaml"

# ---- --check-config
if "$AGENTID_EXCHANGE" --check-config "$D/good.yaml" >"$OUT" 2>"$ERR"; then
	pass "--check-config fetches bundle_url and jwks_url through bundle_ca / jwks_ca"
else
	fail "--check-config good.yaml: $(cat "$ERR")"
fi
assert_exit 1 "$AGENTID_EXCHANGE" --check-config "$D/exchange.yaml"
assert_grep "trust domain evil.example: $W/evil.json: fetch failed: .*certificate" "$ERR" \
    "--check-config: an endpoint whose certificate bundle_ca did not sign is an error"
# badcfg NAME SED-EXPR REGEX DESC: a variant of good.yaml must fail with REGEX on stderr
badcfg() {
	sed "$2" "$D/good.yaml" >"$D/$1.yaml"
	assert_exit 1 "$AGENTID_EXCHANGE" --check-config "$D/$1.yaml"
	assert_grep "$3" "$ERR" "$4"
}
L=$(grep -n '^    bundle_ca:' "$D/good.yaml" | cut -d: -f1)
badcfg noca "s|bundle_ca: webca.pem|bundle_ca: missing.pem|" \
    "noca.yaml:$L: 'bundle_ca': cannot open .*missing.pem" \
    "--check-config names the line of a bundle_ca that cannot be read"
L=$(grep -n '^    jwks_ca:' "$D/good.yaml" | cut -d: -f1)
badcfg notpem "s|jwks_ca: webca.pem|jwks_ca: idp.jwks|" \
    "notpem.yaml:$L: 'jwks_ca': .*idp.jwks holds no PEM certificate" \
    "--check-config names the line of a jwks_ca without certificates"
L=$(grep -n '^    bundle_url:' "$D/good.yaml" | cut -d: -f1)
badcfg plain "s|bundle_url: https://|bundle_url: http://|" \
    "plain.yaml:$L: 'bundle_url' must be an https URL" "--check-config refuses a plain-HTTP bundle_url"
badcfg fileca "s|bundle_url: .*|bundle_file: ca/bundle.json|" \
    "trust domain example.org: 'bundle_ca' applies to 'bundle_url'" \
    "--check-config refuses bundle_ca next to bundle_file"
L=$(grep -n '^  min_interval:' "$D/good.yaml" | cut -d: -f1)
badcfg zero "s|min_interval: 2|min_interval: 0|" \
    "zero.yaml:$L: 'min_interval' must be between 1 and 3600" \
    "--check-config refuses a refresh floor of 0"

# ---- the server starts although evil.example's endpoint is not trusted (fail closed for it)
xc_start "$D" node || { fail "server start"; finish; }
METRICS=$TMP/metrics.txt
metric() { # metric SERIES: its value on /metrics now
	curl -s --cacert "$D/server.pem" "https://127.0.0.1:$XC_PORT/metrics" >"$METRICS"
	awk -v s="$1" '$1 == s { print $2 }' "$METRICS"
}
ev_age() { metric "agentid_exchange_remote_keys_age_seconds{kind=\"bundle\",name=\"evil.example\"}"; }
assert_eq "$(ev_age)" -1 "/metrics: evil.example has no keys (age -1)"
[ "$(metric 'agentid_exchange_remote_keys_failures_total{kind="bundle",name="evil.example"}')" -ge 1 ] &&
    pass "/metrics counts evil.example's failed fetches" || fail "evil failures: $(cat "$METRICS")"
a=$(metric 'agentid_exchange_remote_keys_age_seconds{kind="bundle",name="example.org"}')
b=$(metric 'agentid_exchange_remote_keys_age_seconds{kind="jwks",name="https://idp.example"}')
[ -n "$a" ] && [ "$a" -ge 0 ] && [ -n "$b" ] && [ "$b" -ge 0 ] &&
    pass "/metrics: ages of the example.org bundle ($a s) and the IdP's JWKS ($b s)" ||
    fail "source ages: $(grep remote_keys "$METRICS")"
assert_eq "$(metric agentid_exchange_bundle_age_seconds)" -1 \
    "/metrics: the overall bundle age is -1 while a source has no keys"
assert_grep "trust domain evil.example: no keys, its SVIDs are refused: .*evil.json: fetch failed: .*certificate" \
    "$TMP/node.log" "the log says why evil.example has no keys"
assert_grep "refreshing bundle_url/jwks_url keys every 2 s \\(a spiffe_refresh_hint below key_refresh.min_interval was raised" \
    "$TMP/node.log" "a spiffe_refresh_hint of 1 s is raised to min_interval (2 s)"

# exchange NAME SUBJECT_TOKEN: orchestrator (mTLS) exchanges it
exchange() {
	xc_post "$1" /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$2" \
	    -d subject_token_type=$TT_JWT -d scope=read
}
# assertion NAME JWT: the JWT-SVID as client assertion (no mTLS)
assertion() {
	xc_post "$1" /token none -d grant_type=$TE --data-urlencode "subject_token=$2" \
	    -d subject_token_type=$TT_JWT -d scope=read \
	    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-spiffe \
	    --data-urlencode "client_assertion=$2"
}
user() { # user KEY: an IdP user token signed by KEY
	"$AGENTID" dev sign --key "$D/$1" --typ JWT --claim iss=https://idp.example \
	    --claim sub=alice --claim aud=agentid-exchange --claim scope=read
}
SVID_A=$(xc_jwt orchestrator)
SVID_B=$("$AGENTID" dev jwt-svid --dir "$D/ca2" --id spiffe://example.org/orchestrator \
    --audience "https://127.0.0.1:$XC_PORT")
SVID_EVIL=$("$AGENTID" dev jwt-svid --dir "$D/evil" --id spiffe://evil.example/orchestrator \
    --audience "https://127.0.0.1:$XC_PORT")
USER_A=$(user idp.key)
USER_B=$(user idp2.key)

exchange a1 "$SVID_A"
expect_ok a1 "a JWT-SVID of key A (bundle from bundle_url) is accepted"
assertion a1c "$SVID_A"
expect_ok a1c "a JWT-SVID of key A authenticates as client assertion"
exchange b1 "$SVID_B"
expect_oauth b1 400 invalid_grant "a JWT-SVID of key B is refused before the rotation"
exchange ua1 "$USER_A"
expect_ok ua1 "an IdP token of key A (JWKS from jwks_url) is accepted"
exchange ub1 "$USER_B"
expect_oauth ub1 400 invalid_grant "an IdP token of key B is refused before the rotation"
exchange e1 "$SVID_EVIL"
expect_oauth e1 400 invalid_grant "a JWT-SVID of the trust domain whose endpoint is untrusted is refused"

# ---- rotation: the files on the key server now hold key B
publish ca2 idp2.jwks
# granted TAG TOKEN: one exchange, which succeeds when the token is accepted
granted() {
	exchange "$1" "$2"
	[ "$XC_CODE" = 200 ]
}
wait_until 300 granted b2 "$SVID_B"
expect_ok b2 "after the rotation, the refresh brings key B: its JWT-SVID is accepted"
exchange a2 "$SVID_A"
expect_oauth a2 400 invalid_grant "after the rotation, a JWT-SVID of key A is refused"
assertion a2c "$SVID_A"
expect_oauth a2c 401 invalid_client "after the rotation, a client assertion of key A verified before is refused"
wait_until 300 granted ub2 "$USER_B"
expect_ok ub2 "after the rotation, an IdP token of key B is accepted"
exchange ua2 "$USER_A"
expect_oauth ua2 400 invalid_grant "after the rotation, an IdP token of key A is refused"
assert_grep "new keys from bundle_url/jwks_url in use" "$TMP/node.log" "the log says new keys are in use"

# ---- the key server goes away: the last good keys keep working
F0=$(metric 'agentid_exchange_remote_keys_failures_total{kind="bundle",name="example.org"}')
kill "$WEB_PID"
wait "$WEB_PID" 2>/dev/null
more_failures() {
	f=$(metric 'agentid_exchange_remote_keys_failures_total{kind="bundle",name="example.org"}')
	[ "${f:-0}" -gt "$F0" ]
}
wait_until 300 more_failures
[ "${f:-0}" -gt "$F0" ] && pass "/metrics counts the failed refreshes of the bundle endpoint" ||
    fail "failures with the endpoint down: $f (before: $F0)"
a=$(metric 'agentid_exchange_remote_keys_age_seconds{kind="bundle",name="example.org"}')
[ -n "$a" ] && [ "$a" -ge 1 ] && pass "/metrics: the bundle's age grows while its endpoint is down ($a s)" ||
    fail "bundle age with the endpoint down: $a"
assert_grep "bundle example.org: $W/bundle.json: fetch failed: .*; keeping the keys fetched [0-9]+ s ago" \
    "$TMP/node.log" "the log warns that the endpoint is down and the keys are stale"
exchange b3 "$SVID_B"
expect_ok b3 "with the endpoint down, key B (stale) still verifies"
exchange ub3 "$USER_B"
expect_ok ub3 "with the JWKS endpoint down, the IdP's key B (stale) still verifies"
exchange a3 "$SVID_A"
expect_oauth a3 400 invalid_grant "with the endpoint down, key A stays refused"
xc_get h /healthz
assert_eq "$XC_CODE" 200 "the server keeps serving with the endpoint down"

# ---- the key server is back: the next refresh succeeds again
web_start "$WPORT" || fail "the key server restarts on port $WPORT"
wait_until 300 grep -q 'bundle example.org: fetched again after' "$TMP/node.log"
assert_grep "bundle example.org: fetched again after [0-9]+ failure" "$TMP/node.log" \
    "the log says when the endpoint answers again"
exchange b4 "$SVID_B"
expect_ok b4 "key B verifies after the endpoint came back"
assert_eq "$(ev_age)" -1 "evil.example still has no keys (its certificate is still not vouched for)"
xc_stop node
finish
