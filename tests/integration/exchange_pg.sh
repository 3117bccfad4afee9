#!/bin/sh
# Two agentid-exchange nodes on one PostgreSQL database behave as one service:
# a token issued on node A is exchanged, introspected and revoked on node B, and
# a revocation on A shows in B's status list.  The test runs its own private
# PostgreSQL cluster (initdb + pg_ctl, unix socket in a temp dir, random port)
# and stops it by PID.  Skips when the PostgreSQL server binaries are absent.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/exchange_lib.sh"

xc_require
PGBIN=
for d in "${PG_BINDIR:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV) /usr/local/bin /usr/bin; do
	if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
		PGBIN=$d
		break
	fi
done
[ -n "$PGBIN" ] || skip "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found"

# initdb refuses to run as root: run the cluster as the postgres user when we are root.
PGDATA=$TMP/pg
mkdir -p "$PGDATA"
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || skip "running as root without a postgres user"
	chown postgres "$TMP" "$PGDATA"
	chmod 755 "$TMP"
	AS_PG="runuser -u postgres --"
else
	AS_PG=
fi
PGPORT=$(free_port)
$AS_PG "$PGBIN/initdb" -D "$PGDATA/data" -U agentid -A trust >"$TMP/initdb.log" 2>&1 ||
    { cat "$TMP/initdb.log"; skip "initdb failed"; }
$AS_PG "$PGBIN/pg_ctl" -D "$PGDATA/data" -l "$PGDATA/log" -w \
    -o "-k $PGDATA -p $PGPORT -c listen_addresses=''" start >"$TMP/pgctl.log" 2>&1 ||
    { cat "$TMP/pgctl.log" "$PGDATA/log"; skip "PostgreSQL did not start"; }
on_exit "$AS_PG '$PGBIN/pg_ctl' -D '$PGDATA/data' -m fast -w stop >/dev/null 2>&1"
PGPID=$(head -1 "$PGDATA/data/postmaster.pid")
[ -n "$PGPID" ] && pass "private PostgreSQL cluster runs (pid $PGPID)"
STORE="storage:
  driver: postgres
  conninfo: host=$PGDATA port=$PGPORT user=agentid dbname=postgres"

# Node A and node B: same keys, same trust, same database, different ports.
XC_DIR=$TMP/a
mkdir -p "$XC_DIR"
xc_setup "$XC_DIR" || skip "cannot create test credentials"
PORT_A=$(free_port)
PORT_B=$(free_port)
xc_config "$XC_DIR" "$PORT_A" "$STORE"
# Both nodes are one issuer: B uses A's issuer URL and serves the same keys.
cp -r "$XC_DIR" "$TMP/b"
sed -i "s/^    port: $PORT_A/    port: $PORT_B/" "$TMP/b/exchange.yaml"
"$AGENTID_EXCHANGE" --check-config "$XC_DIR/exchange.yaml" >/dev/null 2>&1 # creates the keys
cp "$XC_DIR"/keys/* "$TMP/b/keys/"
xc_start "$XC_DIR" nodeA || { fail "node A start"; finish; }
xc_start "$TMP/b" nodeB || { fail "node B start"; finish; }
pass "two nodes share one PostgreSQL database"

A_URL=https://127.0.0.1:$PORT_A
XC_PORT=$PORT_A
ORCH=$(xc_jwt orchestrator)
xc_post t1 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
    -d subject_token_type=$TT_JWT -d task_id=PG-1
expect_ok t1 "node A issues a token"
T1=$(jget t1 .access_token)

# Node B (its issuer is A's URL: both are one service behind one name).
XC_DIR_A=$XC_DIR
XC_DIR=$TMP/b
XC_PORT=$PORT_B
SUBJ=$("$AGENTID" dev jwt-svid --dir "$XC_DIR_A/ca" --id spiffe://example.org/sub --audience "$A_URL")
xc_post t2 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$T1" \
    -d subject_token_type=$TT_AT --data-urlencode "actor_token=$SUBJ" -d actor_token_type=$TT_JWT \
    -d scope=read
expect_ok t2 "node B exchanges a token issued by node A"
T2=$(jget t2 .access_token)
xc_post i1 /introspect orchestrator --data-urlencode "token=$T1"
[ "$(jget i1 .active)" = true ] && pass "node B introspects node A's token" || fail "introspect on B"
IDX2=$(claims "$T2" | jq .status.status_list.idx)
IDX1=$(claims "$T1" | jq .status.status_list.idx)
[ "$IDX1" != "$IDX2" ] && pass "status indexes are unique across nodes ($IDX1, $IDX2)" ||
    fail "duplicate status index"

# Revoke on A, see it on B (introspection and status list).
XC_DIR=$XC_DIR_A
XC_PORT=$PORT_A
xc_post r1 /admin/revoke admin -d task=PG-1
[ "$(jget r1 .revoked)" = 2 ] && pass "node A revokes the task (cascade: 2 tokens)" ||
    fail "revoke on A: $(cat "$TMP/r1.json")"
XC_DIR=$TMP/b
XC_PORT=$PORT_B
xc_post i2 /introspect orchestrator --data-urlencode "token=$T2"
[ "$(jget i2 .active)" = false ] && pass "node B sees the revocation" || fail "B: $(cat "$TMP/i2.json")"
curl -s --cacert "$XC_DIR/server.pem" -o "$TMP/sl.jwt" "https://127.0.0.1:$PORT_B/statuslists/0"
if command -v node >/dev/null 2>&1; then
	bits=$(node -e '
const z=require("zlib"),fs=require("fs");
const p=JSON.parse(Buffer.from(fs.readFileSync(process.argv[1],"utf8").split(".")[1],"base64url"));
const b=z.inflateSync(Buffer.from(p.status_list.lst,"base64url"));
console.log(process.argv.slice(2).map(Number).map(i=>(b[i>>3]>>(i&7))&1).join(""));' \
	    "$TMP/sl.jwt" "$IDX1" "$IDX2")
	[ "$bits" = 11 ] && pass "node B's status list shows node A's revocation" ||
	    fail "status list on B: $bits"
fi
xc_post t3 /token sub -d grant_type=$TE --data-urlencode "subject_token=$T2" \
    -d subject_token_type=$TT_AT
expect_oauth t3 400 invalid_grant "node B refuses to exchange a token revoked on A"

# DPoP replay across nodes.
if command -v node >/dev/null 2>&1; then
	P=$(node "$top_srcdir/tests/integration/dpop_proof.js" "$XC_DIR/dpop.key" POST "$A_URL/token")
	ORCH=$("$AGENTID" dev jwt-svid --dir "$XC_DIR_A/ca" --id spiffe://example.org/orchestrator --audience "$A_URL")
	XC_DIR=$XC_DIR_A
	XC_PORT=$PORT_A
	xc_post d1 /token orchestrator -H "DPoP: $P" -d grant_type=$TE \
	    --data-urlencode "subject_token=$ORCH" -d subject_token_type=$TT_JWT
	expect_ok d1 "DPoP proof accepted on node A"
	XC_DIR=$TMP/b
	XC_PORT=$PORT_B
	xc_post d2 /token orchestrator -H "DPoP: $P" -d grant_type=$TE \
	    --data-urlencode "subject_token=$ORCH" -d subject_token_type=$TT_JWT
	expect_oauth d2 400 invalid_dpop_proof "the same proof is a replay on node B"
fi

# ---- issuing a child races the revocation of its parent on the other node ----
# A psql session holds the parent's row lock, so node A's revocation stalls
# after its statement took its snapshot; meanwhile node B issues a child of
# that parent.  When the lock goes, the child must be refused or revoked with
# its parent: a child that is issued and still active escaped the cascade.
if command -v psql >/dev/null 2>&1; then
	PSQL="psql -X -q -At -h $PGDATA -p $PGPORT -U agentid -d postgres"
	XC_DIR=$XC_DIR_A
	XC_PORT=$PORT_A
	ORCH=$("$AGENTID" dev jwt-svid --dir "$XC_DIR_A/ca" --id spiffe://example.org/orchestrator --audience "$A_URL")
	SUBJ=$("$AGENTID" dev jwt-svid --dir "$XC_DIR_A/ca" --id spiffe://example.org/sub --audience "$A_URL")
	xc_post rp /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
	    -d subject_token_type=$TT_JWT -d task_id=RACE-1
	expect_ok rp "node A issues the parent for the race"
	RP=$(jget rp .access_token)
	RP_JTI=$(claims "$RP" | jq -r .jti)

	# psql_session: a psql that reads its commands from fd 7 and writes psql.out.
	psql_session() {
		rm -f "$TMP/psql.in" "$TMP/psql.out"
		mkfifo "$TMP/psql.in"
		$PSQL <"$TMP/psql.in" >"$TMP/psql.out" 2>&1 &
		PSQL_PID=$!
		on_exit "kill $PSQL_PID 2>/dev/null"
		exec 7>"$TMP/psql.in"
	}
	# race_child TAG PARENT: node B's child exchange of PARENT, in the background (CH_PID);
	# its status lands in race_child.code.
	race_child() {
		rm -f "$TMP/race_child.code"
		XC_DIR=$TMP/b
		XC_PORT=$PORT_B
		(xc_post "$1" /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$2" \
		    -d subject_token_type=$TT_AT --data-urlencode "actor_token=$SUBJ" \
		    -d actor_token_type=$TT_JWT -d scope=read
		    echo "$XC_CODE" >"$TMP/race_child.code") &
		CH_PID=$!
	}
	# child_answered_or_waits N: the child exchange answered, or N sessions wait for a lock.
	child_answered_or_waits() {
		[ -s "$TMP/race_child.code" ] || lock_waiters "$1"
	}
	psql_session
	printf "BEGIN;\nSELECT 'locked' FROM tokens WHERE jti = '%s' FOR SHARE;\n" "$RP_JTI" >&7
	wait_for() { # wait_for DESC COMMAND...: up to 20 s
		w_desc=$1
		shift
		wait_until 200 "$@" || { fail "timed out waiting: $w_desc"; return 1; }
	}
	lock_waiters() {
		[ "$($PSQL -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'" 2>/dev/null)" -ge "$1" ]
	}
	wait_for "psql holds the parent's row lock" grep -q '^locked$' "$TMP/psql.out"
	(xc_post race_rv /admin/revoke admin -d "jti=$RP_JTI"; echo "$XC_CODE" >"$TMP/race_rv.code") &
	RV_PID=$!
	wait_for "the revocation on node A waits for the row lock" lock_waiters 1 &&
	    pass "node A's revocation is under way and waits for the parent's row"
	race_child race_child "$RP"
	# Node B either answers now or its insert waits behind the revocation.
	wait_for "node B's child exchange answers or waits for a lock" child_answered_or_waits 2
	printf 'COMMIT;\n' >&7
	exec 7>&-
	wait "$RV_PID" "$CH_PID"
	wait "$PSQL_PID" 2>/dev/null
	[ "$(cat "$TMP/race_rv.code")" = 200 ] && pass "the revocation completes once the lock is gone" ||
	    fail "race revocation: $(cat "$TMP/race_rv.code") $(cat "$TMP/race_rv.json")"
	CH_CODE=$(cat "$TMP/race_child.code")
	if [ "$CH_CODE" = 200 ]; then
		RC=$(jget race_child .access_token)
		RC_IDX=$(claims "$RC" | jq .status.status_list.idx)
		XC_PORT=$PORT_B
		xc_post race_i /introspect orchestrator --data-urlencode "token=$RC"
		[ "$(jget race_i .active)" = false ] &&
		    pass "a child issued during the revocation is revoked with its parent" ||
		    fail "a child issued during the revocation escaped it: $(cat "$TMP/race_i.json")"
		[ "$(jget race_rv .revoked)" = 2 ] && pass "the cascade counts parent and child" ||
		    fail "race cascade count: $(cat "$TMP/race_rv.json")"
		if command -v node >/dev/null 2>&1; then
			curl -s --cacert "$XC_DIR/server.pem" -o "$TMP/sl2.jwt" "https://127.0.0.1:$PORT_A/statuslists/0"
			bits=$(node -e '
const z=require("zlib"),fs=require("fs");
const p=JSON.parse(Buffer.from(fs.readFileSync(process.argv[1],"utf8").split(".")[1],"base64url"));
const b=z.inflateSync(Buffer.from(p.status_list.lst,"base64url"));
console.log(process.argv.slice(2).map(Number).map(i=>(b[i>>3]>>(i&7))&1).join(""));' \
			    "$TMP/sl2.jwt" "$RC_IDX")
			[ "$bits" = 1 ] && pass "the status list marks the raced child revoked" ||
			    fail "status list bit of the raced child: $bits"
		fi
	elif [ "$CH_CODE" = 400 ] && [ "$(jget race_child .error)" = invalid_grant ]; then
		pass "a child of a parent being revoked is refused (invalid_grant)"
	else
		fail "race child exchange: $CH_CODE $(cat "$TMP/race_child.json")"
	fi

	# The insert side alone: a revocation that is not yet committed when node B
	# reads the parent (psql plays it) must still stop the child on commit.
	XC_DIR=$XC_DIR_A
	XC_PORT=$PORT_A
	xc_post rp2 /token orchestrator -d grant_type=$TE --data-urlencode "subject_token=$ORCH" \
	    -d subject_token_type=$TT_JWT -d task_id=RACE-2
	expect_ok rp2 "node A issues a second parent"
	RP2=$(jget rp2 .access_token)
	RP2_JTI=$(claims "$RP2" | jq -r .jti)
	psql_session
	printf "BEGIN;\nUPDATE tokens SET revoked = 1 WHERE jti = '%s';\nSELECT 'locked';\n" "$RP2_JTI" >&7
	wait_for "psql revokes the parent (uncommitted)" grep -q '^locked$' "$TMP/psql.out"
	race_child race_child2 "$RP2"
	wait_for "node B's child exchange answers or waits for the parent's row" \
	    child_answered_or_waits 1
	printf 'COMMIT;\n' >&7
	exec 7>&-
	wait "$CH_PID"
	wait "$PSQL_PID" 2>/dev/null
	XC_CODE=$(cat "$TMP/race_child.code")
	expect_oauth race_child2 400 invalid_grant \
	    "node B refuses a child whose parent's revocation commits while it issues"
fi

xc_stop nodeA
xc_stop nodeB
finish
