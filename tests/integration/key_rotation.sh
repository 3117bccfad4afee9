#!/bin/sh
# The key-rotation runbook (docs/key-rotation.md) against a real
# agentid-exchange on loopback: prepare publishes the next key before it
# signs, promote switches signing while the old key stays published (tokens
# it signed keep verifying), retire withdraws it (they no longer verify) and
# destroys it.  Uses scripts/agentid-rotate-signing-key exactly as documented.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

AGENTID_EXCHANGE=${AGENTID_EXCHANGE:-$top_builddir/agentid-exchange}
[ -x "$AGENTID_EXCHANGE" ] || skip "agentid-exchange not built"
command -v curl >/dev/null 2>&1 || skip "curl not installed"
command -v python3 >/dev/null 2>&1 || skip "python3 not installed"
ROTATE=$top_srcdir/scripts/agentid-rotate-signing-key
export AGENTID AGENTID_EXCHANGE

D=$TMP/x
mkdir -p "$D/keys"
"$AGENTID" dev ca init --trust-domain rot.test --dir "$D/ca" >/dev/null 2>&1 ||
	{ fail "dev ca init"; finish; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
B=http://127.0.0.1:$PORT
cat >"$D/exchange.yaml" <<EOF
listen:
  - address: 127.0.0.1
    port: $PORT
    tls: false
issuer: $B
signing:
  alg: ES256
  current: $D/keys/current.pem
tokens:
  max_lifetime: 600
trust_domains:
  - name: rot.test
    bundle_file: ca/bundle.json
storage:
  driver: sqlite
  path: exchange.db
policy:
  - name: orchestrator
    agent: spiffe://rot.test/orch
    subject: "*"
    scopes: [read]
    audiences: [https://api.example]
EOF
# The current key gets a kid that starts with '-' (1 in 64 thumbprints): the
# script once passed kids to grep as patterns, which took such a kid for an
# option and refused to promote a published key.
i=0
while :; do
	kid=$("$AGENTID" keygen --alg ES256 --out "$D/keys/current.pem" --force 2>/dev/null |
	    sed -n 's/.*"kid": *"\([^"]*\)".*/\1/p')
	case $kid in -*) break ;; esac
	i=$((i + 1))
	[ $i -lt 3000 ] || { fail "no key with a kid starting with '-' in 3000 tries"; finish; }
done
chmod 600 "$D/keys/current.pem"
"$AGENTID_EXCHANGE" -c "$D/exchange.yaml" >"$TMP/exchange.log" 2>&1 &
XPID=$!
on_exit "kill $XPID 2>/dev/null"
i=0
until curl -fs -o /dev/null "$B/healthz"; do
	i=$((i + 1))
	[ $i -lt 100 ] || { fail "server did not start"; cat "$TMP/exchange.log"; finish; }
	sleep 0.1
done

rotate() {
	"$ROTATE" -c "$D/exchange.yaml" --keys "$D/keys" --owner "" --wait 5 \
	    --reload "kill -HUP $XPID" "$@"
}
nkeys() { curl -fs "$B/jwks" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["keys"]))'; }
kid_of_token() {
	printf '%s' "$1" | cut -d. -f1 | python3 -c '
import base64, json, sys
s = sys.stdin.read().strip(); s += "=" * (-len(s) % 4)
print(json.loads(base64.urlsafe_b64decode(s))["kid"])'
}
# An access token from the running server (JWT-SVID client assertion).
token() {
	svid=$("$AGENTID" dev jwt-svid --dir "$D/ca" --id spiffe://rot.test/orch --audience "$B")
	curl -fs "$B/token" -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
	    --data-urlencode "subject_token=$svid" \
	    -d subject_token_type=urn:ietf:params:oauth:token-type:jwt -d scope=read \
	    -d audience=https://api.example \
	    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-spiffe \
	    --data-urlencode "client_assertion=$svid" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
verifies() { # verifies TOKEN -- against the server's JWKS as published now
	curl -fs "$B/jwks" >"$TMP/jwks.now"
	"$AGENTID" verify --bundle "$TMP/jwks.now" --profile access --issuer "$B" \
	    --audience https://api.example "$1" >/dev/null 2>&1
}

assert_eq "$(nkeys)" 1 "start: one key published"
assert_exit 0 rotate status
assert_grep '^current .* published' "$OUT" "status: current key published"
OLD_KID=$(sed -n 's/^current \([^ ]*\) .*/\1/p' "$OUT")
T_OLD=$(token) || T_OLD=
[ -n "$T_OLD" ] && pass "token issued before rotation" || fail "token issued before rotation"
assert_eq "$(kid_of_token "$T_OLD")" "$OLD_KID" "it is signed by the current key"

# 1. prepare: the next key is published before it signs.
assert_exit 1 rotate promote
assert_grep 'no next key' "$ERR" "promote without a next key is refused"
assert_exit 0 rotate prepare
assert_grep 'is published' "$OUT" "prepare reports publication"
assert_eq "$(nkeys)" 2 "prepare: current and next published"
assert_grep '^  next: ' "$D/exchange.yaml" "configuration names the next key"
NEW_KID=$(rotate status | sed -n 's/^next \([^ ]*\) published.*/\1/p')
[ -n "$NEW_KID" ] && pass "status: next key published" || fail "status: next key published"
assert_eq "$(kid_of_token "$(token)")" "$OLD_KID" "prepare: the current key still signs"
assert_exit 1 rotate prepare
assert_grep 'exists already' "$ERR" "a second prepare is refused"

# 2. promote: the next key signs, the old one stays published.
assert_exit 0 rotate promote
T_NEW=$(token)
assert_eq "$(kid_of_token "$T_NEW")" "$NEW_KID" "promote: new tokens are signed by the new key"
assert_eq "$(nkeys)" 2 "promote: new current and retired key published"
verifies "$T_OLD" && pass "a token signed before the switch still verifies" ||
	fail "a token signed before the switch still verifies"
verifies "$T_NEW" && pass "a token signed after the switch verifies" ||
	fail "a token signed after the switch verifies"
assert_no_grep '^  next: ' "$D/exchange.yaml" "configuration has no next key after promote"
assert_grep '^    - .*/retired/.*\.pem' "$D/exchange.yaml" "configuration lists the retired key"

# 3. retire: too early with the default minimum age, then with --min-age 0.
assert_exit 0 rotate retire
assert_grep 'keeping' "$OUT" "retire keeps a key whose tokens may still live"
assert_eq "$(nkeys)" 2 "retired key still published"
assert_exit 0 rotate retire --min-age 0
assert_grep 'no longer published' "$OUT" "retire withdraws the old key"
assert_eq "$(nkeys)" 1 "retire: only the current key is published"
verifies "$T_OLD" && fail "a token of the withdrawn key no longer verifies" ||
	pass "a token of the withdrawn key no longer verifies"
verifies "$T_NEW" && pass "current tokens still verify" || fail "current tokens still verify"
[ -z "$(ls "$D/keys/retired")" ] && pass "the retired private key is destroyed" ||
	fail "the retired private key is destroyed"
"$AGENTID_EXCHANGE" --check-config "$D/exchange.yaml" >/dev/null 2>&1 &&
	pass "the rewritten configuration passes --check-config" ||
	fail "the rewritten configuration passes --check-config"

# A refused configuration changes nothing: break the file the rewrite depends on.
cp "$D/exchange.yaml" "$TMP/good.yaml"
mv "$D/ca/bundle.json" "$D/ca/bundle.json.away"
assert_exit 1 rotate prepare
[ ! -e "$D/keys/next.pem" ] && pass "refused prepare leaves no next key" ||
	fail "refused prepare leaves no next key"
cmp -s "$TMP/good.yaml" "$D/exchange.yaml" && pass "refused prepare leaves the configuration" ||
	fail "refused prepare leaves the configuration"
mv "$D/ca/bundle.json.away" "$D/ca/bundle.json"

kill -TERM $XPID
rc=0
wait $XPID || rc=$?
assert_eq "$rc" 0 "server stops cleanly"
finish
