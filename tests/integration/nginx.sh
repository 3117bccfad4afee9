#!/bin/sh
# Integration test of ngx_http_agentid_module: Debian's /usr/sbin/nginx
# loads the module built in this tree, runs with a private prefix and a
# generated configuration (four workers, loopback, random ports) and is
# stopped by PID.  Tokens come from the agentid CLI's development trust
# domain (JWT-SVIDs) and `agentid dev sign` (access tokens); DPoP proofs
# are signed with Ed25519 by the openssl command (alg EdDSA, and Ed25519).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${NGINX_MODULE:-$top_builddir/nginx-module/ngx_http_agentid_module.so}

[ -x "$NGINX" ] || skip "nginx not found at $NGINX"
[ -f "$MODULE" ] || skip "module not built at $MODULE (make nginx-module)"
[ -x "$AGENTID" ] || skip "agentid binary not found at $AGENTID"
command -v curl >/dev/null 2>&1 || skip "curl not found"
command -v openssl >/dev/null 2>&1 || skip "openssl command not found"

# A libagentid built with sanitizers needs their runtime loaded first.
NGX_ENV=
if ldd "$top_builddir/.libs/libagentid.so" 2>/dev/null | grep -q libasan; then
	NGX_ENV="LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0"
fi

TD=example.org
CA=$TMP/ca
AUD=https://api.example.org
ISS=https://exchange.example.org
ORCH=spiffe://$TD/agent/orchestrator
SUMM=spiffe://$TD/agent/summarizer
USER_ID=spiffe://$TD/user/alice
NGX=$TMP/ngx
WORKERS=4
mkdir -p "$NGX/logs" "$NGX/tmp" "$TMP/www/api/sub" "$TMP/www/off" "$TMP/www/status"
echo "custom 401 page" >"$TMP/www/e401.html"
for d in bundle satisfy satisfy2 both both2 errpage mapped revoc revoc/open mtls any svid access scoped anyscope agents subjects depth claim leeway dpop dpopopt \
    inherit realm cache/own cache/own/sub cache/off cache/off/sub cache/inh; do
	mkdir -p "$TMP/www/$d"
	echo "hello $d" >"$TMP/www/$d/index.html"
done
echo "hello api" >"$TMP/www/api/index.html"
echo "hello sub" >"$TMP/www/api/sub/index.html"
echo "hello off" >"$TMP/www/off/index.html"
echo "open" >"$TMP/www/index.html"

b64url() {
	base64 | tr -d '\n' | tr '+/' '-_' | tr -d '='
}

# ---------------------------------------------------------------- keys and tokens
"$AGENTID" dev ca init --trust-domain "$TD" --dir "$CA" >/dev/null ||
	{ fail "agentid dev ca init"; finish; }
"$AGENTID" keygen --alg ES256 --out "$TMP/issuer.key" >/dev/null ||
	{ fail "agentid keygen"; finish; }
# The exchange server's keys: a bundle of no trust domain (issuer keys).
"$AGENTID" bundle --trust-domain issuer.test --use jwt-svid "$TMP/issuer.key" \
    >"$TMP/issuer.json" || { fail "agentid bundle"; finish; }
"$AGENTID" keygen --alg ES256 --out "$TMP/other.key" >/dev/null

svid() { # svid ID [extra args...]
	id=$1
	shift
	"$AGENTID" dev jwt-svid --dir "$CA" --id "$id" --audience "$AUD" "$@"
}

# access CLAIMS_JSON [extra args...]: an RFC 9068 access token from the "exchange".
access() {
	claims=$1
	shift
	"$AGENTID" dev sign --key "$TMP/issuer.key" --typ at+jwt --claims-json "$claims" "$@"
}

NOW=$(date +%s)
BASE="\"iss\":\"$ISS\",\"aud\":\"$AUD\",\"client_id\":\"orch\""
TOK_SVID=$(svid "$ORCH")
TOK_ACC=$(access "{$BASE,\"sub\":\"$USER_ID\",\"scope\":\"read write\",\"task\":\"t-42\",\
\"act\":{\"sub\":\"$SUMM\",\"act\":{\"sub\":\"$ORCH\"}}}")
TOK_READ=$(access "{$BASE,\"sub\":\"$USER_ID\",\"scope\":\"read\",\"task\":\"t-7\",\
\"act\":{\"sub\":\"$ORCH\"}}")
TOK_NOACT=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"admin\"}")
TOK_EXP10=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\",\"iat\":$((NOW - 100)),\
\"exp\":$((NOW - 10))}")
TOK_EXP100=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\",\"iat\":$((NOW - 300)),\
\"exp\":$((NOW - 100))}")
TOK_BADISS=$(access "{\"iss\":\"https://evil.example\",\"aud\":\"$AUD\",\"client_id\":\"x\",\
\"sub\":\"$ORCH\",\"scope\":\"read\"}")
TOK_BADAUD=$(access "{\"iss\":\"$ISS\",\"aud\":\"https://other.example\",\"client_id\":\"x\",\
\"sub\":\"$ORCH\",\"scope\":\"read\"}")
TOK_OTHERKEY=$("$AGENTID" dev sign --key "$TMP/other.key" --typ at+jwt \
    --claims-json "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\"}")
# Same payload and header, signature of another token: a forged signature.
TOK_FORGED="${TOK_ACC%.*}.${TOK_READ##*.}"

if [ -z "$TOK_SVID" ] || [ -z "$TOK_ACC" ] || [ -z "$TOK_EXP10" ]; then
	fail "could not mint tokens"
	finish
fi

# ---------------------------------------------------------------- DPoP (RFC 9449) with Ed25519
openssl genpkey -algorithm ed25519 -out "$TMP/dpop.key" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$TMP/dpop2.key" 2>/dev/null
# raw 32-byte public key = the last 32 bytes of the SPKI DER
dpop_x() {
	openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | tail -c 32 | b64url
}
DPOP_X=$(dpop_x "$TMP/dpop.key")
DPOP_X2=$(dpop_x "$TMP/dpop2.key")
DPOP_JKT=$(printf '{"crv":"Ed25519","kty":"OKP","x":"%s"}' "$DPOP_X" |
	openssl dgst -sha256 -binary | b64url)

# proof KEYFILE X METHOD URL ACCESS_TOKEN [IAT] [JTI]
# The header alg is $P_ALG (default EdDSA; Ed25519 is the RFC 9864 name of the
# same signature); $P_JWK_ALG, when set, becomes the proof jwk's "alg".
proof() {
	p_iat=${6:-$(date +%s)}
	p_jti=${7:-$(openssl rand -hex 12)}
	p_ath=$(printf '%s' "$5" | openssl dgst -sha256 -binary | b64url)
	p_ja=
	[ -n "${P_JWK_ALG:-}" ] && p_ja=",\"alg\":\"$P_JWK_ALG\""
	p_h=$(printf '{"typ":"dpop+jwt","alg":"%s","jwk":{"kty":"OKP","crv":"Ed25519","x":"%s"%s}}' \
	    "${P_ALG:-EdDSA}" "$2" "$p_ja" | b64url)
	p_p=$(printf '{"jti":"%s","htm":"%s","htu":"%s","iat":%s,"ath":"%s"}' \
	    "$p_jti" "$3" "$4" "$p_iat" "$p_ath" | b64url)
	printf '%s.%s' "$p_h" "$p_p" >"$TMP/proof.in"
	p_s=$(openssl pkeyutl -sign -inkey "$1" -rawin -in "$TMP/proof.in" | b64url)
	printf '%s.%s.%s' "$p_h" "$p_p" "$p_s"
}

TOK_BOUND=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\",\"cnf\":{\"jkt\":\"$DPOP_JKT\"}}")

# ---------------------------------------------------------------- keys from a URL
mkdir -p "$TMP/www/keys"
"$AGENTID" keygen --alg ES256 --out "$TMP/url1.key" >/dev/null 2>&1
"$AGENTID" keygen --alg ES256 --out "$TMP/url2.key" >/dev/null 2>&1
"$AGENTID" bundle --trust-domain issuer.test --use jwt-svid "$TMP/url1.key" >"$TMP/www/keys/jwks.json"
url_tok() {
	"$AGENTID" dev sign --key "$1" --typ at+jwt --claims-json "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\"}"
}
TOK_URL1=$(url_tok "$TMP/url1.key")
TOK_URL2=$(url_tok "$TMP/url2.key")
cp "$CA/bundle.json" "$TMP/www/keys/bundle.json"

# ---------------------------------------------------------------- status lists and audit
SL_URI=https://exchange.example.org/status/1
SL_URI2=https://exchange.example.org/status/unknown
make_list() { # make_list [--key KEY] [--revoke IDX]... [--suspend IDX]...
	ml_key=$TMP/issuer.key
	if [ "${1:-}" = --key ]; then
		ml_key=$2
		shift 2
	fi
	"$AGENTID" status-list make --key "$ml_key" --uri "$SL_URI" --size 64 --ttl 1 \
	    "$@" --out "$TMP/status.jwt.new" >/dev/null && mv "$TMP/status.jwt.new" "$TMP/status.jwt"
}
make_list || fail "agentid status-list make"
TOK_S3=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\",\"status\":{\"status_list\":{\"idx\":3,\"uri\":\"$SL_URI\"}}}")
TOK_S5=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\",\"status\":{\"status_list\":{\"idx\":5,\"uri\":\"$SL_URI\"}}}")
TOK_SU=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\",\"status\":{\"status_list\":{\"idx\":5,\"uri\":\"$SL_URI2\"}}}")
"$AGENTID" keygen --alg EdDSA --out "$TMP/audit.key" >/dev/null 2>&1 || fail "audit key"

# ---------------------------------------------------------------- mTLS (RFC 8705)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$TMP/srv.key" -out "$TMP/srv.pem" >/dev/null 2>&1
"$AGENTID" dev x509-svid --dir "$CA" --id "$ORCH" --out-cert "$TMP/client.pem" \
    --out-key "$TMP/client.key" >/dev/null
"$AGENTID" dev x509-svid --dir "$CA" --id "$SUMM" --out-cert "$TMP/client2.pem" \
    --out-key "$TMP/client2.key" >/dev/null
X5T=$(openssl x509 -in "$TMP/client.pem" -outform DER | openssl dgst -sha256 -binary | b64url)
TOK_CERT=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\",\"cnf\":{\"x5t#S256\":\"$X5T\"}}")

# ---------------------------------------------------------------- nginx

write_conf() {
	{
		ngx_conf_head "$NGX" $WORKERS 256
		cat <<EOF
    log_format agentid '\$status \$request_uri agent=\$agentid_agent sub=\$agentid_subject '
                       'error=\$agentid_error depth=\$agentid_depth task=\$agentid_task '
                       'client=\$agentid_claim_client_id';
    access_log $NGX/logs/access.log agentid;
    log_format lists '\$status \$request_uri inm=\$http_if_none_match';
    agentid_cache 1m;
    map \$agentid_claim_task \$task_class { default other; t-42 main; }

    server {
        listen 127.0.0.1:$PORT2;
        location /keys/ { root $TMP/www; }
        location /status/ { root $TMP/www; access_log $NGX/logs/lists.log lists; }
        location / {
            return 200 "agent=\$http_x_agent sub=\$http_x_subject chain=\$http_x_chain depth=\$http_x_depth scope=\$http_x_scope task=\$http_x_task jti=\$http_x_jti td=\$http_x_td auth=\$http_authorization\n";
        }
    }

    server {
        listen 127.0.0.1:$PORT;
        root $TMP/www;

        agentid_bundle $CA/bundle.json;
        agentid_bundle $TMP/issuer.json;
        agentid_audience $AUD;
        agentid_issuer $ISS;

        agentid_audit $NGX/logs/audit.jsonl key=$TMP/audit.key;
        add_header X-Agent \$agentid_agent always;
        add_header X-Error \$agentid_error always;
        add_header X-Cache \$agentid_cache_status always;

        location / { }
        # configured issuers apply to every token; JWT-SVIDs carry no iss
        location /any/ { agentid on; agentid_issuer off; }
        location /realm/ { agentid "agent api"; agentid_issuer off; }
        location /svid/ { agentid on; agentid_profile jwt-svid; agentid_issuer off; }
        location /access/ { agentid on; agentid_profile access; }
        location /scoped/ { agentid on; agentid_require_scope read write; }
        location /anyscope/ { agentid on; agentid_require_any_scope admin write; }
        location /agents/ { agentid on; agentid_allow_agent $SUMM; }
        location /subjects/ { agentid on; agentid_allow_subject spiffe://$TD/user/*; }
        location /depth/ { agentid on; agentid_max_delegation_depth 1; }
        location /claim/ { agentid on; agentid_require_claim task t-42; }
        location /leeway/ { agentid on; agentid_leeway 0; }
        location /dpop/ { agentid on; agentid_dpop required; }
        location /satisfy/ { satisfy any; allow 127.0.0.1; deny all; agentid on; }
        location /satisfy2/ { satisfy any; deny all; agentid on; }
        location /both/ { agentid on; auth_request /_allow; }
        location /both2/ { agentid on; auth_request /_deny; }
        location = /_allow { internal; return 204; }
        location = /_deny { internal; return 403; }
        location /errpage/ { agentid on; error_page 401 /e401.html; }
        location = /e401.html { }
        location /mapped/ { agentid on; add_header X-Task-Class \$task_class always;
                            add_header X-Act \$agentid_claim_act always; }
        location /revoc/ {
            agentid on;
            agentid_status_list on;
            agentid_status_list_refresh 1s;
            agentid_status_list_file $SL_URI $TMP/status.jwt;
            location /revoc/open/ { agentid_status_fail open; }
        }
        location /dpopopt/ { agentid on; agentid_dpop optional; }
        location /cache/own/ { agentid on; agentid_cache 64k; location /cache/own/sub/ { } }
        location /cache/off/ { agentid on; agentid_cache off; location /cache/off/sub/ { } }
        location /cache/inh/ { agentid on; }
        location /proxy/ {
            agentid on;
            proxy_pass http://127.0.0.1:$PORT2/;
            proxy_set_header X-Agent \$agentid_agent;
            proxy_set_header X-Subject \$agentid_subject;
            proxy_set_header X-Chain \$agentid_chain;
            proxy_set_header X-Depth \$agentid_depth;
            proxy_set_header X-Scope \$agentid_scope;
            proxy_set_header X-Task \$agentid_task;
            proxy_set_header X-Jti \$agentid_jti;
            proxy_set_header X-Td \$agentid_trust_domain;
            proxy_set_header Authorization "";
        }
    }

    server {
        listen 127.0.0.1:$PORT3;
        root $TMP/www;
        agentid on;
        agentid_profile access;
        agentid_bundle $TMP/issuer.json;
        agentid_audience $AUD;
        agentid_issuer $ISS;
        agentid_require_scope read;
        agentid_cache off;
        add_header X-Cache \$agentid_cache_status always;

        location /api/ {
            agentid_cache 64k;
            location /api/sub/ { agentid_require_scope write; }
        }
        location /off/ { agentid off; }
        location /inherit/ { agentid_audience https://other.example; }
        location /svid/ { agentid_profile jwt-svid; agentid_bundle $CA/bundle.json;
                          agentid_require_scope off; agentid_issuer off; }
    }

    server {
        listen 127.0.0.1:$PORT4 ssl;
        ssl_certificate $TMP/srv.pem;
        ssl_certificate_key $TMP/srv.key;
        ssl_verify_client optional_no_ca;
        root $TMP/www;
        agentid_cache 64k;
        add_header X-Cache \$agentid_cache_status always;
        agentid on;
        agentid_bundle $TMP/issuer.json;
        agentid_audience $AUD;
        agentid_issuer $ISS;
        location /mtls/ { agentid_mtls_binding on; }
        location /any/ { }
    }

    server {
        listen 127.0.0.1:$PORT5;
        root $TMP/www;
        agentid on;
        agentid_profile access;
        agentid_audience $AUD;
        agentid_issuer $ISS;
        location /any/ { agentid_jwks_url http://127.0.0.1:$PORT2/keys/jwks.json; }
        location /svid/ { agentid_jwks_url http://127.0.0.1:$PORT2/keys/none.json; }
        location /bundle/ { agentid_profile jwt-svid; agentid_issuer off;
                            agentid_bundle_url http://127.0.0.1:$PORT2/keys/bundle.json; }
    }

    # reuseport: the kernel spreads new connections over all the workers
    server {
        listen 127.0.0.1:$PORT6 reuseport;
        root $TMP/www;
        agentid on;
        agentid_profile access;
        agentid_bundle $TMP/issuer.json;
        agentid_audience $AUD;
        agentid_issuer $ISS;
        agentid_status_list on;
        agentid_status_list_refresh 1s;
        location /revoc/ { }
    }
}
EOF
	} >"$NGX/nginx.conf"
}

start_nginx() {
	tries=0
	while :; do
		PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000))
		PORT2=$((PORT + 1))
		PORT3=$((PORT + 2))
		PORT4=$((PORT + 3))
		PORT5=$((PORT + 4))
		PORT6=$((PORT + 5))
		write_conf
		# a failed attempt (port taken) must not leave its errors behind
		: >"$NGX/logs/error.log"
		if env $NGX_ENV "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" \
		    >"$NGX/logs/start.log" 2>&1; then
			break
		fi
		tries=$((tries + 1))
		if [ $tries -ge 5 ] || ! grep -q "in use" "$NGX/logs/error.log"; then
			fail "nginx did not start"
			cat "$NGX/logs/start.log" "$NGX/logs/error.log" | tail -n 20 | sed 's/^/    /'
			finish
		fi
	done
	i=0
	while [ ! -s "$NGX/nginx.pid" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	on_exit '[ -s "$NGX/nginx.pid" ] && kill "$(cat "$NGX/nginx.pid")" 2>/dev/null; sleep 0.3'
}

# req PORT PATH [curl args...]: sets CODE; headers in $TMP/h, body in $TMP/b.
req() {
	r_port=$1
	r_path=$2
	shift 2
	CODE=$(curl -s -o "$TMP/b" -D "$TMP/h" -w '%{http_code}' "$@" \
	    "http://127.0.0.1:$r_port$r_path")
}

# answers N WANT COMMAND...: runs COMMAND (a request that sets CODE) N times; ok is the
# number of answers WANT.
answers() {
	a_n=$1
	a_want=$2
	shift 2
	ok=0
	while [ "$a_n" -gt 0 ]; do
		"$@"
		[ "$CODE" = "$a_want" ] && ok=$((ok + 1))
		a_n=$((a_n - 1))
	done
}

# check WANT PATH TOKEN DESC: a request with "Authorization: Bearer TOKEN".
check() {
	if [ -n "$3" ]; then
		req "$PORT" "$2" -H "Authorization: Bearer $3"
	else
		req "$PORT" "$2"
	fi
	assert_eq "$CODE" "$1" "$4"
}

# www REGEX DESC: the last response's WWW-Authenticate header matches.
www() {
	tr -d '\r' <"$TMP/h" | grep -i '^WWW-Authenticate:' >"$TMP/www.txt" || :
	assert_grep "$1" "$TMP/www.txt" "$2"
}

env $NGX_ENV "$NGINX" -t -p "$NGX" -c /dev/null >/dev/null 2>&1 || :
start_nginx

# ---------------------------------------------------------------- fresh start
# Every worker reads the lists of agentid_status_list_file before its first request: at once
# after a fresh start (the first tick, which would fetch, is a quarter second away) a token with
# a status claim is judged, never refused as status_unavailable.
answers 10 200 req "$PORT" /revoc/ -H "Authorization: Bearer $TOK_S3"
assert_eq "$ok" 10 "fresh start: a status-list file is in force from the first request"

# ---------------------------------------------------------------- module loads, basic decisions
check 200 /index.html "" "a location without agentid is open"
check 401 /any/ "" "no Authorization header: 401"
www '^WWW-Authenticate: Bearer realm="agentid"$' "no credentials: a challenge without error (RFC 6750 3.1)"
assert_grep '^X-Error: missing_token' "$TMP/h" "\$agentid_error is missing_token"
req "$PORT" /any/ -H "Authorization: Basic dXNlcjpwYXNz"
assert_eq "$CODE" 401 "another scheme (Basic) is a 401 challenge"
req "$PORT" /any/ -H "Authorization: Bearer"
assert_eq "$CODE" 400 "Bearer without a token: 400"
www 'error="invalid_request"' "400 says invalid_request"
req "$PORT" /any/ -H "Authorization: Bearer a,b"
assert_eq "$CODE" 400 "a token with characters outside b64token: 400"
check 401 /any/ "not-a-jwt" "a token that is no JWS: 401"
www 'error="invalid_token", error_description="malformed"' "malformed token reason"

check 200 /any/ "$TOK_SVID" "JWT-SVID accepted under profile any"
assert_grep "^X-Agent: $ORCH" "$TMP/h" "\$agentid_agent of a JWT-SVID is its sub"
check 200 /any/ "$TOK_ACC" "access token accepted under profile any"
assert_grep "^X-Agent: $SUMM" "$TMP/h" "\$agentid_agent is the current actor"
check 200 /svid/ "$TOK_SVID" "JWT-SVID accepted under profile jwt-svid"
check 401 /svid/ "$TOK_ACC" "access token refused under profile jwt-svid"
www 'error_description="(typ_mismatch|unknown_kid)"' "profile mismatch: typ_mismatch (or unknown_kid: the issuer key is not in the SVID's trust domain)"
check 200 /access/ "$TOK_ACC" "access token accepted under profile access"
check 401 /access/ "$TOK_SVID" "JWT-SVID refused under profile access"

check 401 /any/ "$TOK_EXP100" "expired token: 401"
www 'error="invalid_token", error_description="expired"' "expired reason"
check 200 /any/ "$TOK_EXP10" "expired 10 s ago: accepted within the default 30 s leeway"
check 401 /leeway/ "$TOK_EXP10" "expired 10 s ago: refused with agentid_leeway 0"
check 401 /access/ "$TOK_BADISS" "wrong issuer: 401"
www 'error_description="iss_mismatch"' "wrong issuer reason iss_mismatch"
check 200 /any/ "$TOK_BADISS" "agentid_issuer off: any issuer whose key is trusted"
check 401 /any/ "$TOK_BADAUD" "wrong audience: 401"
www 'error_description="aud_mismatch"' "wrong audience reason aud_mismatch"
check 401 /any/ "$TOK_OTHERKEY" "token of an untrusted key: 401"
www 'error_description="unknown_kid"' "untrusted key reason unknown_kid"
check 401 /any/ "$TOK_FORGED" "forged signature: 401"
www 'error_description="bad_signature"' "forged signature reason bad_signature"
check 401 /realm/ "$TOK_BADAUD" "agentid <realm>"
www '^WWW-Authenticate: Bearer realm="agent api", error="invalid_token"' "the realm is the directive's"

# ---------------------------------------------------------------- authorization rules
check 200 /scoped/ "$TOK_ACC" "require_scope read write: read+write token allowed"
check 403 /scoped/ "$TOK_READ" "require_scope read write: read-only token refused"
www 'error="insufficient_scope", error_description="insufficient_scope", scope="read write"' \
    "403 names the scopes (RFC 6750)"
assert_grep '^X-Error: insufficient_scope' "$TMP/h" "\$agentid_error insufficient_scope"
check 200 /anyscope/ "$TOK_ACC" "require_any_scope admin write: write token allowed"
check 200 /anyscope/ "$TOK_NOACT" "require_any_scope admin write: admin token allowed"
check 403 /anyscope/ "$TOK_READ" "require_any_scope admin write: read token refused"
check 200 /agents/ "$TOK_ACC" "allow_agent: the summarizer (current actor) is allowed"
check 403 /agents/ "$TOK_READ" "allow_agent: the orchestrator is not"
www 'error_description="agent_not_allowed"' "agent_not_allowed reason"
check 200 /subjects/ "$TOK_ACC" "allow_subject user/*: alice allowed"
check 403 /subjects/ "$TOK_NOACT" "allow_subject user/*: an agent subject refused"
www 'error_description="subject_not_allowed"' "subject_not_allowed reason"
check 200 /depth/ "$TOK_READ" "max depth 1: one hop allowed"
check 403 /depth/ "$TOK_ACC" "max depth 1: two hops refused"
www 'error_description="chain_too_deep"' "chain_too_deep reason"
check 200 /claim/ "$TOK_ACC" "require_claim task t-42: matching token allowed"
check 403 /claim/ "$TOK_READ" "require_claim task t-42: other task refused"
www 'error_description="claim_mismatch"' "claim_mismatch reason"

# ---------------------------------------------------------------- with other access modules and features
check 200 /satisfy/ "" "satisfy any: the allow rule lets a request without a token in"
check 401 /satisfy2/ "" "satisfy any + deny all: no token, 401 from agentid"
check 200 /satisfy2/ "$TOK_ACC" "satisfy any + deny all: a valid token is enough"
check 200 /both/ "$TOK_ACC" "auth_request (allowing) and agentid together: allowed"
check 401 /both/ "" "auth_request (allowing) and agentid: no token, 401"
check 403 /both2/ "$TOK_ACC" "auth_request (denying) and agentid: 403 although the token is valid"
check 401 /errpage/ "$TOK_EXP100" "error_page 401 keeps the status"
assert_grep '^custom 401 page' "$TMP/b" "error_page 401 serves the custom page"
check 200 /mapped/ "$TOK_ACC" "variables in a map"
assert_grep '^X-Task-Class: main' "$TMP/h" "map on \$agentid_claim_task"
assert_grep '^X-Act: \{"sub":"'"$SUMM"'","act":\{"sub":"'"$ORCH"'"\}\}' "$TMP/h" \
    "\$agentid_claim_act: an object as compact JSON"

# ---------------------------------------------------------------- variables to the upstream and the log
req "$PORT" /proxy/ -H "Authorization: Bearer $TOK_ACC"
assert_eq "$CODE" 200 "proxied request allowed"
assert_grep "agent=$SUMM sub=$USER_ID chain=$SUMM,$ORCH depth=2 scope=read write task=t-42 jti=[^ ]+ td=$TD auth=\$" \
    "$TMP/b" "upstream receives the identity headers, not the token"
sleep 0.2
assert_grep "^200 /proxy/ agent=$SUMM sub=$USER_ID error=- depth=2 task=t-42 client=orch$" \
    "$NGX/logs/access.log" "access log carries the identity and \$agentid_claim_client_id"
assert_grep "^401 /any/ agent=- sub=- error=expired " "$NGX/logs/access.log" \
    "access log carries \$agentid_error of a refusal"

# ---------------------------------------------------------------- inheritance and merging
req "$PORT3" /api/ -H "Authorization: Bearer $TOK_READ"
assert_eq "$CODE" 200 "server-level agentid/scope inherited by /api/"
req "$PORT3" /api/sub/ -H "Authorization: Bearer $TOK_READ"
assert_eq "$CODE" 403 "nested location's require_scope write replaces read"
req "$PORT3" /api/sub/ -H "Authorization: Bearer $TOK_ACC"
assert_eq "$CODE" 200 "nested location: a write token passes"
req "$PORT3" /off/
assert_eq "$CODE" 200 "agentid off in a location under a protected server"
req "$PORT3" /inherit/ -H "Authorization: Bearer $TOK_READ"
assert_eq "$CODE" 401 "overridden audience refuses the token"
req "$PORT3" /api/ -H "Authorization: Bearer $TOK_SVID"
assert_eq "$CODE" 401 "inherited profile access refuses a JWT-SVID"
req "$PORT3" /svid/ -H "Authorization: Bearer $TOK_SVID"
assert_eq "$CODE" 200 "location with its own bundle, profile and 'require_scope off'"

# ---------------------------------------------------------------- verified-token cache
check 200 /any/ "$TOK_ACC" "repeated token (cache hit) still allowed"
assert_grep "^X-Agent: $SUMM" "$TMP/h" "variables filled from the cache"
check 200 /scoped/ "$TOK_ACC" "cached under /any/ and /scoped/ separately"
check 403 /scoped/ "$TOK_READ" "cache never turns a refusal into a hit"

# agentid_cache at every level: own zone, off, inherited (http 1m; server PORT3 off with a
# location zone of its own; server PORT4 a server-level zone).  $agentid_cache_status says
# HIT, MISS or BYPASS.
TOK_C=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read write\",\"task\":\"cache\"}")
xcache() { # xcache WANT DESC: the last response's X-Cache header
	x=$(tr -d '\r' <"$TMP/h" | sed -n 's/^X-Cache: //p')
	assert_eq "$x" "$1" "$2"
}
check 200 /cache/own/ "$TOK_C" "location with its own cache zone: allowed"
xcache MISS "own zone: first request verifies (MISS)"
check 200 /cache/own/ "$TOK_C" "own zone: second request allowed"
xcache HIT "own zone: second request is a HIT"
check 200 /cache/own/sub/ "$TOK_C" "nested location without agentid_cache: allowed"
xcache MISS "nested location: its own key (MISS first)"
check 200 /cache/own/sub/ "$TOK_C" "nested location: again"
xcache HIT "nested location inherits the parent's zone (HIT)"
check 200 /cache/off/ "$TOK_C" "agentid_cache off: allowed"
check 200 /cache/off/ "$TOK_C" "agentid_cache off: again"
xcache BYPASS "agentid_cache off: never cached (BYPASS)"
check 200 /cache/off/sub/ "$TOK_C" "under agentid_cache off: again"
xcache BYPASS "a nested location inherits off (BYPASS)"
check 200 /cache/inh/ "$TOK_C" "location inheriting the http-level zone"
check 200 /cache/inh/ "$TOK_C" "location inheriting the http-level zone: again"
xcache HIT "the http-level zone is inherited (HIT)"
req "$PORT3" /api/ -H "Authorization: Bearer $TOK_C"
req "$PORT3" /api/ -H "Authorization: Bearer $TOK_C"
assert_eq "$CODE" 200 "server with agentid_cache off, location with a zone: allowed"
xcache HIT "a location's own zone under a server that says off (HIT)"
req "$PORT3" /api/sub/ -H "Authorization: Bearer $TOK_C"
req "$PORT3" /api/sub/ -H "Authorization: Bearer $TOK_C"
xcache HIT "its nested location inherits that zone (HIT)"
req "$PORT3" /svid/ -H "Authorization: Bearer $TOK_SVID"
req "$PORT3" /svid/ -H "Authorization: Bearer $TOK_SVID"
assert_eq "$CODE" 200 "server-level agentid_cache off: allowed"
xcache BYPASS "server-level agentid_cache off overrides the http level (BYPASS)"
for i in 1 2; do
	CODE=$(curl -sk -o "$TMP/b" -D "$TMP/h" -w '%{http_code}' -H "Authorization: Bearer $TOK_C" \
	    "https://127.0.0.1:$PORT4/any/")
done
assert_eq "$CODE" 200 "server-level agentid_cache: allowed"
xcache HIT "server-level zone (HIT)"

# ---------------------------------------------------------------- DPoP
U="http://127.0.0.1:$PORT/dpop/"
P=$(proof "$TMP/dpop.key" "$DPOP_X" GET "$U" "$TOK_BOUND")
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 200 "DPoP: valid proof accepted"
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 401 "DPoP: replayed proof refused"
www '^WWW-Authenticate: DPoP .*error="invalid_dpop_proof", error_description="dpop_replay"' \
    "replay reason dpop_replay"
www '^WWW-Authenticate: DPoP .*algs="ES256 ES384 ES512 RS256 PS256 EdDSA Ed25519"' \
    "DPoP algs lists EdDSA and Ed25519"
P=$(P_ALG=Ed25519; proof "$TMP/dpop.key" "$DPOP_X" GET "$U" "$TOK_BOUND")
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 200 "DPoP: proof with alg Ed25519 (RFC 9864) accepted"
P=$(P_ALG=Ed25519; P_JWK_ALG=Ed25519; proof "$TMP/dpop.key" "$DPOP_X" GET "$U" "$TOK_BOUND")
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 200 "DPoP: alg Ed25519 proof whose jwk says alg Ed25519 accepted"
P=$(P_ALG=Ed25519; P_JWK_ALG=EdDSA; proof "$TMP/dpop.key" "$DPOP_X" GET "$U" "$TOK_BOUND")
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 401 "DPoP: alg Ed25519 proof whose jwk says alg EdDSA refused"
www 'error_description="dpop_invalid"' "jwk alg EdDSA under alg Ed25519 reason dpop_invalid"
P=$(proof "$TMP/dpop.key" "$DPOP_X" POST "$U" "$TOK_BOUND")
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 401 "DPoP: wrong htm refused"
www 'error_description="dpop_invalid"' "wrong htm reason dpop_invalid"
P=$(proof "$TMP/dpop.key" "$DPOP_X" GET "http://127.0.0.1:$PORT/other/" "$TOK_BOUND")
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 401 "DPoP: wrong htu refused"
P=$(proof "$TMP/dpop.key" "$DPOP_X" GET "$U" "$TOK_BOUND" $(($(date +%s) - 600)))
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 401 "DPoP: proof iat too old refused"
P=$(proof "$TMP/dpop.key" "$DPOP_X" GET "$U" "$TOK_ACC")
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 401 "DPoP: ath of another token refused"
P=$(proof "$TMP/dpop2.key" "$DPOP_X2" GET "$U" "$TOK_BOUND")
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 401 "DPoP: proof by another key refused"
www 'error_description="binding_mismatch"' "other key reason binding_mismatch"
req "$PORT" /dpop/ -H "Authorization: DPoP $TOK_BOUND"
assert_eq "$CODE" 401 "DPoP: missing proof refused"
req "$PORT" /dpop/ -H "Authorization: Bearer $TOK_BOUND"
assert_eq "$CODE" 401 "DPoP-bound token as a bearer token refused"
www '^WWW-Authenticate: DPoP .*error_description="binding_required"' "downgrade reason binding_required"
check 401 /dpop/ "$TOK_ACC" "agentid_dpop required: an unbound bearer token refused"
check 401 /any/ "$TOK_BOUND" "a DPoP-bound token needs its proof even where DPoP is off"
check 200 /dpopopt/ "$TOK_ACC" "agentid_dpop optional: an unbound bearer token allowed"
U="http://127.0.0.1:$PORT/dpopopt/"
P=$(proof "$TMP/dpop.key" "$DPOP_X" GET "$U?q=1" "$TOK_BOUND")
req "$PORT" "/dpopopt/?q=1" -H "Authorization: DPoP $TOK_BOUND" -H "DPoP: $P"
assert_eq "$CODE" 200 "agentid_dpop optional: a bound token with its proof allowed (query ignored)"

# ---------------------------------------------------------------- status lists
sleep 1.5
for i in 1 2 3; do
	check 200 /revoc/ "$TOK_S3" "status list: valid entry 3 allowed ($i)"
done
check 200 /revoc/ "$TOK_S5" "status list: valid entry 5 allowed"
check 401 /revoc/ "$TOK_SU" "status list: a list that cannot be fetched fails closed"
www 'error_description="status_unavailable"' "unknown list reason status_unavailable"
check 200 /revoc/open/ "$TOK_SU" "agentid_status_fail open: unavailable list allowed"
make_list --revoke 3
sleep 2.5
answers 6 401 req "$PORT" /revoc/ -H "Authorization: Bearer $TOK_S3"
assert_eq "$ok" 6 "revoked entry refused by every worker after the refresh (cached token too)"
www 'error_description="revoked"' "revocation reason revoked"
check 200 /revoc/ "$TOK_S5" "status list: entry 5 still allowed after 3 was revoked"
make_list --revoke 3 --suspend 5
sleep 2.5
check 401 /revoc/ "$TOK_S5" "status list (2 bits): a suspended entry is refused"
www 'error_description="suspended"' "suspension reason suspended"
make_list --key "$TMP/other.key"
sleep 2.5
check 401 /revoc/ "$TOK_S3" "a list signed by an untrusted key is ignored: the last good list stays"
assert_grep 'status list refresh: (unknown_kid|bad_signature)' "$NGX/logs/error.log" \
    "the rejected list is logged"
check 200 /any/ "$TOK_S3" "a location without agentid_status_list does not check revocation"

# A list fetched over HTTP, shared by the workers: one of them fetches it when it is due
# (ttl 1 s, agentid_status_list_refresh 1s) and the others take its bytes from the zone, so
# the list server sees about one request a second, not one per worker.  The list and the
# tokens name the list server's port, known only now.
HL_URI=http://127.0.0.1:$PORT2/status/list2.jwt
make_hlist() { # make_hlist [--revoke IDX]...
	"$AGENTID" status-list make --key "$TMP/issuer.key" --uri "$HL_URI" --size 64 --ttl 1 \
	    "$@" --out "$TMP/list2.new" >/dev/null && mv "$TMP/list2.new" "$TMP/www/status/list2.jwt"
}
make_hlist || fail "agentid status-list make (http)"
TOK_H3=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\",\"status\":{\"status_list\":{\"idx\":3,\"uri\":\"$HL_URI\"}}}")
TOK_H5=$(access "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\",\"status\":{\"status_list\":{\"idx\":5,\"uri\":\"$HL_URI\"}}}")
# hreq TOKEN: a request to the reuseport server (a new connection, so any worker)
hreq() {
	req "$PORT6" /revoc/ -H "Authorization: Bearer $1"
}
# Every worker must know the list: from a token (it logs that the list will be fetched) or
# from the zone, where another worker put it (it logs that it took it from there).
hl_workers() {
	grep -E "status list \"$HL_URI\" (will be fetched|taken from the zone)" "$NGX/logs/error.log" |
	    sed -E 's/^.*\] ([0-9]+)#.*$/\1/' | sort -u | wc -l | tr -d ' '
}
i=0
while [ "$(hl_workers)" -lt "$WORKERS" ] && [ $i -lt 300 ]; do
	hreq "$TOK_H3"
	i=$((i + 1))
done
assert_eq "$(hl_workers)" "$WORKERS" "every worker knows the HTTP status list"
sleep 2
answers 8 200 hreq "$TOK_H3"
assert_eq "$ok" 8 "HTTP status list: every worker has it (valid entry allowed)"
n0=$(wc -l <"$NGX/logs/lists.log")
sleep 6
n1=$(wc -l <"$NGX/logs/lists.log")
n=$((n1 - n0))
# $WORKERS workers fetching on their own would make about $WORKERS * 6 requests in 6 s.
if [ "$n" -ge 3 ] && [ "$n" -le 9 ]; then
	pass "$WORKERS workers: $n list fetches in 6 s at a 1 s refresh (one per period, not per worker)"
else
	fail "$WORKERS workers: $n list fetches in 6 s at a 1 s refresh, wanted 3..9"
	tail -n 30 "$NGX/logs/lists.log" | sed 's/^/    /'
fi
assert_grep '^304 /status/list2.jwt inm=[^-]' "$NGX/logs/lists.log" \
    "an unchanged list is confirmed with If-None-Match (304)"
make_hlist --revoke 3
sleep 2.5
answers 8 401 hreq "$TOK_H3"
assert_eq "$ok" 8 "shared HTTP list: the revocation reaches every worker after the refresh"
www 'error_description="revoked"' "shared HTTP list: reason revoked"
hreq "$TOK_H5"
assert_eq "$CODE" 200 "shared HTTP list: entry 5 still allowed"

# ---------------------------------------------------------------- mTLS binding
tls() { # tls PATH TOKEN [curl args...]
	t_path=$1
	t_tok=$2
	shift 2
	CODE=$(curl -sk -o "$TMP/b" -D "$TMP/h" -w '%{http_code}' -H "Authorization: Bearer $t_tok" \
	    "$@" "https://127.0.0.1:$PORT4$t_path")
}
tls /mtls/ "$TOK_CERT" --cert "$TMP/client.pem" --key "$TMP/client.key"
assert_eq "$CODE" 200 "mTLS: certificate-bound token with its certificate allowed"
tls /mtls/ "$TOK_CERT"
assert_eq "$CODE" 401 "mTLS: certificate-bound token without a client certificate refused"
www 'error_description="binding_mismatch"' "no certificate reason binding_mismatch"
tls /mtls/ "$TOK_CERT" --cert "$TMP/client2.pem" --key "$TMP/client2.key"
assert_eq "$CODE" 401 "mTLS: certificate-bound token with another certificate refused"
tls /mtls/ "$TOK_READ"
assert_eq "$CODE" 200 "mTLS: an unbound token needs no certificate"
tls /any/ "$TOK_CERT"
assert_eq "$CODE" 200 "agentid_mtls_binding off: cnf.x5t#S256 is not checked"

# ---------------------------------------------------------------- agentid_jwks_url
# until N PORT PATH TOKEN CODE: retries for up to N seconds until a request answers CODE.
until_code() {
	u_n=$(($1 * 5))
	while [ "$u_n" -gt 0 ]; do
		req "$2" "$3" -H "Authorization: Bearer $4"
		[ "$CODE" = "$5" ] && return 0
		sleep 0.2
		u_n=$((u_n - 1))
	done
	return 1
}
until_code 5 "$PORT5" /any/ "$TOK_URL1" 200
answers 6 200 req "$PORT5" /any/ -H "Authorization: Bearer $TOK_URL1"
assert_eq "$ok" 6 "agentid_jwks_url: keys fetched off the request path reach every worker"
req "$PORT5" /bundle/ -H "Authorization: Bearer $TOK_SVID"
assert_eq "$CODE" 200 "agentid_bundle_url: a SPIFFE bundle fetched from a URL verifies a JWT-SVID"
req "$PORT5" /svid/ -H "Authorization: Bearer $TOK_URL1"
assert_eq "$CODE" 401 "agentid_jwks_url that cannot be fetched: no keys, fail closed"
www 'error_description="(no_keys|unknown_kid)"' "fail closed reason"
"$AGENTID" bundle --trust-domain issuer.test --use jwt-svid "$TMP/url2.key" \
    >"$TMP/www/keys/jwks.json.new" && mv "$TMP/www/keys/jwks.json.new" "$TMP/www/keys/jwks.json"
sleep 5
req "$PORT5" /any/ -H "Authorization: Bearer $TOK_URL2"
assert_eq "$CODE" 401 "a token of a new key first meets unknown_kid (which asks for a refresh)"
if until_code 8 "$PORT5" /any/ "$TOK_URL2" 200; then
	pass "unknown kid: rate-limited refresh brings the new key without reload"
else
	fail "unknown kid: rate-limited refresh brings the new key without reload (got $CODE)"
fi
rm -f "$TMP/www/keys/jwks.json"
sleep 5
req "$PORT5" /any/ -H "Authorization: Bearer $TOK_URL1"
sleep 2.5
answers 6 200 req "$PORT5" /any/ -H "Authorization: Bearer $TOK_URL2"
assert_eq "$ok" 6 "JWKS URL down: the last keys keep working (stale-if-error)"
assert_grep 'fetching "http://127.0.0.1:[0-9]+/keys/jwks.json" failed' "$NGX/logs/error.log" \
    "the failed fetch is logged"

# ---------------------------------------------------------------- bundle rotation without reload
"$AGENTID" keygen --alg ES256 --out "$TMP/issuer2.key" >/dev/null
TOK_NEW=$("$AGENTID" dev sign --key "$TMP/issuer2.key" --typ at+jwt \
    --claims-json "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\"}")
check 401 /any/ "$TOK_NEW" "token of a key not yet in the bundle refused"
"$AGENTID" bundle --trust-domain issuer.test --use jwt-svid "$TMP/issuer2.key" \
    >"$TMP/issuer.json.new" && mv "$TMP/issuer.json.new" "$TMP/issuer.json"
sleep 1.2
answers 6 200 req "$PORT" /any/ -H "Authorization: Bearer $TOK_NEW"
assert_eq "$ok" 6 "rotated bundle picked up by every worker without reload"
check 401 /any/ "$TOK_READ" "token of the removed key refused after rotation (cache bound to trust)"
echo '{"keys": [' >"$TMP/issuer.json"
sleep 1.2
check 200 /any/ "$TOK_NEW" "a broken bundle file keeps the previous keys (stale-if-error)"
assert_grep "bundle .*issuer.json.* rejected" "$NGX/logs/error.log" "broken bundle logged"

# ---------------------------------------------------------------- reload under traffic
# Half the requests carry a status claim naming the shared HTTP list, which the workers
# learned from tokens, not from the configuration: a new worker must take it from the
# zone before its first request instead of refusing such tokens until a tick.
# The zone must hold the list signed by the new key before the reload: the workers' last good
# list (of the removed key) would let them accept the token, but no new worker could adopt it.
"$AGENTID" bundle --trust-domain issuer.test --use jwt-svid "$TMP/issuer2.key" >"$TMP/issuer.json"
n0=$(grep -c "status list \"$HL_URI\" updated" "$NGX/logs/error.log")
"$AGENTID" status-list make --key "$TMP/issuer2.key" --uri "$HL_URI" --size 64 --ttl 1 \
    --out "$TMP/list2.new" >/dev/null && mv "$TMP/list2.new" "$TMP/www/status/list2.jwt" ||
	fail "agentid status-list make (issuer2)"
i=0
while [ "$(grep -c "status list \"$HL_URI\" updated" "$NGX/logs/error.log")" -le "$n0" ] &&
	[ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
TOK_NEW_S=$("$AGENTID" dev sign --key "$TMP/issuer2.key" --typ at+jwt --claims-json \
    "{$BASE,\"sub\":\"$ORCH\",\"scope\":\"read\",\"status\":{\"status_list\":{\"idx\":5,\"uri\":\"$HL_URI\"}}}")
ok=0
i=0
while [ $ok -lt 12 ] && [ $i -lt 200 ]; do
	hreq "$TOK_NEW_S"
	if [ "$CODE" = 200 ]; then ok=$((ok + 1)); else ok=0; sleep 0.1; fi
	i=$((i + 1))
done
assert_eq "$ok" 12 "before the reload every worker accepts the status-list token of the new key"
(
	i=0
	while [ $i -lt 150 ]; do
		curl -s -o /dev/null -w '%{http_code} any\n' -H "Authorization: Bearer $TOK_NEW" \
		    "http://127.0.0.1:$PORT/any/"
		curl -s -o /dev/null -w '%{http_code} status\n' -H "Authorization: Bearer $TOK_NEW_S" \
		    "http://127.0.0.1:$PORT6/revoc/"
		i=$((i + 1))
	done
) >"$TMP/codes" &
LOAD=$!
sleep 0.2
env $NGX_ENV "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" -s reload
wait $LOAD
assert_no_grep '^(000|5..|401) any$' "$TMP/codes" "nginx -s reload under traffic: no failed request"
assert_no_grep '^(000|5..|401) status$' "$TMP/codes" \
    "nginx -s reload under traffic: tokens with a status claim never refused by a new worker"
assert_grep 'status list "http://[^"]*" taken from the zone' "$NGX/logs/error.log" \
    "new workers take the learned status list from the zone"
check 200 /any/ "$TOK_NEW" "allowed after reload"

# ---------------------------------------------------------------- configuration errors (nginx -t)
conf_error() { # conf_error REGEX DESC DIRECTIVES...
	c_re=$1
	c_desc=$2
	shift 2
	printf 'load_module %s;\npid %s;\nevents { }\nhttp { server { listen 127.0.0.1:1;\n location / { %s }\n} }\n' \
	    "$MODULE" "$TMP/bad.pid" "$*" >"$TMP/bad.conf"
	if env $NGX_ENV "$NGINX" -t -p "$NGX" -c "$TMP/bad.conf" >"$TMP/bad.out" 2>&1; then
		fail "nginx -t accepts: $c_desc"
	elif grep -Eq "$c_re" "$TMP/bad.out"; then
		pass "nginx -t refuses: $c_desc"
	else
		fail "nginx -t: $c_desc: $(cat "$TMP/bad.out")"
	fi
}
conf_error 'invalid profile' "an unknown profile" "agentid_profile bogus;"
conf_error 'invalid cache size' "a location cache smaller than 8 pages" "agentid_cache 4k;"
conf_error 'is duplicate' "agentid_cache twice at one level" "agentid_cache 64k; agentid_cache off;"
conf_error 'invalid realm' "a realm with a quote" "agentid 'a\"b';"
conf_error 'audience' "agentid on without an audience" \
    "agentid on; agentid_bundle $CA/bundle.json;"
conf_error 'invalid trust domain' "a bad trust domain" "agentid_bundle $CA/bundle.json Bad_TD;"
conf_error 'must be https' "a plain http URL to another host" \
    "agentid_jwks_url http://keys.example/jwks;"
echo '{"keys": 3}' >"$TMP/broken.json"
conf_error 'is invalid' "a bundle that does not parse" \
    "agentid on; agentid_audience $AUD; agentid_bundle $TMP/broken.json;"
conf_error 'invalid' "a bad agent pattern" \
    "agentid on; agentid_audience $AUD; agentid_bundle $CA/bundle.json; agentid_allow_agent spiffe://x/a/../b;"

# ---------------------------------------------------------------- audit trail
kill "$(cat "$NGX/nginx.pid")"
i=0
while [ -s "$NGX/nginx.pid" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
# records are canonical JSON: members sorted by name
assert_grep '"agent":"'"$SUMM"'".*"event":"access.allowed"' "$NGX/logs/audit.jsonl" \
    "audit: access.allowed record with the acting agent"
assert_grep '"chain":\["'"$SUMM"'","'"$ORCH"'"\]' "$NGX/logs/audit.jsonl" \
    "audit: the record carries the whole chain"
assert_grep '"event":"access.denied".*"reason":"expired"' "$NGX/logs/audit.jsonl" \
    "audit: access.denied record with the reason"
# An authentic token refused by a rule or revoked: the denied record says who it was.
assert_grep '"agent":"spiffe://[^"]*","chain":\[.*"event":"access.denied".*"reason":"insufficient_scope"' \
    "$NGX/logs/audit.jsonl" "audit: a 403 (insufficient_scope) record names the agent and its chain"
assert_grep '"agent":"[^"]*".*"event":"access.denied".*"reason":"agent_not_allowed"' \
    "$NGX/logs/audit.jsonl" "audit: a 403 (agent_not_allowed) record names the refused agent"
assert_grep '"event":"access.denied".*"jti":"[^"]*".*"reason":"revoked"' "$NGX/logs/audit.jsonl" \
    "audit: a revoked token's record carries its jti"
# A token that is not authentic, or not in force, identifies nobody.
assert_no_grep '"agent":.*"reason":"(expired|bad_signature|malformed)"' "$NGX/logs/audit.jsonl" \
    "audit: no identity in the record of an expired or forged token"
assert_grep '"resource":"GET /proxy/"' "$NGX/logs/audit.jsonl" "audit: the request is recorded"
assert_exit 0 "$AGENTID" audit verify --key "$TMP/audit.key" "$NGX/logs/audit.jsonl"

assert_no_grep '\[(alert|emerg|crit)\]' "$NGX/logs/error.log" "no alert/crit/emerg in the error log"
assert_no_grep 'worker process .* exited on signal' "$NGX/logs/error.log" "no worker crashed"
assert_no_grep 'AddressSanitizer|LeakSanitizer|runtime error:' "$NGX/logs/error.log" \
    "no sanitizer report in the error log"

finish
