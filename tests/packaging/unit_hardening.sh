#!/bin/sh
# The sandboxing of the systemd units, scored by systemd itself:
# `systemd-analyze security --offline=true --threshold=N UNIT` fails when the
# unit's overall exposure (0.0 best .. 10.0 worst, N is ten times that) is
# above N.  Each threshold is the unit's current level, so any lost
# hardening directive fails the test; to show that it can fail, copies with
# one directive removed must be refused.  Runs on the source tree's files,
# no systemd as PID 1 needed (systemd >= 250 for --offline).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

command -v systemd-analyze >/dev/null 2>&1 || skip "systemd-analyze not installed"
systemd-analyze security --help 2>/dev/null | grep -q -- '--offline' ||
	skip "systemd-analyze has no --offline (systemd < 250)"

# unit MAX_EXPOSURE*10 -- lower a threshold when a unit gets tighter.
EXCHANGE_UNIT=$top_srcdir/debian/agentid-exchange.service
EXCHANGE_MAX=12
SYNC_UNIT=$top_srcdir/examples/spire/agentid-bundle-sync.service
SYNC_MAX=13

# exposure UNIT -- prints the overall level, e.g. "1.2"
exposure() {
	systemd-analyze security --offline=true "$1" 2>&1 |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}

# check UNIT MAX -- the unit meets MAX; each copy without one of the key
# directives does not.
check() {
	unit=$1
	max=$2
	name=$(basename "$unit")
	echo "# $name: exposure $(exposure "$unit"), threshold $max"
	assert_exit 0 systemd-analyze security --offline=true --threshold="$max" "$unit"
	for d in ProtectSystem CapabilityBoundingSet NoNewPrivileges SystemCallFilter \
	    RestrictAddressFamilies PrivateDevices ProtectKernelTunables User; do
		if ! grep -q "^$d=" "$unit"; then
			fail "$name has no $d= line to remove"
			continue
		fi
		mkdir -p "$TMP/no-$d"
		grep -v "^$d=" "$unit" >"$TMP/no-$d/$name"
		if systemd-analyze security --offline=true --threshold="$max" "$TMP/no-$d/$name" \
		    >"$OUT" 2>&1; then
			fail "$name without $d= still meets threshold $max" \
			    "(exposure $(exposure "$TMP/no-$d/$name"))"
		else
			pass "$name without $d= fails threshold $max" \
			    "(exposure $(exposure "$TMP/no-$d/$name"))"
		fi
	done
}

check "$EXCHANGE_UNIT" $EXCHANGE_MAX
check "$SYNC_UNIT" $SYNC_MAX

# The exchange needs AF_UNIX (syslog, sd_notify, PostgreSQL's socket) and IP;
# anything else stays closed.
assert_grep '^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$' "$EXCHANGE_UNIT" \
	"exchange unit: address families AF_UNIX AF_INET AF_INET6 only"
assert_grep '^SystemCallFilter=@system-service$' "$EXCHANGE_UNIT" \
	"exchange unit: system calls limited to @system-service"
finish
