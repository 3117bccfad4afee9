#!/bin/sh
# Cross-implementation test against the npm package jose (tests/interop):
# tokens signed by jose verify with `agentid verify`, and tokens agentid
# signs verify with jose.  Skipped (77) without node or without
# tests/interop/node_modules (run `npm ci` in tests/interop to get them).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

INTEROP=$top_srcdir/tests/interop
NODE=${NODE:-node}

[ -x "$AGENTID" ] || skip "agentid binary not found at $AGENTID"
command -v "$NODE" >/dev/null 2>&1 || skip "node not found (install nodejs to run the jose interop test)"
[ -f "$INTEROP/node_modules/jose/package.json" ] ||
	skip "jose not installed: run 'cd $INTEROP && npm ci'"
major=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 18 ] || skip "node $major is too old for jose 5 (need >= 18)"

status=0
INTEROP_TMP=$TMP AGENTID=$AGENTID "$NODE" "$INTEROP/jose-interop.mjs" >"$TMP/interop.log" 2>&1 ||
	status=$?
cat "$TMP/interop.log"
T_PASS=$((T_PASS + $(grep -c '^ok - ' "$TMP/interop.log")))
T_FAIL=$((T_FAIL + $(grep -c '^FAIL - ' "$TMP/interop.log")))
if [ "$status" -ne 0 ] && ! grep -q '^FAIL - ' "$TMP/interop.log"; then
	fail "jose-interop.mjs exited with status $status"
fi
finish
