#!/bin/sh
# Integration test of the agentid CLI: every command, its exit codes, the
# reason line, tokens from stdin, tampered/expired/wrong-audience tokens,
# SPIFFE bundles against plain JWK Sets, and the dev CA's X.509-SVIDs
# checked by openssl itself.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -x "$AGENTID" ] || skip "agentid binary not found at $AGENTID"
command -v openssl >/dev/null 2>&1 || skip "openssl command not found"

TD=example.org
CA=$TMP/ca
ID=spiffe://$TD/agent/orchestrator
SUB_AGENT=spiffe://$TD/agent/summarizer
AUD=https://api.example.org
ISS=https://exchange.example.org
NOW=$(date +%s)

# base64url without padding of stdin.
b64url() {
	base64 | tr -d '\n' | tr '+/' '-_' | tr -d '='
}

# ---------------------------------------------------------------- help and usage
assert_exit 0 "$AGENTID" --help
assert_grep '^ *verify ' "$OUT" "agentid --help lists verify"
for cmd in verify inspect spiffe-id keygen bundle dev; do
	assert_exit 0 "$AGENTID" $cmd --help
	assert_grep '^usage: agentid' "$OUT" "$cmd --help prints a usage line on stdout"
done
assert_grep 'DEVELOPMENT ONLY' "$OUT" "dev --help says development only"
assert_exit 2 "$AGENTID" no-such-command
assert_exit 2 "$AGENTID"
assert_exit 2 "$AGENTID" verify --no-such-option x
assert_exit 2 "$AGENTID" dev no-such-thing

# ---------------------------------------------------------------- spiffe-id check
assert_exit 0 "$AGENTID" spiffe-id check "$ID" spiffe://example.org
assert_eq "$(cat "$OUT")" "$ID
spiffe://example.org" "spiffe-id check prints each valid ID"
assert_exit 1 "$AGENTID" spiffe-id check "$ID" spiffe://Example.org/x spiffe://bad/../x
assert_one_line '^invalid: bad_spiffe_id: .+: spiffe://Example.org/x$' "$ERR" \
	"spiffe-id check names the first invalid ID and why"
assert_exit 1 "$AGENTID" spiffe-id check spiffe://example.org/a/
assert_one_line '^invalid: bad_spiffe_id: ' "$ERR" "trailing slash rejected"
assert_exit 1 "$AGENTID" spiffe-id check https://example.org/a
assert_exit 1 "$AGENTID" spiffe-id check 'spiffe://example.org/a%20b'
assert_exit 2 "$AGENTID" spiffe-id check
assert_exit 2 "$AGENTID" spiffe-id frobnicate "$ID"

# ---------------------------------------------------------------- dev ca init
assert_exit 0 "$AGENTID" dev ca init --trust-domain $TD --dir "$CA"
assert_grep 'DEVELOPMENT ONLY' "$OUT" "dev ca init says development only"
for f in ca.pem ca.key jwt.key bundle.json td; do
	if [ -s "$CA/$f" ]; then pass "dev ca init wrote $f"; else fail "dev ca init wrote $f"; fi
done
assert_eq "$(cat "$CA/td")" "$TD" "DIR/td holds the trust domain name"
assert_eq "$(stat -c %a "$CA/ca.key")" 600 "ca.key has mode 0600"
assert_eq "$(stat -c %a "$CA/jwt.key")" 600 "jwt.key has mode 0600"
assert_grep '"use": "x509-svid"' "$CA/bundle.json" "bundle.json holds the X.509 authority"
assert_grep '"use": "jwt-svid"' "$CA/bundle.json" "bundle.json holds the JWT-SVID key"
assert_grep '"x5c"' "$CA/bundle.json" "the X.509 authority carries x5c"
assert_no_grep '"d"' "$CA/bundle.json" "bundle.json has no private key member"
assert_exit 2 "$AGENTID" dev ca init --trust-domain $TD --dir "$CA"
assert_grep 'exists' "$ERR" "dev ca init refuses to overwrite without --force"
assert_exit 2 "$AGENTID" dev ca init --trust-domain Bad_TD --dir "$TMP/bad"
openssl x509 -in "$CA/ca.pem" -noout -text >"$TMP/ca.txt" 2>&1
assert_grep 'CA:TRUE' "$TMP/ca.txt" "the dev CA has cA=true"
assert_grep 'Certificate Sign, CRL Sign' "$TMP/ca.txt" "the dev CA has keyCertSign and cRLSign"
assert_grep "URI:spiffe://$TD\$" "$TMP/ca.txt" "the dev CA names its trust domain in a URI SAN"

# ---------------------------------------------------------------- dev x509-svid
assert_exit 0 "$AGENTID" dev x509-svid --dir "$CA" --id "$ID"
CERT=$CA/svid/example.org_agent_orchestrator.pem
KEY=$CA/svid/example.org_agent_orchestrator.key
assert_grep "^certificate: $CERT\$" "$OUT" "dev x509-svid prints the certificate path"
assert_grep "^key: $KEY\$" "$OUT" "dev x509-svid prints the key path"
assert_eq "$(stat -c %a "$KEY")" 600 "the SVID key has mode 0600"
assert_exit 0 openssl verify -CAfile "$CA/ca.pem" -purpose any "$CERT"
assert_exit 0 openssl verify -CAfile "$CA/ca.pem" -purpose sslclient "$CERT"
assert_exit 0 openssl verify -CAfile "$CA/ca.pem" -purpose sslserver "$CERT"
openssl x509 -in "$CERT" -noout -text >"$TMP/leaf.txt" 2>&1
assert_eq "$(grep -o 'URI:[^,]*' "$TMP/leaf.txt" | wc -l | tr -d ' ')" 1 "the SVID has exactly one URI SAN"
assert_grep "URI:$ID\$" "$TMP/leaf.txt" "the URI SAN is the SPIFFE ID"
assert_grep 'CA:FALSE' "$TMP/leaf.txt" "the SVID has cA=false"
assert_grep 'Digital Signature' "$TMP/leaf.txt" "the SVID has digitalSignature"
assert_no_grep 'Certificate Sign|CRL Sign' "$TMP/leaf.txt" "the SVID has no keyCertSign/cRLSign"
assert_grep 'TLS Web Server Authentication, TLS Web Client Authentication' "$TMP/leaf.txt" \
	"the SVID has serverAuth and clientAuth"
assert_exit 0 sh -c "openssl x509 -in '$CERT' -noout -pubkey | openssl pkey -pubin -noout -text | grep -q 'prime256v1\\|P-256'"
assert_exit 0 "$AGENTID" dev x509-svid --dir "$CA" --id "$SUB_AGENT" --ttl 600 \
	--out-cert "$TMP/sub.pem" --out-key "$TMP/sub.key"
assert_exit 0 openssl verify -CAfile "$CA/ca.pem" -purpose any "$TMP/sub.pem"
assert_exit 2 "$AGENTID" dev x509-svid --dir "$CA" --id spiffe://other.org/agent
assert_grep 'trust domain' "$ERR" "an ID of another trust domain is refused"
assert_exit 2 "$AGENTID" dev x509-svid --dir "$CA" --id "spiffe://$TD/a/../b"
assert_exit 2 "$AGENTID" dev x509-svid --dir "$CA" --id "$ID"
assert_exit 0 "$AGENTID" dev x509-svid --dir "$CA" --id "$ID" --force
assert_exit 2 "$AGENTID" dev x509-svid --dir "$TMP/nowhere" --id "$ID"

# ---------------------------------------------------------------- dev jwt-svid + verify
assert_exit 0 "$AGENTID" dev jwt-svid --dir "$CA" --id "$ID" --audience "$AUD" --ttl 600
TOKEN=$(cat "$OUT")
printf '%s\n' "$TOKEN" >"$TMP/token"
case $TOKEN in
*.*.*) pass "dev jwt-svid prints a compact JWS" ;;
*) fail "dev jwt-svid prints a compact JWS: '$TOKEN'" ;;
esac
assert_exit 2 "$AGENTID" dev jwt-svid --dir "$CA" --id spiffe://other.org/x --audience "$AUD"
assert_exit 2 "$AGENTID" dev jwt-svid --dir "$CA" --id "$ID"

assert_exit 0 "$AGENTID" inspect "$TOKEN"
assert_grep '"typ": "JWT"' "$OUT" "JWT-SVID header has typ JWT"
assert_grep '"kid": "' "$OUT" "JWT-SVID header has a kid"
for c in sub aud exp iat jti; do
	assert_grep "\"$c\": " "$OUT" "JWT-SVID has $c"
done

assert_exit 0 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" "$TOKEN"
assert_grep "\"sub\": \"$ID\"" "$OUT" "verify prints the verified claims"
if [ ! -s "$ERR" ]; then pass "verify is silent on stderr when valid"; else fail "verify is silent on stderr when valid"; fi
assert_exit 0 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" - <"$TMP/token"
assert_grep "\"sub\": \"$ID\"" "$OUT" "verify reads the token from stdin with -"
assert_exit 0 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" "@$TMP/token"
assert_exit 0 "$AGENTID" verify "$TOKEN" --bundle "$CA/bundle.json" --audience "$AUD" \
	--profile jwt-svid
assert_exit 0 "$AGENTID" verify --bundle "$CA/bundle.json" --audience other \
	--audience "$AUD" "$TOKEN"

# Wrong audience.
assert_exit 1 "$AGENTID" verify --bundle "$CA/bundle.json" --audience https://other.example "$TOKEN"
assert_one_line '^invalid: aud_mismatch: audience not accepted( \(.*\))?$' "$ERR" \
	"wrong audience: one reason line"
if [ ! -s "$OUT" ]; then pass "nothing on stdout when invalid"; else fail "nothing on stdout when invalid"; fi

# Expired (as of one hour later) and not yet issued (as of one hour earlier).
assert_exit 1 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" \
	--now $((NOW + 3600)) "$TOKEN"
assert_one_line '^invalid: expired: token has expired' "$ERR" "expired token"
assert_exit 0 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" \
	--now $((NOW + 600 + 20)) "$TOKEN"
assert_exit 1 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" \
	--now $((NOW + 600 + 20)) --leeway 0 "$TOKEN"
assert_one_line '^invalid: expired: ' "$ERR" "leeway 0: expired just after exp"
assert_exit 1 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" \
	--now $((NOW - 3600)) "$TOKEN"
assert_one_line '^invalid: (iat_in_future|not_yet_valid): ' "$ERR" "token from the future"

# Tampered: another payload under the original signature, and a foreign signature.
H=$(echo "$TOKEN" | cut -d. -f1)
P=$(echo "$TOKEN" | cut -d. -f2)
S=$(echo "$TOKEN" | cut -d. -f3)
P2=$(printf '{"sub":"spiffe://%s/agent/root","aud":"%s","exp":%s,"iat":%s}' \
	$TD "$AUD" $((NOW + 600)) "$NOW" | b64url)
assert_exit 1 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" "$H.$P2.$S"
assert_one_line '^invalid: bad_signature: signature verification failed' "$ERR" \
	"tampered payload: bad_signature"
"$AGENTID" dev jwt-svid --dir "$CA" --id "$ID" --audience "$AUD" >"$TMP/token2"
S2=$(cut -d. -f3 "$TMP/token2")
assert_exit 1 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" "$H.$P.$S2"
assert_one_line '^invalid: bad_signature: ' "$ERR" "foreign signature: bad_signature"
assert_exit 1 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" "$H.$P"
assert_one_line '^invalid: malformed: ' "$ERR" "two parts: malformed"
assert_exit 1 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" "$H.$P.$S="
assert_one_line '^invalid: bad_encoding: ' "$ERR" "padding: bad_encoding"
NONE_H=$(printf '{"alg":"none","typ":"JWT"}' | b64url)
assert_exit 1 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" "$NONE_H.$P.$S"
assert_one_line '^invalid: alg_not_allowed: ' "$ERR" "alg none: alg_not_allowed"
assert_exit 1 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" - </dev/null
assert_one_line '^invalid: ' "$ERR" "empty stdin: one reason line"

# A bundle of another dev CA of the same trust domain knows no such kid.
"$AGENTID" dev ca init --trust-domain $TD --dir "$TMP/ca2" >/dev/null
assert_exit 1 "$AGENTID" verify --bundle "$TMP/ca2/bundle.json" --audience "$AUD" "$TOKEN"
assert_one_line '^invalid: unknown_kid: ' "$ERR" "key of another CA: unknown_kid"
# A trust domain we have no bundle for.
"$AGENTID" dev ca init --trust-domain other.org --dir "$TMP/ca3" >/dev/null
assert_exit 1 "$AGENTID" verify --bundle "$TMP/ca3/bundle.json" --audience "$AUD" "$TOKEN"
assert_one_line '^invalid: (untrusted_domain|unknown_kid|no_keys): ' "$ERR" \
	"bundle of another trust domain only: rejected"
# Both bundles: the right one is chosen by the token's trust domain.
assert_exit 0 "$AGENTID" verify --bundle "$TMP/ca3/bundle.json" --bundle "$CA/bundle.json" \
	--audience "$AUD" "$TOKEN"

# Usage and configuration errors exit 2.
assert_exit 2 "$AGENTID" verify --audience "$AUD" "$TOKEN"
assert_exit 2 "$AGENTID" verify --bundle "$CA/bundle.json" "$TOKEN"
assert_exit 2 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD"
assert_exit 2 "$AGENTID" verify --bundle "$TMP/missing.json" --audience "$AUD" "$TOKEN"
printf 'not json' >"$TMP/garbage.json"
assert_exit 2 "$AGENTID" verify --bundle "$TMP/garbage.json" --audience "$AUD" "$TOKEN"
assert_exit 2 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" --profile nope "$TOKEN"
assert_exit 2 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" --now soon "$TOKEN"
assert_exit 2 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" --trust-domain 'A B' "$TOKEN"
assert_exit 2 "$AGENTID" verify --bundle "$CA/bundle.json" --audience "$AUD" "$TOKEN" "$TOKEN"

# ---------------------------------------------------------------- inspect
assert_exit 0 "$AGENTID" inspect - <"$TMP/token"
assert_eq "$(head -n 1 "$ERR")" "WARNING: NOT VERIFIED -- decoded only" "inspect warns first on stderr"
assert_grep '"verified": false' "$OUT" "inspect says verified: false"
assert_grep '"header": \{' "$OUT" "inspect prints the header"
assert_grep '"claims": \{' "$OUT" "inspect prints the claims"
assert_exit 0 "$AGENTID" inspect "$H.$P2.$S"
assert_grep '"sub": "spiffe://example.org/agent/root"' "$OUT" "inspect decodes a tampered token too"
assert_exit 0 "$AGENTID" inspect "$NONE_H.$P."
assert_exit 1 "$AGENTID" inspect "hello world"
assert_one_line '^invalid: malformed: ' "$ERR" "inspect rejects non-JWS input"
assert_exit 1 "$AGENTID" inspect "$H.$P"
assert_exit 1 "$AGENTID" inspect "$(printf 'not json' | b64url).$P.$S"
assert_one_line '^invalid: (bad_json|malformed): ' "$ERR" "inspect rejects a header that is not JSON"
assert_exit 2 "$AGENTID" inspect

# ---------------------------------------------------------------- keygen
for alg in ES256 ES384 ES512 RS256 PS256 EdDSA; do
	assert_exit 0 "$AGENTID" keygen --alg $alg --out "$TMP/$alg.key"
	assert_eq "$(stat -c %a "$TMP/$alg.key")" 600 "$alg key has mode 0600"
	assert_grep '"kid": "[A-Za-z0-9_-]{43}"' "$OUT" "$alg public JWK has a thumbprint kid"
	assert_no_grep '"d"|"p"|"q"' "$OUT" "$alg public JWK has no private members"
	cp "$OUT" "$TMP/$alg.jwk"
done
assert_grep '"crv": "P-256"' "$TMP/ES256.jwk" "ES256 key is P-256"
assert_grep '"crv": "Ed25519"' "$TMP/EdDSA.jwk" "EdDSA key is Ed25519"
assert_grep '^-----BEGIN PRIVATE KEY-----' "$TMP/ES256.key" "keygen writes PKCS#8 PEM"
assert_exit 2 "$AGENTID" keygen --alg ES256 --out "$TMP/ES256.key"
assert_grep 'exists' "$ERR" "keygen refuses to overwrite"
cp "$TMP/ES256.key" "$TMP/ES256.old"
assert_exit 0 "$AGENTID" keygen --alg ES256 --out "$TMP/ES256.key" --force
if cmp -s "$TMP/ES256.key" "$TMP/ES256.old"; then fail "--force replaces the key"; else pass "--force replaces the key"; fi
assert_eq "$(stat -c %a "$TMP/ES256.key")" 600 "replaced key keeps mode 0600"
assert_exit 2 "$AGENTID" keygen --alg HS256 --out "$TMP/hs.key"
assert_exit 2 "$AGENTID" keygen --alg none --out "$TMP/none.key"
assert_exit 2 "$AGENTID" keygen --out "$TMP/x.key"
assert_exit 2 "$AGENTID" keygen --alg ES256
KID=$(sed -n 's/.*"kid": "\([^"]*\)".*/\1/p' "$TMP/ES256.jwk")

# ---------------------------------------------------------------- bundle
assert_exit 0 "$AGENTID" bundle --trust-domain $TD --sequence 7 --refresh-hint 300 \
	"$TMP/ES256.key" "$TMP/RS256.key" "$CA/ca.pem"
cp "$OUT" "$TMP/mixed-bundle.json"
assert_grep '"spiffe_sequence": 7' "$OUT" "bundle sets spiffe_sequence"
assert_grep '"spiffe_refresh_hint": 300' "$OUT" "bundle sets spiffe_refresh_hint"
assert_eq "$(grep -c '"use": "jwt-svid"' "$OUT")" 2 "keys default to use jwt-svid"
assert_eq "$(grep -c '"use": "x509-svid"' "$OUT")" 1 "certificates default to use x509-svid"
assert_no_grep '"d"' "$OUT" "bundle prints no private parts"
"$AGENTID" keygen --alg ES256 --out "$TMP/b.key" >"$TMP/b.jwk" 2>/dev/null
BKID=$(sed -n 's/.*"kid": "\([^"]*\)".*/\1/p' "$TMP/b.jwk")
assert_exit 0 "$AGENTID" bundle --trust-domain $TD "$TMP/b.key"
assert_grep "\"kid\": \"$BKID\"" "$OUT" "bundle kid is the thumbprint keygen printed"
assert_exit 0 "$AGENTID" bundle --trust-domain $TD --use jwt-svid "$CA/ca.pem"
assert_grep '"use": "jwt-svid"' "$OUT" "--use jwt-svid takes a certificate's key"
assert_exit 2 "$AGENTID" bundle --trust-domain $TD --use x509-svid "$TMP/b.key"
assert_exit 2 "$AGENTID" bundle --trust-domain $TD --use other "$TMP/b.key"
assert_exit 2 "$AGENTID" bundle "$TMP/b.key"
assert_exit 2 "$AGENTID" bundle --trust-domain $TD
assert_exit 2 "$AGENTID" bundle --trust-domain $TD "$TMP/garbage.json"

# ---------------------------------------------------------------- plain JWKS vs SPIFFE bundle
# A JWT-SVID signed by a keygen key, verified with a bundle and with a plain JWK Set.
"$AGENTID" dev sign --key "$TMP/b.key" --typ JWT \
	--claims-json "{\"sub\":\"$ID\",\"aud\":\"$AUD\"}" >"$TMP/tb" 2>"$ERR"
TB=$(cat "$TMP/tb")
"$AGENTID" bundle --trust-domain $TD "$TMP/b.key" >"$TMP/b.bundle.json"
printf '{"keys":[%s]}\n' "$(cat "$TMP/b.jwk")" >"$TMP/b.jwks.json"
assert_exit 0 "$AGENTID" verify --bundle "$TMP/b.bundle.json" --trust-domain $TD --audience "$AUD" "$TB"
assert_exit 0 "$AGENTID" verify --bundle "$TMP/b.jwks.json" --trust-domain $TD --audience "$AUD" "$TB"
assert_grep "\"sub\": \"$ID\"" "$OUT" "plain JWKS (with --trust-domain) verifies a JWT-SVID"
assert_exit 1 "$AGENTID" verify --bundle "$TMP/b.jwks.json" --trust-domain other.org \
	--audience "$AUD" "$TB"
assert_one_line '^invalid: (untrusted_domain|unknown_kid|no_keys): ' "$ERR" \
	"plain JWKS bound to another trust domain: rejected"

# ---------------------------------------------------------------- access tokens (dev sign)
ACCESS_CLAIMS="{\"iss\":\"$ISS\",\"sub\":\"spiffe://$TD/user/alice\",\"aud\":\"$AUD\",
\"client_id\":\"$ID\",\"scope\":\"tickets:read tickets:write\",\"task\":\"t-1\",
\"act\":{\"sub\":\"$SUB_AGENT\",\"act\":{\"sub\":\"$ID\"}}}"
"$AGENTID" keygen --alg EdDSA --out "$TMP/issuer.key" >"$TMP/issuer.jwk" 2>/dev/null
printf '{"keys":[%s]}\n' "$(cat "$TMP/issuer.jwk")" >"$TMP/issuer.jwks"
"$AGENTID" dev sign --key "$TMP/issuer.key" --typ at+jwt --ttl 300 \
	--claims-json "$ACCESS_CLAIMS" >"$TMP/at" 2>"$ERR"
AT=$(cat "$TMP/at")
V="$AGENTID verify --bundle $TMP/issuer.jwks --audience $AUD --issuer $ISS"
assert_exit 0 $V --profile access "$AT"
assert_grep '"act": \{' "$OUT" "access token: act printed"
assert_exit 0 $V "$AT"
assert_exit 0 $V --scope tickets:read --scope tickets:write "$AT"
assert_exit 1 $V --scope tickets:read --scope admin "$AT"
assert_one_line '^invalid: insufficient_scope: ' "$ERR" "missing scope: insufficient_scope"
assert_exit 0 $V --scope admin --scope tickets:write --any-scope "$AT"
assert_exit 1 $V --max-depth 1 "$AT"
assert_one_line '^invalid: chain_too_deep: ' "$ERR" "depth 2 over --max-depth 1: chain_too_deep"
assert_exit 0 $V --max-depth 2 "$AT"
assert_exit 0 $V --allow-agent "spiffe://$TD/agent/*" "$AT"
assert_exit 1 $V --allow-agent "$ID" "$AT"
assert_one_line '^invalid: agent_not_allowed: ' "$ERR" "current actor not allowed: agent_not_allowed"
assert_exit 1 "$AGENTID" verify --bundle "$TMP/issuer.jwks" --audience "$AUD" \
	--issuer https://evil.example "$AT"
assert_one_line '^invalid: iss_mismatch: ' "$ERR" "wrong issuer: iss_mismatch"
assert_exit 1 $V --profile jwt-svid "$AT"
assert_one_line '^invalid: (alg_not_allowed|typ_mismatch): ' "$ERR" \
	"EdDSA access token under the JWT-SVID profile: rejected"
assert_exit 1 $V --profile access "$TOKEN"
assert_one_line '^invalid: ' "$ERR" "JWT-SVID under the access profile: rejected"
"$AGENTID" dev sign --key "$TMP/issuer.key" --typ at+jwt \
	--claims-json "{\"iss\":\"$ISS\",\"sub\":\"spiffe://$TD/user/alice\",\"aud\":\"$AUD\",
\"client_id\":\"$ID\",\"act\":{\"sub\":\"$ID\",\"act\":{\"sub\":\"$ID\"}}}" >"$TMP/cyc"
assert_exit 1 $V "@$TMP/cyc"
assert_one_line '^invalid: chain_cycle: ' "$ERR" "an agent twice in act: chain_cycle"
assert_exit 2 "$AGENTID" dev sign --key "$TMP/issuer.key" --claims-json '[1]'
assert_exit 2 "$AGENTID" dev sign --key "$TMP/issuer.key" --alg HS256 --claims-json '{}'
assert_exit 2 "$AGENTID" dev sign --key "$TMP/issuer.key" --alg ES256 --claims-json '{}'

finish
