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

printf '\n\033[1mdemo finished: valid token accepted; tampered, expired and misdirected tokens rejected.\033[0m\n'
