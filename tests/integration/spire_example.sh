#!/bin/sh
# Runs the SPIRE worked example (examples/spire/ and docs/spire.md) on
# loopback, as far as it can run without SPIRE itself (not packaged in
# Debian 12):
#
#  - the example's files are copied into a scratch root ($W) and only their
#    absolute paths, host names, ports and local user names are rewritten,
#    each by an explicit literal substitution that fails the test when its
#    text is missing, so the example and this test cannot drift apart
#    silently;
#  - the trust domain prod.example.com is an `agentid dev` CA; its bundle is
#    served over HTTPS by tests/integration/spire_example_server.py in
#    place of SPIRE's bundle endpoint (https_web profile), with a test Web
#    PKI CA that also certifies the exchange, nginx and the IdP's JWKS URL;
#  - each agent's credentials are laid out as spiffe-helper writes them,
#    with the file names helper.conf gives;
#  - agentid-exchange: --check-config, then a real start with the example
#    configuration; the guide's exchanges (docs/spire.md blocks marked
#    "<!-- test: NAME -->", rewritten the same way and run) with the
#    spiffe-helper files, widening refused, the IdP policy, SIGHUP reload;
#  - agentid bundle-sync started with the service file's ExecStart (plus
#    --cacert for the test CA), reloaded with its ExecReload signal;
#  - nginx -t and requests through nginx-api.conf with the module, to an
#    upstream that shows what nginx forwarded;
#  - PAM: pam_agentid.conf and agents.map through the pam-auth-update
#    profile's lines (debian/pam-configs/agentid), under pam_wrapper with
#    pamtester, token typed at the prompt;
#  - revocation by task, seen by nginx and PAM through the synced list.
#
# nginx and PAM parts are skipped (with a note) when the module, nginx,
# pamtester or pam_wrapper is missing; the rest needs agentid-exchange,
# curl, jq, openssl and python3.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

EXAMPLE=$top_srcdir/examples/spire
DOC=$top_srcdir/docs/spire.md
AGENTID_EXCHANGE=${AGENTID_EXCHANGE:-$top_builddir/agentid-exchange}
[ -x "$AGENTID_EXCHANGE" ] || skip "agentid-exchange not built"
for t in curl jq openssl python3; do
	command -v $t >/dev/null 2>&1 || skip "$t not installed"
done
NGINX_MODULE=$top_builddir/nginx-module/ngx_http_agentid_module.so
skip_nginx=
if [ ! -f "$NGINX_MODULE" ] || ! command -v nginx >/dev/null 2>&1; then
	skip_nginx="nginx or the module is not built"
fi
PAM_MODULE=$top_builddir/pam-module/.libs/pam_agentid.so
PAM_WRAPPER_LIB=$(pkg-config --libs pam_wrapper 2>/dev/null | tr -d ' ')
skip_pam=
if [ ! -f "$PAM_MODULE" ] || ! command -v pamtester >/dev/null 2>&1 ||
    [ -z "$PAM_WRAPPER_LIB" ] || [ ! -f "$PAM_WRAPPER_LIB" ]; then
	skip_pam="pam_agentid.so, pamtester or pam_wrapper missing"
fi

# In a sanitizer build the modules need the ASan runtime loaded first into Debian's
# nginx and pamtester, which are not instrumented (and leak by design: no leak check).
ASAN_LIB=
ASAN_ENV=
if ldd "$top_builddir/.libs/libagentid.so" 2>/dev/null | grep -q libasan; then
	ASAN_LIB=$(gcc -print-file-name=libasan.so)
	ASAN_ENV=ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0
fi

W=$TMP/root
mkdir -p "$W"
# nginx workers run as nobody when the test runs as root: let them read $W.
chmod 0755 "$TMP" "$W"
TD=prod.example.com
ORCH_ID=spiffe://$TD/orchestrator/planner
DEPLOY_ID=spiffe://$TD/worker/deploy/ci
TRIAGE_ID=spiffe://$TD/worker/triage
ADMIN_ID=spiffe://$TD/ops/revoker
API=https://api.prod.example.com
HOST_AUD=host:web-1.prod.example.com
PATH=$top_builddir:$PATH
export PATH

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for CMD... -- polls CMD for up to 15 s; the limit only bounds a hang.
wait_for() { wait_until 150 "$@"; }

# ---------------------------------------------------------------- literal rewriting
sed_pattern() { printf '%s' "$1" | sed 's/[][\\/.*^$]/\\&/g'; }
# (a replacement of several lines ends each but the last with a backslash)
sed_replacement() { printf '%s\n' "$1" | sed 's/[\\/&]/\\&/g; $!s/$/\\/'; }

# rewrite FILE OLD NEW -- replaces every OLD by NEW; a missing OLD ends the test.
rewrite() {
	if ! grep -qF -- "$2" "$1"; then
		fail "$(basename "$1") no longer contains '$2': update the example, its guide and this test together"
		finish
	fi
	sed -i "s/$(sed_pattern "$2")/$(sed_replacement "$3")/g" "$1"
}

# rewritten FILE -- nothing of the production hosts and paths is left outside comments.
rewritten() {
	grep -v '^[[:space:]]*#' "$1" >"$TMP/uncommented"
	if grep -Eq 'prod\.example\.com:8443|login\.example\.com/|(^|[[:space:]"=@])/(etc|var|run|usr)/' \
	    "$TMP/uncommented"; then
		fail "$(basename "$1"): every host and absolute path rewritten"
		grep -E 'prod\.example\.com:8443|login\.example\.com/|(^|[[:space:]"=@])/(etc|var|run|usr)/' \
		    "$TMP/uncommented" | sed 's/^/    /'
	else
		pass "$(basename "$1"): every host and absolute path rewritten"
	fi
}

# doc_block NAME -- the ```sh block of docs/spire.md after "<!-- test: NAME -->".
doc_block() {
	awk -v want="<!-- test: $1 -->" '
	    $0 == want { armed = 1; next }
	    armed && /^```sh$/ { inblock = 1; next }
	    inblock && /^```$/ { exit }
	    inblock { print }
	    armed && !inblock && !/^$/ { armed = 0 }
	' "$DOC"
}

# ---------------------------------------------------------------- a Web PKI CA, certificates
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$W/webca.key" -out "$W/webca.pem" -subj "/CN=agentid test Web PKI CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    >/dev/null 2>&1 || fail "test Web PKI CA"
# web_cert NAME SAN -- NAME.crt / NAME.key signed by the test CA
web_cert() {
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$2" >"$W/$1.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
	    -keyout "$W/$1.key" -out "$W/$1.csr" >/dev/null 2>&1 &&
		openssl x509 -req -in "$W/$1.csr" -CA "$W/webca.pem" -CAkey "$W/webca.key" \
		    -CAcreateserial -days 2 -extfile "$W/$1.ext" -out "$W/$1.crt" >/dev/null 2>&1 ||
		fail "certificate for $1"
}
web_cert exchange IP:127.0.0.1
web_cert endpoints IP:127.0.0.1
web_cert api DNS:api.prod.example.com

# ---------------------------------------------------------------- SPIRE's part: trust domain, bundle endpoint, IdP
assert_exit 0 agentid dev ca init --trust-domain $TD --dir "$W/spire" || finish
agentid keygen --alg ES256 --out "$W/login.key" >/dev/null 2>&1 || fail "IdP key"
agentid bundle --trust-domain example.com --use jwt-svid "$W/login.key" >"$W/login-jwks.json" ||
	fail "IdP JWKS"
python3 "$top_srcdir/tests/integration/spire_example_server.py" https "$W/endpoints.port" \
    "$W/endpoints.crt" "$W/endpoints.key" "/=$W/spire/bundle.json" \
    "/.well-known/jwks.json=$W/login-jwks.json" 2>"$W/endpoints.log" &
on_exit "kill $! 2>/dev/null"
wait_for test -s "$W/endpoints.port" || { fail "bundle endpoint started"; finish; }
SPIRE=https://127.0.0.1:$(cat "$W/endpoints.port")
assert_exit 0 curl -fsS --cacert "$W/webca.pem" -o "$W/fetched.json" "$SPIRE/"
assert_exit 0 cmp "$W/fetched.json" "$W/spire/bundle.json"

PORT=$(free_port)
EX=https://127.0.0.1:$PORT

# ---------------------------------------------------------------- the example's files in $W
mkdir -p "$W/etc/agentid/tls" "$W/etc/nginx/sites-available" "$W/var/lib/agentid-exchange/keys" \
    "$W/var/log/agentid-exchange" "$W/var/lib/agentid/bundles" "$W/var/log/agentid"
cp "$EXAMPLE/exchange.yaml" "$EXAMPLE/pam_agentid.conf" "$EXAMPLE/agents.map" "$W/etc/agentid/"
cp "$EXAMPLE/nginx-api.conf" "$W/etc/nginx/sites-available/"
cp "$EXAMPLE/agentid-bundle-sync.service" "$EXAMPLE/helper.conf" "$W/"
cp "$W/exchange.crt" "$W/etc/agentid/tls/exchange.crt"
cp "$W/exchange.key" "$W/etc/agentid/tls/exchange.key"

X=$W/etc/agentid/exchange.yaml
rewrite "$X" "address: 0.0.0.0" "address: 127.0.0.1"
rewrite "$X" "port: 8443" "port: $PORT"
rewrite "$X" "/etc/agentid/tls/" "$W/etc/agentid/tls/"
rewrite "$X" "https://exchange.prod.example.com:8443" "$EX"
rewrite "$X" "/var/lib/agentid-exchange/" "$W/var/lib/agentid-exchange/"
rewrite "$X" "/var/log/agentid-exchange/" "$W/var/log/agentid-exchange/"
rewrite "$X" "bundle_url: https://spire.prod.example.com:8443" \
	"bundle_url: $SPIRE
    bundle_ca: $W/webca.pem"
rewrite "$X" "jwks_url: https://login.example.com/.well-known/jwks.json" \
	"jwks_url: $SPIRE/.well-known/jwks.json
    jwks_ca: $W/webca.pem"
rewritten "$X"

N=$W/etc/nginx/sites-available/nginx-api.conf
NPORT=$(free_port)
rewrite "$N" "listen 443 ssl;" "listen 127.0.0.1:$NPORT ssl;"
rewrite "$N" "/etc/ssl/api." "$W/api."
rewrite "$N" "/var/lib/agentid/" "$W/var/lib/agentid/"
rewrite "$N" "https://exchange.prod.example.com:8443" "$EX"
# The one rewrite that is not a path or a name: re-read the status list every
# second instead of every minute, so that the revocation below shows quickly.
rewrite "$N" "agentid_status_list_refresh 60s;" "agentid_status_list_refresh 1s;"
BPORT_FILE=$W/backend.port
python3 "$top_srcdir/tests/integration/spire_example_server.py" backend "$BPORT_FILE" \
    2>"$W/backend.log" &
on_exit "kill $! 2>/dev/null"
wait_for test -s "$BPORT_FILE" || fail "upstream started"
rewrite "$N" "proxy_pass http://127.0.0.1:9000;" "proxy_pass http://127.0.0.1:$(cat "$BPORT_FILE");"
rewritten "$N"

P=$W/etc/agentid/pam_agentid.conf
rewrite "$P" "/var/lib/agentid/" "$W/var/lib/agentid/"
rewrite "$P" "https://exchange.prod.example.com:8443" "$EX"
rewrite "$P" "/etc/agentid/agents.map" "$W/etc/agentid/agents.map"
rewrite "$P" "/var/log/agentid/" "$W/var/log/agentid/"
rewritten "$P"
# Local users that every Debian system has, in place of the example's.
M=$W/etc/agentid/agents.map
rewrite "$M" "worker/deploy/*  deploy" "worker/deploy/*  daemon"
rewrite "$M" "worker/*         agent" "worker/*         nobody"

# ---------------------------------------------------------------- spiffe-helper's files
# helper_value CONF KEY -- a string setting of helper.conf
helper_value() {
	sed -n "s/.*$2 *= *\"\\([^\"]*\\)\".*/\\1/p" "$1" | head -n 1
}
# helper_layout ID NAME -- what spiffe-helper writes for workload ID (in $W/NAME/run/spiffe),
# with helper.conf's file names
helper_layout() {
	h=$W/helper-$2.conf
	cp "$W/helper.conf" "$h"
	rewrite "$h" 'agent_address = "/run/spire/' "agent_address = \"$W/$2/run/spire/"
	rewrite "$h" 'cert_dir = "/run/spiffe"' "cert_dir = \"$W/$2/run/spiffe\""
	rewrite "$h" 'jwt_audience = "https://exchange.prod.example.com:8443"' \
		"jwt_audience = \"$EX\""
	rewritten "$h"
	dir=$(helper_value "$h" cert_dir)
	mkdir -p "$dir"
	agentid dev x509-svid --dir "$W/spire" --id "$1" \
	    --out-cert "$dir/$(helper_value "$h" svid_file_name)" \
	    --out-key "$dir/$(helper_value "$h" svid_key_file_name)" >/dev/null ||
		fail "X.509-SVID of $1"
	cp "$W/spire/ca.pem" "$dir/$(helper_value "$h" svid_bundle_file_name)"
	# A JWT-SVID file holds the compact token, no newline.
	printf '%s' "$(agentid dev jwt-svid --dir "$W/spire" --id "$1" \
	    --audience "$(helper_value "$h" jwt_audience)")" \
	    >"$dir/$(helper_value "$h" jwt_svid_file_name)" || fail "JWT-SVID of $1"
}
helper_layout "$ORCH_ID" orchestrator
helper_layout "$DEPLOY_ID" deploy
helper_layout "$TRIAGE_ID" triage
helper_layout "$ADMIN_ID" revoker
for f in svid.pem svid_key.pem svid_bundle.pem jwt_svid.token; do
	assert_exit 0 test -s "$W/orchestrator/run/spiffe/$f"
done

# ---------------------------------------------------------------- agentid-exchange with the example configuration
# run_doc NAME DIR -- runs the guide's block NAME in DIR, rewritten like the files
run_doc() {
	doc_block "$1" >"$W/doc-$1.sh"
	[ -s "$W/doc-$1.sh" ] || { fail "docs/spire.md has a block marked 'test: $1'"; return 1; }
	for r in "sudo -u _agentid |" \
	    "--server https://exchange.prod.example.com:8443|--server $EX --cacert $W/webca.pem" \
	    "/etc/agentid/|$W/etc/agentid/" "/run/spiffe/|$W/orchestrator/run/spiffe/"; do
		old=${r%%|*}
		if grep -qF -- "$old" "$W/doc-$1.sh"; then
			sed -i "s/$(sed_pattern "$old")/$(sed_replacement "${r#*|}")/g" "$W/doc-$1.sh"
		fi
	done
	rewritten "$W/doc-$1.sh"
	if (cd "$2" && sh -e -u "$W/doc-$1.sh") >"$OUT" 2>"$ERR"; then
		pass "docs/spire.md block '$1' runs"
	else
		fail "docs/spire.md block '$1' runs"
		lib_show_output
	fi
}

run_doc check-config "$W"
# The same file: the guide's command is the one that was run.
assert_exit 0 agentid-exchange --check-config "$X"
# A bundle endpoint that the configured CA does not vouch for stops the start.
cp "$X" "$W/wrong-ca.yaml"
rewrite "$W/wrong-ca.yaml" "bundle_ca: $W/webca.pem" "bundle_ca: $W/spire/ca.pem"
assert_exit 1 agentid-exchange --check-config "$W/wrong-ca.yaml"
assert_grep "$SPIRE" "$ERR" "--check-config names the bundle endpoint it could not fetch"

agentid-exchange -c "$X" 2>"$W/exchange.log" &
XPID=$!
on_exit "kill $XPID 2>/dev/null"
wait_for curl -fsS --cacert "$W/webca.pem" -o /dev/null "$EX/healthz" ||
	{ fail "exchange started"; tail -n 20 "$W/exchange.log"; finish; }
pass "agentid-exchange serves with examples/spire/exchange.yaml"

# The orchestrator exchanges its spiffe-helper JWT-SVID (mTLS with its X.509-SVID),
# then delegates to the deploy worker; the guide's block does both.
cp "$W/deploy/run/spiffe/jwt_svid.token" "$W/orchestrator/worker.jwt"
run_doc exchange "$W/orchestrator"
agentid inspect @"$W/orchestrator/task.jwt" >"$W/task.json" 2>/dev/null
assert_eq "$(jq -r '.claims.sub + " " + .claims.scope + " " + .claims.task' "$W/task.json")" \
	"$ORCH_ID tickets:read tickets:write ssh:login T-1001" "task token: subject, scopes, task"
agentid inspect @"$W/orchestrator/worker-task.jwt" >"$W/worker-task.json" 2>/dev/null
assert_eq "$(jq -c '.claims.act' "$W/worker-task.json")" \
	"{\"sub\":\"$DEPLOY_ID\",\"act\":{\"sub\":\"$ORCH_ID\"}}" "worker token: delegation chain"
assert_eq "$(jq -r '.claims.scope' "$W/worker-task.json")" "tickets:read ssh:login" \
	"worker token: narrowed scopes"

O=$W/orchestrator/run/spiffe
xchg() { # xchg ARGS... -- agentid exchange as the orchestrator, with its spiffe-helper files
	agentid exchange --server "$EX" --cacert "$W/webca.pem" --cert "$O/svid.pem" \
	    --key "$O/svid_key.pem" "$@"
}
# Widening for a worker: the workers' rule has no tickets:write.
assert_exit 1 xchg --subject-token @"$W/orchestrator/task.jwt" \
    --actor-token @"$W/triage/run/spiffe/jwt_svid.token" --scope tickets:write \
    --audience $API
assert_grep invalid_scope "$ERR" "widening to tickets:write for a worker: invalid_scope"
# A second worker, for the map's other line.
assert_exit 0 xchg --subject-token @"$W/orchestrator/task.jwt" \
    --actor-token @"$W/triage/run/spiffe/jwt_svid.token" --scope "tickets:read ssh:login" \
    --audience $API --audience $HOST_AUD
jq -r .access_token "$OUT" >"$W/triage.jwt"
# Audiences the policy does not list are refused.
assert_exit 1 xchg --subject-token @"$O/jwt_svid.token" --scope tickets:read \
    --audience https://elsewhere.example.com
assert_grep 'invalid_target|invalid_request|access_denied' "$ERR" "an unlisted audience is refused"
# Acting for an employee: a token of the IdP login.example.com.
agentid dev sign --key "$W/login.key" --typ JWT --claim iss=https://login.example.com \
    --claim sub=alice@example.com --claim aud="$EX" >"$W/alice-idp.jwt" || fail "IdP token"
assert_exit 0 xchg --subject-token @"$W/alice-idp.jwt" --subject-token-type jwt --scope tickets:read \
    --audience $API --task T-1002
jq -r .access_token "$OUT" >"$W/alice.jwt"
agentid inspect @"$W/alice.jwt" >"$W/alice.json" 2>/dev/null
assert_eq "$(jq -c '[.claims.sub, .claims.act.sub]' "$W/alice.json")" \
	"[\"alice@example.com\",\"$ORCH_ID\"]" "on behalf of an employee: sub is the user, act the agent"
assert_exit 1 xchg --subject-token @"$W/alice-idp.jwt" --subject-token-type jwt --scope tickets:write \
    --audience $API
assert_grep invalid_scope "$ERR" "employees' rule grants no tickets:write"
# systemctl reload: SIGHUP re-reads everything, the bundle endpoint included.
kill -HUP $XPID
wait_for grep -q 'configuration reloaded' "$W/exchange.log" && pass "SIGHUP reload logged" ||
	fail "SIGHUP reload logged"
assert_exit 0 curl -fsS --cacert "$W/webca.pem" -o /dev/null "$EX/jwks"

# ---------------------------------------------------------------- agentid bundle-sync as the service runs it
S=$W/agentid-bundle-sync.service
rewrite "$S" "/usr/bin/agentid bundle-sync" "agentid bundle-sync --cacert $W/webca.pem"
rewrite "$S" "https://spire.prod.example.com:8443" "$SPIRE"
rewrite "$S" "https://exchange.prod.example.com:8443" "$EX"
rewrite "$S" "/var/lib/agentid/" "$W/var/lib/agentid/"
# ExecStart=, continuation lines joined
exec_start=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$S" | sed 's/^ExecStart=//; s/\\$//' | tr -s ' \n' '  ')
echo "$exec_start" >"$W/exec_start"
rewritten "$W/exec_start"
# The guide shows the same command as the service.
doc_block bundle-sync | sed 's/\\$//' | tr -s ' \n' '  ' | sed 's/ *$//' >"$W/doc_sync"
sed -n '/^ExecStart=/,/[^\\]$/p' "$EXAMPLE/agentid-bundle-sync.service" |
	sed 's/^ExecStart=\/usr\/bin\///; s/\\$//' | tr -s ' \n' '  ' | sed 's/ *$//' >"$W/unit_sync"
assert_eq "$(cat "$W/doc_sync")" "$(cat "$W/unit_sync")" \
	"docs/spire.md's bundle-sync command is the service's ExecStart"
# shellcheck disable=SC2086 # word splitting of the unit's command line is intended
$exec_start 2>"$W/sync.log" &
SPID=$!
on_exit "kill $SPID 2>/dev/null"
V=$W/var/lib/agentid
wait_for test -s "$V/statuslist-0.jwt" -a -s "$V/exchange-jwks.json" \
    -a -s "$V/bundles/$TD.json" || fail "bundle-sync wrote its three files"
assert_exit 0 cmp "$V/bundles/$TD.json" "$W/spire/bundle.json"
assert_exit 0 agentid verify --bundle "$V/exchange-jwks.json" --profile access --issuer "$EX" \
    --audience $API --scope tickets:read @"$W/orchestrator/worker-task.jwt"
assert_exit 0 agentid status-list check --bundle "$V/exchange-jwks.json" \
    --list "$V/statuslist-0.jwt" @"$W/orchestrator/worker-task.jwt"

# ---------------------------------------------------------------- nginx with nginx-api.conf
NG=$W/nginx
ngx_get() { # ngx_get TOKEN PATH -- status code; body in $W/ngx.body
	curl -s -o "$W/ngx.body" -D "$W/ngx.headers" -w '%{http_code}' --cacert "$W/webca.pem" \
	    --resolve "api.prod.example.com:$NPORT:127.0.0.1" ${1:+-H "Authorization: Bearer $1"} \
	    "https://api.prod.example.com:$NPORT$2"
}
if [ -z "$skip_nginx" ]; then
	mkdir -p "$NG/logs" "$NG/tmp"
	cat >"$NG/nginx.conf" <<EOF
load_module $NGINX_MODULE;
worker_processes 2;
pid $NG/nginx.pid;
error_log $NG/logs/error.log info;
events { worker_connections 64; }
http {
    client_body_temp_path $NG/tmp;
    proxy_temp_path $NG/tmp;
    fastcgi_temp_path $NG/tmp;
    uwsgi_temp_path $NG/tmp;
    scgi_temp_path $NG/tmp;
    access_log $NG/logs/access.log;
    include $N;
}
EOF
	assert_exit 0 env ${ASAN_LIB:+LD_PRELOAD=$ASAN_LIB} $ASAN_ENV nginx -t -p "$NG" -c "$NG/nginx.conf"
	if env ${ASAN_LIB:+LD_PRELOAD=$ASAN_LIB} $ASAN_ENV nginx -p "$NG" -c "$NG/nginx.conf" \
	    2>"$W/nginx.err"; then
		on_exit "kill -QUIT \$(cat $NG/nginx.pid) 2>/dev/null"
		wait_for test -s "$NG/nginx.pid"
		WT=$(cat "$W/orchestrator/worker-task.jwt")
		# A status list first named by a token is read within a second, by
		# one worker, and then parsed by each of the others from shared
		# memory; a worker without it fails closed (401 status_unavailable).
		# So wait until both workers have said they hold it, requesting
		# meanwhile so that the token names the list.
		list_workers() {
			sed -n 's/.*\[info\] \([0-9]*\)#.*agentid: status list ".*" updated.*/\1/p' \
			    "$NG/logs/error.log" | sort -u | wc -l
		}
		ok200() { [ "$(ngx_get "$WT" /tickets/42)" = 200 ] && [ "$(list_workers)" -ge 2 ]; }
		wait_for ok200
		assert_eq "$(ngx_get "$WT" /tickets/42)" 200 "nginx: the deploy worker reads a ticket"
		assert_eq "$(jq -r '.path + " " + .headers["x-agent"] + " " + .headers["x-agent-task"]' \
		    "$W/ngx.body")" "/tickets/42 $DEPLOY_ID T-1001" \
			"nginx: the upstream sees X-Agent and X-Agent-Task"
		assert_eq "$(jq -r '.headers["x-agent-chain"]' "$W/ngx.body")" "$DEPLOY_ID,$ORCH_ID" \
			"nginx: the upstream sees the chain, current actor first"
		assert_eq "$(jq -r '.headers | has("authorization")' "$W/ngx.body")" false \
			"nginx: the token is not forwarded"
		assert_eq "$(ngx_get "" /tickets/42)" 401 "nginx: no token, 401"
		assert_grep 'realm="api"' "$W/ngx.headers" "nginx: the challenge names realm api"
		assert_eq "$(ngx_get "$(cat "$O/jwt_svid.token")" /tickets/42)" 401 \
			"nginx: a raw JWT-SVID is not an access token, 401"
		assert_eq "$(ngx_get "$(cat "$W/alice.jwt")" /tickets/42)" 200 \
			"nginx: the orchestrator acting for an employee"
	else
		fail "nginx starts with nginx-api.conf"
		sed 's/^/    /' "$W/nginx.err"
	fi
else
	echo "# nginx part skipped: $skip_nginx"
fi

# ---------------------------------------------------------------- PAM with pam_agentid.conf and agents.map
PD=$W/pam.d
pam_login() { # pam_login TOKEN_FILE USER -- the token typed at the module's prompt
	printf '%s\n' "$(cat "$1")" | env LD_PRELOAD="$ASAN_LIB $PAM_WRAPPER_LIB" $ASAN_ENV PAM_WRAPPER=1 \
	    PAM_WRAPPER_SERVICE_DIR=$PD LD_LIBRARY_PATH=$top_builddir/.libs \
	    pamtester agentid-login "$2" authenticate acct_mgmt
}
if [ -z "$skip_pam" ]; then
	mkdir -p "$PD"
	# The lines pam-auth-update writes for the profile (its "end" jumps past the
	# primary block's pam_deny.so), with the module and its conf= made local.
	prof=$top_srcdir/debian/pam-configs/agentid
	auth=$(sed -n '/^Auth:/{n;p;}' "$prof" | sed 's/^[[:space:]]*//')
	acct=$(sed -n '/^Account:/{n;p;}' "$prof" | sed 's/^[[:space:]]*//')
	{
		echo "auth $auth" | sed 's/success=end/success=1/'
		echo "auth requisite pam_deny.so"
		echo "auth required pam_permit.so"
		echo "account required pam_permit.so"
		echo "account $acct"
	} >"$PD/agentid-login"
	rewrite "$PD/agentid-login" "pam_agentid.so " "$PAM_MODULE "
	rewrite "$PD/agentid-login" "conf=/etc/agentid/pam_agentid.conf" "conf=$P"
	echo 'auth required pam_deny.so' >"$PD/other"
	chmod 0644 "$P" "$M"

	assert_exit 0 pam_login "$W/orchestrator/worker-task.jwt" daemon
	assert_grep 'successfully authenticated' "$OUT" "PAM: the deploy worker logs in as daemon"
	assert_exit 1 pam_login "$W/orchestrator/worker-task.jwt" nobody
	assert_exit 0 pam_login "$W/triage.jwt" nobody
	assert_grep 'successfully authenticated' "$OUT" "PAM: another worker logs in as nobody"
	assert_exit 1 pam_login "$W/triage.jwt" daemon
	# The employee's token has no ssh:login and no host audience.
	assert_exit 1 pam_login "$W/alice.jwt" nobody
	assert_grep '"agent":"'"$DEPLOY_ID"'".*"event":"login.allowed"' \
		"$W/var/log/agentid/pam-audit.log" "PAM audit: the allowed login"
	assert_grep '"event":"login.denied"' "$W/var/log/agentid/pam-audit.log" \
		"PAM audit: the refusals"
else
	echo "# PAM part skipped: $skip_pam"
fi

# ---------------------------------------------------------------- revocation of the task, everywhere
R=$W/revoker/run/spiffe
assert_exit 0 agentid revoke --server "$EX" --cacert "$W/webca.pem" --cert "$R/svid.pem" \
    --key "$R/svid_key.pem" --task T-1001
cp "$V/statuslist-0.jwt" "$W/status.before"
kill -HUP $SPID # the unit's ExecReload: fetch now
wait_for sh -c "! cmp -s '$V/statuslist-0.jwt' '$W/status.before'" &&
	pass "bundle-sync fetched the new status list on SIGHUP" ||
	fail "bundle-sync fetched the new status list on SIGHUP"
assert_exit 1 agentid status-list check --bundle "$V/exchange-jwks.json" \
    --list "$V/statuslist-0.jwt" @"$W/orchestrator/worker-task.jwt"
if [ -z "$skip_nginx" ] && [ -s "$NG/nginx.pid" ]; then
	revoked() {
		ngx_get "$WT" /tickets/42 >/dev/null
		grep -q 'error_description="revoked"' "$W/ngx.headers"
	}
	wait_for revoked && pass "nginx: the revoked worker token is refused (revoked)" ||
		fail "nginx: the revoked worker token is refused (revoked)"
	assert_eq "$(ngx_get "$(cat "$W/alice.jwt")" /tickets/42)" 200 \
		"nginx: another task's token still works"
fi
if [ -z "$skip_pam" ]; then
	assert_exit 1 pam_login "$W/orchestrator/worker-task.jwt" daemon
	assert_grep '"reason":"revoked"' "$W/var/log/agentid/pam-audit.log" \
		"PAM: the revoked token is refused (revoked)"
fi

kill -TERM $SPID
wait $SPID && pass "bundle-sync stops cleanly on SIGTERM" || fail "bundle-sync stops on SIGTERM"
kill -TERM $XPID
wait $XPID && pass "agentid-exchange stops cleanly on SIGTERM" || fail "exchange stops on SIGTERM"
finish
