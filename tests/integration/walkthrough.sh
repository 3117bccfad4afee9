#!/bin/sh
# Runs docs/walkthrough.md: every ```sh block, in order, in one bash with
# -e -u -o pipefail, so the guide's commands are known to work.  Blocks
# preceded by "<!-- test: nginx -->" or "<!-- test: pam -->" are skipped
# (with a note) when the nginx module or pamtester/pam_wrapper is missing.
# The build tree's binaries come first on PATH.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

DOC=$top_srcdir/docs/walkthrough.md
[ -x "$top_builddir/agentid-exchange" ] || skip "agentid-exchange not built"
for t in bash curl jq openssl python3; do
	command -v $t >/dev/null 2>&1 || skip "$t not installed"
done

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

skip_nginx=
NGINX_MODULE=$top_builddir/nginx-module/ngx_http_agentid_module.so
if [ ! -f "$NGINX_MODULE" ] || ! command -v nginx >/dev/null 2>&1; then
	skip_nginx="nginx or the module is not built"
fi
skip_pam=
PAM_MODULE=$top_builddir/pam-module/.libs/pam_agentid.so
PAM_WRAPPER_LIB=$(pkg-config --libs pam_wrapper 2>/dev/null | tr -d ' ')
if [ ! -f "$PAM_MODULE" ] || ! command -v pamtester >/dev/null 2>&1 ||
    [ -z "$PAM_WRAPPER_LIB" ] || [ ! -f "$PAM_WRAPPER_LIB" ]; then
	skip_pam="pam_agentid.so, pamtester or pam_wrapper missing"
fi

# The script: the blocks, with skipped ones replaced by a note.
awk -v skip_nginx="$skip_nginx" -v skip_pam="$skip_pam" '
    /^<!-- test: [a-z]+ -->$/ { tag = $3; next }
    /^```sh$/ { inblock = 1; n++; why = "";
        if (tag == "nginx" && skip_nginx != "") why = skip_nginx;
        if (tag == "pam" && skip_pam != "") why = skip_pam;
        print "echo \"## block " n (why != "" ? " skipped: " why : "") "\"";
        tag = ""; next }
    /^```$/ && inblock { inblock = 0; next }
    inblock && why == "" { print }
    !inblock && !/^$/ { tag = (/^<!--/ ? tag : "") }
' "$DOC" >"$TMP/walkthrough.bash"
[ "$(grep -c '^echo "## block' "$TMP/walkthrough.bash")" -ge 10 ] &&
	pass "extracted the walkthrough's blocks" || fail "extracted the walkthrough's blocks"

W=$TMP/w
mkdir -p "$W"
# nginx workers run as nobody when the test runs as root: let them read $W.
chmod 0755 "$TMP" "$W"
export W PORT NPORT NGINX_MODULE PAM_MODULE PAM_WRAPPER_LIB
PORT=$(free_port)
NPORT=$(free_port)
PATH=$top_builddir:$PATH
# The build tree's PAM module finds the build tree's libagentid.
LD_LIBRARY_PATH=$top_builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH LD_LIBRARY_PATH
on_exit "[ -f $W/exchange.pid ] && kill \$(cat $W/exchange.pid) 2>/dev/null; [ -f $W/nginx/nginx.pid ] && kill \$(cat $W/nginx/nginx.pid) 2>/dev/null"

if timeout 180 bash -e -u -o pipefail "$TMP/walkthrough.bash" >"$TMP/run.log" 2>&1; then
	pass "docs/walkthrough.md runs to the end"
else
	fail "docs/walkthrough.md failed:"
	tail -n 40 "$TMP/run.log" | sed 's/^/    /'
	[ -f "$W/exchange.log" ] && tail -n 10 "$W/exchange.log" | sed 's/^/    exchange: /'
	finish
fi
out=$TMP/run.log
assert_grep '^tickets:read tickets:write ssh:login$' "$out" "step 2: granted scopes printed"
assert_grep 'urn:ietf:params:oauth:token-type:access_token' "$out" "step 3: agentid exchange"
assert_grep '"sub":"spiffe://example.org/worker/7","act":\{"sub":"spiffe://example.org/orchestrator"\}' \
	"$out" "step 4: delegation chain nests the orchestrator"
assert_grep '^spiffe://example.org/worker/7$' "$out" "step 5: verified with the synced JWKS"
if [ -z "$skip_nginx" ]; then
	assert_grep '^200$' "$out" "step 6: nginx lets the worker read tickets"
	assert_grep '^403$' "$out" "step 6: nginx refuses out-of-scope access"
	assert_grep '^401$' "$out" "step 6: nginx refuses a request without token"
	assert_grep 'agent=spiffe://example.org/worker/7 chain=' "$out" "step 6: access log names the agent"
	assert_grep 'error_description="revoked"' "$out" "step 8: nginx refuses the revoked token"
else
	echo "# nginx steps skipped: $skip_nginx"
fi
if [ -z "$skip_pam" ]; then
	assert_grep 'successfully authenticated' "$out" "step 7: PAM login with the worker token"
else
	echo "# PAM steps skipped: $skip_pam"
fi
assert_grep '^false$' "$out" "step 8: introspection says inactive after revocation"
assert_grep 'T-1001|worker/7' "$out" "step 9: the audit trace shows the task"
finish
