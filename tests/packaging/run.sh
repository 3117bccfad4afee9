#!/usr/bin/env bash
# Builds agentid's Debian packages from this tree, installs them on this
# machine and smoke-tests the installed files.  Debian 12, as root.
#
#   tests/packaging/run.sh [--keep]      (--keep: leave the packages installed)
#
#  1. copies the tree (git-tracked and untracked-but-not-ignored files) into a
#     temporary directory and runs dpkg-buildpackage -us -uc -b there, so the
#     checkout is never written to;
#  2. installs the six .deb files with apt-get (which pulls in adduser etc.);
#  3. checks the installed files: agentid --version, the _agentid user and its
#     directories, agentid-exchange --check-config on the default
#     configuration and a start on loopback (through systemd when it runs,
#     otherwise directly as _agentid), SIGHUP reload and SIGTERM; nginx -t with
#     the packaged module enabled, and a private nginx that answers 401 with the
#     module's challenge; pamtester driving the installed pam_agentid.so through
#     a private service under pam_wrapper (a good token allowed, a bad one
#     refused); the pam-auth-update profile present but not enabled;
#     agentid bundle-sync keeping a file fresh from a loopback HTTP server;
#  4. purges the packages again (unless --keep) and checks that nothing of
#     /etc/pam.d or nginx's modules-enabled is left behind.
#
# Output: TAP-like "ok"/"not ok" lines; exit 0 when everything passed.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
keep=0
[ "${1:-}" = "--keep" ] && keep=1

if [ "$(id -u)" -ne 0 ]; then
	echo "tests/packaging/run.sh: needs root (installs packages)" >&2
	exit 2
fi

work=$(mktemp -d /tmp/agentid-pkg.XXXXXX)
chmod 0755 "$work"
pids=()
pkgs=(libagentid0 libagentid-dev agentid-tools agentid-exchange libnginx-mod-http-agentid
	libpam-agentid)
failed=0
n=0

cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "$keep" -eq 0 ] && [ -n "${installed:-}" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${pkgs[@]}" >/dev/null 2>&1 || true
	fi
	if [ -n "${AGENTID_PKG_KEEP_WORK:-}" ]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@" >"$work/check.out" 2>&1; then ok "$what"; else
		notok "$what"
		sed 's/^/#   /' "$work/check.out" | tail -n 20
	fi
}
wait_http() { # wait_http URL -- up to 10 s
	local i
	for i in $(seq 1 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- build
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
src=$work/agentid-$version
mkdir -p "$src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z -co --exclude-standard |
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$src" -xf -
else
	tar -C "$top" --exclude='./build*' --exclude=node_modules --exclude=.git -cf - . |
		tar -C "$src" -xf -
fi

if ! (cd "$src" && dpkg-checkbuilddeps) >"$work/builddeps.log" 2>&1; then
	echo "# installing build dependencies: $(sed -n 's/.*Unmet build dependencies: //p' \
	    "$work/builddeps.log")"
	DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq "$src" >/dev/null
fi

start=$(date +%s)
echo "# dpkg-buildpackage -us -uc -b in $src"
if ! (cd "$src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
    >"$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log"
	notok "dpkg-buildpackage"
	exit 1
fi
ok "dpkg-buildpackage -us -uc -b ($(($(date +%s) - start)) s)"

debs=()
for p in "${pkgs[@]}"; do
	f=$(ls "$work"/${p}_"$version"_*.deb 2>/dev/null | head -n 1 || true)
	if [ -n "$f" ]; then debs+=("$f"); ok "built $(basename "$f")"; else notok "built $p"; fi
done
[ "${#debs[@]}" -eq "${#pkgs[@]}" ] || exit 1

dep=$(dpkg-deb -f "$work"/libnginx-mod-http-agentid_*.deb Depends)
case $dep in
*nginx-abi-*) ok "libnginx-mod-http-agentid depends on the nginx ABI ($dep)" ;;
*) notok "libnginx-mod-http-agentid depends on the nginx ABI: $dep" ;;
esac
check "no package ships libtool .la files" \
	sh -c '! for d in "$@"; do dpkg-deb -c "$d"; done | grep "\.la$"' sh "${debs[@]}"
no_rpath() {
	local d f bad=0
	for d in "${debs[@]}"; do dpkg-deb -x "$d" "$work/x"; done
	while IFS= read -r -d '' f; do
		if readelf -d "$f" 2>/dev/null | grep -E 'R(UN)?PATH'; then
			echo "$f"
			bad=1
		fi
	done < <(find "$work/x" -type f \( -name '*.so*' -o -perm -u+x \) -print0)
	return $bad
}
check "no packaged binary carries an rpath/runpath" no_rpath

# ---------------------------------------------------------------- install
# A policy-rc.d keeps the installation from starting services when systemd is
# not PID 1 (CI containers); with systemd the unit starts as usual.
if [ ! -d /run/systemd/system ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	rm_policy=1
fi
installed=1
if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" \
    >"$work/install.log" 2>&1; then
	ok "apt-get install of the six packages"
else
	tail -n 30 "$work/install.log"
	notok "apt-get install of the six packages"
	[ -n "${rm_policy:-}" ] && rm -f /usr/sbin/policy-rc.d
	exit 1
fi
[ -n "${rm_policy:-}" ] && rm -f /usr/sbin/policy-rc.d

# ---------------------------------------------------------------- agentid-tools, libagentid-dev
check "agentid --version prints $version" sh -c "agentid --version | grep -qx 'agentid $version'"
check "pkg-config finds libagentid $version" \
	sh -c "[ \"\$(pkg-config --modversion libagentid)\" = '$version' ]"
cat >"$work/dev.c" <<'EOF'
#include <stdio.h>
#include <agentid/agentid.h>
int main(void) { printf("%s\n", agentid_version()); return 0; }
EOF
check "a program builds against libagentid-dev and runs" \
	sh -c "cc -o '$work/dev' '$work/dev.c' \$(pkg-config --cflags --libs libagentid) &&
	    '$work/dev' | grep -q ."

# ---------------------------------------------------------------- agentid-exchange
conf=/etc/agentid/exchange.yaml
check "system user _agentid exists" getent passwd _agentid
check "state directory belongs to _agentid" \
	sh -c '[ "$(stat -c %U:%a /var/lib/agentid-exchange)" = _agentid:750 ]'
check "$conf is root:_agentid 0640" sh -c "[ \"\$(stat -c %U:%G:%a $conf)\" = root:_agentid:640 ]"
unit=/lib/systemd/system/agentid-exchange.service
check "systemd unit installed" test -f $unit
for k in 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'CapabilityBoundingSet=$' \
    'ExecReload=/bin/kill -HUP \$MAINPID' 'User=_agentid' 'StateDirectory=agentid-exchange'; do
	check "unit has $k" grep -q "^$k" $unit
done
if command -v systemd-analyze >/dev/null 2>&1; then
	check "systemd-analyze verify accepts the unit" \
		sh -c "systemd-analyze verify $unit 2>&1 | { ! grep -i 'agentid-exchange.service:'; }"
	# The threshold is tests/packaging/unit_hardening.sh's (make check), for the installed file.
	check "systemd-analyze security: installed unit's exposure at most 1.2" \
		systemd-analyze security --offline=true --threshold=12 $unit
fi
check "agentid-exchange --check-config on the default configuration (as _agentid)" \
	runuser -u _agentid -- /usr/sbin/agentid-exchange --check-config $conf

base=http://127.0.0.1:8480
if [ -d /run/systemd/system ]; then
	check "systemctl restart agentid-exchange" systemctl restart agentid-exchange
	check "exchange answers /healthz on loopback (systemd)" wait_http $base/healthz
	check "systemctl reload agentid-exchange" systemctl reload agentid-exchange
	check "still serving after reload" wait_http $base/jwks
	check "systemctl stop agentid-exchange" systemctl stop agentid-exchange
else
	echo "# systemd is not PID 1 here: starting the server directly as _agentid"
	# setpriv execs the server (same PID), so signals reach it and not a wrapper.
	setpriv --reuid=_agentid --regid=_agentid --init-groups -- \
	    /usr/sbin/agentid-exchange -c $conf >"$work/exchange.log" 2>&1 &
	xpid=$!
	pids+=("$xpid")
	check "exchange answers /healthz on loopback" wait_http $base/healthz
	check "exchange publishes its signing key at /jwks" \
		sh -c "curl -fsS $base/jwks | grep -q '\"kid\"'"
	check "signing key generated under the state directory, mode 0600" \
		sh -c '[ "$(stat -c %U:%a /var/lib/agentid-exchange/keys/current.pem)" = _agentid:600 ]'
	kill -HUP "$xpid"
	sleep 0.5
	check "SIGHUP reloads (logged) and the server keeps serving" \
		sh -c "grep -q 'configuration reloaded' '$work/exchange.log' && curl -fsS $base/jwks >/dev/null"
	kill -TERM "$xpid"
	rc=0
	wait "$xpid" || rc=$?
	if [ "$rc" -eq 0 ]; then ok "SIGTERM stops the server cleanly"; else
		notok "SIGTERM stops the server cleanly (exit $rc)"
		sed 's/^/#   /' "$work/exchange.log" | tail -n 20
	fi
fi

# ---------------------------------------------------------------- a dev trust domain for the verifiers
td=pkg.test
ca=$work/ca
agentid dev ca init --trust-domain $td --dir "$ca" >/dev/null
good=$(agentid dev jwt-svid --dir "$ca" --id spiffe://$td/agent/smoke --audience host:smoke)
bad=$(agentid dev jwt-svid --dir "$ca" --id spiffe://$td/agent/smoke --audience host:other)
chmod 0644 "$ca/bundle.json"

# ---------------------------------------------------------------- libnginx-mod-http-agentid
snippet=/usr/share/nginx/modules-available/mod-http-agentid.conf
check "load snippet $snippet" grep -q 'load_module modules/ngx_http_agentid_module.so;' $snippet
check "module enabled in /etc/nginx/modules-enabled" test -L /etc/nginx/modules-enabled/50-mod-http-agentid.conf
check "nginx -t with the packaged module enabled" nginx -t -q
ngx=$work/nginx
mkdir -p "$ngx/logs" "$ngx/html"
# The snippet says "modules/...", relative to the prefix: point that at the system's.
ln -s /usr/lib/nginx/modules "$ngx/modules"
echo hello >"$ngx/html/index.html"
port=$(free_port)
cat >"$ngx/nginx.conf" <<EOF
include /etc/nginx/modules-enabled/50-mod-http-agentid.conf;
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $ngx/tmp;
	proxy_temp_path $ngx/tmp;
	fastcgi_temp_path $ngx/tmp;
	uwsgi_temp_path $ngx/tmp;
	scgi_temp_path $ngx/tmp;
	server {
		listen 127.0.0.1:$port;
		root $ngx/html;
		location / {
			agentid on;
			agentid_profile jwt-svid;
			agentid_bundle $ca/bundle.json $td;
			agentid_audience host:smoke;
		}
	}
}
EOF
mkdir -p "$ngx/tmp"
check "nginx -t on a private configuration using the module's directives" \
	nginx -t -q -p "$ngx" -c "$ngx/nginx.conf"
if nginx -p "$ngx" -c "$ngx/nginx.conf" 2>"$work/nginx.err"; then
	wait_http "http://127.0.0.1:$port/missing" || true
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
	[ "$code" = 401 ] && ok "nginx with the module: no token -> 401" ||
		notok "nginx with the module: no token -> 401 (got $code)"
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $good" \
	    "http://127.0.0.1:$port/")
	[ "$code" = 200 ] && ok "nginx with the module: valid JWT-SVID -> 200" ||
		notok "nginx with the module: valid JWT-SVID -> 200 (got $code)"
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $bad" \
	    "http://127.0.0.1:$port/")
	[ "$code" = 401 ] && ok "nginx with the module: wrong audience -> 401" ||
		notok "nginx with the module: wrong audience -> 401 (got $code)"
	kill -QUIT "$(cat "$ngx/nginx.pid")" 2>/dev/null || true
else
	notok "start a private nginx with the packaged module"
	sed 's/^/#   /' "$work/nginx.err"
fi

# ---------------------------------------------------------------- libpam-agentid
pammod=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/security/pam_agentid.so
check "PAM module installed at $pammod" test -f "$pammod"
check "pam-auth-update profile installed with Default: no" \
	grep -qx 'Default: no' /usr/share/pam-configs/agentid
check "pam_agentid is not enabled in /etc/pam.d after installation" \
	sh -c '! grep -l pam_agentid /etc/pam.d/common-*'
pw=$(pkg-config --libs pam_wrapper 2>/dev/null | tr -d ' ' || true)
if command -v pamtester >/dev/null 2>&1 && [ -n "$pw" ] && [ -f "$pw" ]; then
	svc=$work/pam
	mkdir -p "$svc"
	printf 'spiffe://%s/agent/* nobody\n' $td >"$work/agentid.map"
	cat >"$svc/agentid-smoke" <<EOF
auth     required $pammod bundle=$td:$ca/bundle.json audience=host:smoke map=$work/agentid.map source=env env=AGENTID_TOKEN
account  required $pammod bundle=$td:$ca/bundle.json audience=host:smoke map=$work/agentid.map
EOF
	printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$svc/other"
	pt() { # pt TOKEN -- runs pamtester under pam_wrapper
		AGENTID_TOKEN=$1 LD_PRELOAD=$pw PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$svc \
		    pamtester -v agentid-smoke nobody authenticate acct_mgmt </dev/null
	}
	check "pamtester: the installed module accepts a valid token for a mapped user" pt "$good"
	if pt "$bad" >"$work/pt.out" 2>&1; then
		notok "pamtester: the installed module refuses a token for another audience"
	else
		ok "pamtester: the installed module refuses a token for another audience"
	fi
else
	notok "pamtester and libpam-wrapper available (install pamtester libpam-wrapper)"
fi

# ---------------------------------------------------------------- agentid bundle-sync
if agentid bundle-sync --help >/dev/null 2>&1; then
	web=$work/web
	mkdir -p "$web" "$work/sync"
	cp "$ca/bundle.json" "$web/bundle.json"
	wport=$(free_port)
	python3 -m http.server "$wport" --bind 127.0.0.1 --directory "$web" >/dev/null 2>&1 &
	pids+=("$!")
	wait_http "http://127.0.0.1:$wport/bundle.json" || true
	check "agentid bundle-sync --once fetches a bundle into a file" \
		agentid bundle-sync --once --allow-http \
		    --bundle "http://127.0.0.1:$wport/bundle.json=$work/sync/bundle.json"
	check "the synced file equals the served bundle" cmp "$web/bundle.json" "$work/sync/bundle.json"
else
	echo "# agentid bundle-sync not available in this build: skipped"
fi

# ---------------------------------------------------------------- purge
if [ "$keep" -eq 0 ]; then
	if DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${pkgs[@]}" >"$work/purge.log" 2>&1
	then
		ok "apt-get purge of the six packages"
		installed=
	else
		notok "apt-get purge of the six packages"
		tail -n 20 "$work/purge.log"
	fi
	check "no pam_agentid left in /etc/pam.d" sh -c '! grep -l pam_agentid /etc/pam.d/*'
	check "module link removed from /etc/nginx/modules-enabled" \
		sh -c '! ls /etc/nginx/modules-enabled/ | grep agentid'
	check "nginx -t still passes after purge" nginx -t -q
fi

echo "1..$n"
if [ "$failed" -ne 0 ]; then
	echo "# $failed of $n checks failed"
	exit 1
fi
echo "# all $n checks passed"
