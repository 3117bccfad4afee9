#!/usr/bin/env bash
# agentid demo on embedded defaults: a development trust domain, an agent's JWT-SVID verified,
# and a tampered and an expired token rejected with their stable reasons.
#
# usage: examples/demo.sh BUILD_DIR
set -euo pipefail

build=${1:?usage: demo.sh BUILD_DIR}
agentid="$build/agentid"
work=$(mktemp -d "${TMPDIR:-/tmp}/agentid-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m--- %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. A development trust domain (NOT for production): X.509 CA + JWT-SVID signing key"
show "$agentid" dev ca init --trust-domain demo.example --dir "$work/td"

step "2. The orchestrator agent gets an X.509-SVID and a JWT-SVID for the 'billing-api' audience"
show "$agentid" dev x509-svid --dir "$work/td" --id spiffe://demo.example/agents/orchestrator
token=$("$agentid" dev jwt-svid --dir "$work/td" --id spiffe://demo.example/agents/orchestrator \
	--audience billing-api --ttl 300)
echo "JWT-SVID: ${token:0:24}...(${#token} bytes)"

step "3. Verify it against the trust domain's bundle"
printf '%s' "$token" | show "$agentid" verify --bundle "$work/td/bundle.json" \
	--audience billing-api --profile jwt-svid -

step "4. A tampered token (its subject rewritten, signature kept) is rejected"
b64url_decode() { local s=$1; while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done
	printf '%s' "$s" | basenc --base64url -d; }
b64url_encode() { basenc --base64url -w0 | tr -d '='; }
IFS=. read -r h p s <<<"$token"
forged=$(b64url_decode "$p" | sed 's#/agents/orchestrator#/agents/admin#' | b64url_encode)
tampered="$h.$forged.$s"
if printf '%s' "$tampered" | "$agentid" verify --bundle "$work/td/bundle.json" \
	--audience billing-api -; then
	echo "demo: a tampered token was accepted" >&2; exit 1
fi

step "5. The same token one hour later is rejected as expired"
if printf '%s' "$token" | "$agentid" verify --bundle "$work/td/bundle.json" \
	--audience billing-api --now "$(( $(date +%s) + 3600 ))" -; then
	echo "demo: an expired token was accepted" >&2; exit 1
fi

step "6. The wrong audience is rejected"
if printf '%s' "$token" | "$agentid" verify --bundle "$work/td/bundle.json" \
	--audience payroll-api -; then
	echo "demo: a token for another audience was accepted" >&2; exit 1
fi

step "7. The whole agent flow, as in docs/walkthrough.md"
echo "An exchange server on embedded SQLite, an orchestrator delegating to a sub-agent with a"
echo "narrowed scope, a refused widening, nginx and PAM in front of resources, a cascading"
echo "revocation and the audit trail of the task."
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
W=$work/w
mkdir -p "$W"
chmod 0755 "$work" "$W" # nginx workers run as nobody when the demo runs as root
PORT=$(free_port)
NPORT=$(free_port)
NGINX_MODULE=$build/nginx-module/ngx_http_agentid_module.so
PAM_MODULE=$build/pam-module/.libs/pam_agentid.so
PAM_WRAPPER_LIB=$(pkg-config --libs pam_wrapper 2>/dev/null | tr -d ' ')
PATH=$build:$PATH
LD_LIBRARY_PATH=$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export W PORT NPORT NGINX_MODULE PAM_MODULE PAM_WRAPPER_LIB PATH LD_LIBRARY_PATH
cleanup() {
	local rc=$?
	[ -f "$W/exchange.pid" ] && kill "$(cat "$W/exchange.pid")" 2>/dev/null || true
	[ -f "$W/nginx/nginx.pid" ] && kill "$(cat "$W/nginx/nginx.pid")" 2>/dev/null || true
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
# Each "## N." heading of the guide becomes a step, each sh block runs as written.
while IFS= read -r line; do
	case $line in
	'## '*) printf 'printf "\\n\\033[1m--- walkthrough %%s\\033[0m\\n" %q\n' "${line#'## '}" ;;
	'```sh') inblock=1 ;;
	'```') inblock= ;;
	*) [ -n "${inblock:-}" ] && printf '%s\n' "$line" ;;
	esac
done <"$(dirname "$0")/../docs/walkthrough.md" >"$work/walkthrough.bash"
bash -e -u -o pipefail "$work/walkthrough.bash"

printf '\n\033[1mdemo finished: tokens verified, forged/expired/misdirected ones rejected; delegation narrowed, widening refused, access enforced by nginx and PAM, revocation cascaded, audit log verified and traced.\033[0m\n'
