#!/bin/sh
# Integration test of the audit log and status lists through the agentid CLI:
# the tamper matrix (edit, delete, reorder, insert, truncate under witness
# checkpoints, re-signed with another key), 8 concurrent writers x 10,000
# records, writers killed with SIGKILL, rotation, trace, and status lists
# (flipped bits, expired and wrongly signed lists, http fetch with ETag).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -x "$AGENTID" ] || skip "agentid binary not found at $AGENTID"

KEY=$TMP/audit.pem
EVIL=$TMP/evil.pem
"$AGENTID" keygen --alg EdDSA --out "$KEY" >/dev/null 2>&1 || skip "keygen does not work"
"$AGENTID" keygen --alg EdDSA --out "$EVIL" >/dev/null 2>&1

# n JSON records on stdout: {"event":"access.allowed","resource":"GET /r/<i>",...}
records() {
	awk -v n="$1" -v tag="${2:-r}" 'BEGIN { for (i = 1; i <= n; i++)
		printf("{\"event\":\"access.allowed\",\"agent\":\"spiffe://example.org/a\",\"jti\":\"%s-%d\",\"resource\":\"GET /%s/%d\",\"decision\":\"allow\"}\n", tag, i, tag, i) }'
}

# A JSON member of the verify summary in $OUT.
member() {
	tr -d ' \n' <"$OUT" | sed -n "s/.*\"$1\":\([0-9a-z]*\).*/\1/p"
}

# ---------------------------------------------------------------- help
for sub in "" append verify trace vkey; do
	assert_exit 0 "$AGENTID" audit $sub --help
	assert_grep '^usage: agentid audit' "$OUT" "audit $sub --help prints usage"
done
for sub in "" check make; do
	assert_exit 0 "$AGENTID" status-list $sub --help
	assert_grep '^usage: agentid status-list' "$OUT" "status-list $sub --help prints usage"
done
assert_exit 2 "$AGENTID" audit
assert_exit 2 "$AGENTID" audit frobnicate
assert_exit 2 "$AGENTID" audit append --file "$TMP/x.log"
assert_exit 2 "$AGENTID" audit append --file "$TMP/x.log" --event e --json '{"seq":1}'
assert_exit 2 "$AGENTID" audit verify
assert_exit 2 "$AGENTID" audit trace "$TMP/x.log"

# ---------------------------------------------------------------- the base log
# One stream: header (line 1, seq 0), records seq 1..4, checkpoint seq 5 (line 6),
# records 6..10, checkpoint 11, ...: line n holds seq n-1.
BASE=$TMP/base.log
WIT=$TMP/base.witness
records 30 | assert_exit 0 "$AGENTID" audit append --file "$BASE" --key "$KEY" --stdin \
	--checkpoint-every 5 --checkpoints "$WIT" --origin audit.example/test
LINES=$(wc -l <"$BASE" | tr -d ' ')
CPS=$(grep -c '"event":"checkpoint"' "$BASE")
assert_exit 0 "$AGENTID" audit verify --key "$KEY" "$BASE"
assert_grep "^intact: 1 file, 1 stream \(1 closed\), $LINES records, $CPS checkpoints \($CPS trusted\)" \
	"$OUT" "intact log verifies with exact counts"
assert_exit 0 "$AGENTID" audit verify --key "$KEY" --checkpoints "$WIT" --require-checkpoint "$BASE"
assert_grep "$CPS witness checkpoints matched" "$OUT" "witness copies match"
"$AGENTID" audit vkey --key "$KEY" --origin audit.example/test >"$TMP/vkey" 2>/dev/null
assert_grep '^audit\.example/test\+[0-9a-f]{8}\+' "$TMP/vkey" "audit vkey prints a note verifier key"
assert_exit 0 "$AGENTID" audit verify --key "$TMP/vkey" "$BASE"
assert_grep "\($CPS trusted\)" "$OUT" "a note verifier key works as --key"

# verify_fault FILE FAULT LINE SEQ DESC [extra verify options]
verify_fault() {
	f=$1 fault=$2 line=$3 seq=$4 desc=$5
	shift 5
	assert_exit 1 "$AGENTID" audit verify --key "$KEY" "$@" "$f"
	assert_grep "^agentid: audit verify: .*$(basename "$f" | sed 's/\./\\./g'):$line: stream .* seq $seq: $fault: " \
		"$ERR" "$desc names line $line, seq $seq ($fault)"
}

T=$TMP/tampered.log
# Edit: the resource of line 9 (seq 8, the 7th event).
sed '9s|GET /r/7|GET /r/X|' "$BASE" >"$T"
verify_fault "$T" hash_mismatch 9 8 "edited record"
# Delete line 9 (seq 8): noticed at the next record (now line 9), seq 8 missing.
sed '9d' "$BASE" >"$T"
verify_fault "$T" missing 9 8 "deleted record"
# Reorder: swap lines 9 and 10.
awk 'NR == 9 { held = $0; next } { print } NR == 10 { print held }' "$BASE" >"$T"
verify_fault "$T" reordered 9 9 "reordered records"
# Insert a copy of line 3 after line 11.
awk '{ print } NR == 3 { copy = $0 } NR == 11 { print copy }' "$BASE" >"$T"
verify_fault "$T" inserted 12 2 "inserted copy"
# Insert a record of an unknown stream.
{ cat "$BASE"; printf '{"event":"x","hash":"%064d","prev":"%064d","seq":4,"stream":"ghost","ts":"t"}\n' 0 0; } >"$T"
verify_fault "$T" hash_mismatch $((LINES + 1)) 4 "inserted foreign record"
# Truncate records covered by checkpoints: keep 15 lines; the witness copies expose it.
head -n 15 "$BASE" >"$T"
assert_exit 0 "$AGENTID" audit verify --key "$KEY" "$T"
pass "a cut at the end of the file alone is a well-formed prefix (documented)"
verify_fault "$T" truncated 15 15 "truncation under witness checkpoints" --checkpoints "$WIT"
# Re-signed: the same records written again as a new log signed by another key.
grep -v '"event":"\(stream.start\|stream.end\|checkpoint\)"' "$BASE" |
	sed 's/"hash":"[0-9a-f]*",\{0,1\}//; s/"prev":"[0-9a-f]*",//; s/"seq":[0-9]*,//; s/"stream":"[^"]*",//; s/"ts":"[^"]*",//; s/,}$/}/' |
	sed '3s|GET /r/3|GET /r/X|' >"$TMP/forged.jsonl"
"$AGENTID" audit append --file "$T.resigned" --key "$EVIL" --stdin --checkpoint-every 5 \
	--origin audit.example/test <"$TMP/forged.jsonl" 2>"$ERR"
assert_exit 0 "$AGENTID" audit verify "$T.resigned"
pass "re-signed log is self-consistent without --key"
verify_fault "$T.resigned" untrusted_key 6 5 "log re-signed with another key"
# The right key under a name the signature does not carry.
assert_exit 1 "$AGENTID" audit verify --key "$KEY" --key-name other.example/log "$BASE"
assert_grep 'untrusted_key' "$ERR" "--key-name must match the signature's key name"

# ---------------------------------------------------------------- trace
TR=$TMP/trace.log
app() { "$AGENTID" audit append --file "$TR" --key "$KEY" "$@"; }
app --event exchange.granted --field jti=t1 --field agent=spiffe://example.org/orch \
	--field subject=alice --field task=T1 --field scope="read write"
app --event exchange.granted --field jti=t2 --field parent_jti=t1 \
	--field agent=spiffe://example.org/sub --field task=T1 --field scope=read
app --event access.allowed --field jti=t2 --field task=T1 --field resource="GET /docs" --field decision=allow
app --event access.denied --field jti=t1 --field resource="DELETE /docs" --field decision=deny \
	--field reason=insufficient_scope
app --event exchange.denied --field parent_jti=t2 --field task=T1 --field reason=insufficient_scope
app --event access.allowed --field jti=other --field resource="GET /elsewhere"
assert_exit 0 "$AGENTID" audit trace --key "$KEY" --jti t1 "$TR"
assert_grep '^token t1 .*agent spiffe://example.org/orch' "$OUT" "trace: root token"
assert_grep '^\|-- token t2 .*scope read ' "$OUT" "trace: delegated token under its parent"
assert_grep '^\|   \|-- .* access.allowed .*GET /docs' "$OUT" "trace: action under the token"
assert_grep 'exchange.denied .*insufficient_scope' "$OUT" "trace: denied delegation attempt"
assert_no_grep 'elsewhere' "$OUT" "trace: unrelated actions left out"
assert_exit 0 "$AGENTID" audit trace --task T1 --json "$TR"
assert_grep '"jti": "t2"' "$OUT" "trace --task --json has the delegated token"
assert_exit 1 "$AGENTID" audit trace --jti nothing-like-it "$TR"
sed '2s|"jti":"t1"|"jti":"t9"|' "$TR" >"$TR.bad"
assert_exit 1 "$AGENTID" audit trace --jti t1 "$TR.bad"
assert_grep 'does not verify' "$ERR" "trace refuses a log that does not verify"

# ---------------------------------------------------------------- 8 writers x 10,000 records
C=$TMP/concurrent.log
records 10000 c >"$TMP/10k.jsonl"
pids=
for w in 1 2 3 4 5 6 7 8; do
	"$AGENTID" audit append --file "$C" --key "$KEY" --stdin --checkpoint-every 1000 \
		--component "w$w" --fsync never <"$TMP/10k.jsonl" &
	pids="$pids $!"
done
okw=0
for p in $pids; do
	if wait "$p"; then okw=$((okw + 1)); fi
done
assert_eq "$okw" 8 "8 concurrent writers finished"
assert_exit 0 "$AGENTID" audit verify --key "$KEY" --json --require-checkpoint "$C"
assert_eq "$(member streams)" 8 "8 streams"
assert_eq "$(member streams_closed)" 8 "8 streams closed"
# A writer that starts while another's record is being copied may see a line without its
# newline yet and terminate it: an empty line, which carries nothing and is skipped.
assert_eq "$(member records)" "$(grep -c . "$C")" "every non-empty line is a verified record"
assert_eq "$(grep -c '"event":"access.allowed"' "$C")" 80000 "exactly 80,000 event records"
assert_eq "$(member torn)" 0 "no torn lines"

# ---------------------------------------------------------------- writers killed with SIGKILL
K=$TMP/killed.log
i=0
while [ $i -lt 5 ]; do
	yes '{"event":"crash.test","resource":"GET /loop"}' |
		"$AGENTID" audit append --file "$K" --key "$KEY" --stdin --checkpoint-every 50 \
			--fsync never 2>/dev/null &
	wpid=$!
	sleep 0.$((2 + i))
	kill -9 "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	i=$((i + 1))
done
assert_exit 0 "$AGENTID" audit verify --key "$KEY" --json "$K"
assert_eq "$(member streams)" 5 "5 killed writers left 5 streams that verify"
assert_eq "$(member streams_closed)" 0 "none of them closed"
records 10 after | assert_exit 0 "$AGENTID" audit append --file "$K" --key "$KEY" --stdin
assert_exit 0 "$AGENTID" audit verify --key "$KEY" --json "$K"
assert_eq "$(member streams)" 6 "a restarted writer continues with a new stream"
assert_eq "$(member streams_closed)" 1 "the restarted writer's stream is closed"
# A torn final line (a writer killed inside write(2)) is reported, not fatal.
printf '{"event":"crash.test","ts":"2025-' >>"$K"
assert_exit 0 "$AGENTID" audit verify --key "$KEY" "$K"
assert_grep 'torn line' "$ERR" "a torn final line is reported"
assert_exit 1 "$AGENTID" audit verify --key "$KEY" --strict "$K"
assert_grep ': torn: ' "$ERR" "--strict refuses a torn line"
records 3 more | assert_exit 0 "$AGENTID" audit append --file "$K" --key "$KEY" --stdin
assert_exit 0 "$AGENTID" audit verify --key "$KEY" --json "$K"
assert_eq "$(member streams)" 7 "a writer after a torn line starts cleanly"

# ---------------------------------------------------------------- rotation
R=$TMP/rot/audit.log
mkdir -p "$TMP/rot"
records 200 rot | assert_exit 0 "$AGENTID" audit append --file "$R" --key "$KEY" --stdin \
	--checkpoint-every 20 --rotate-bytes 8000
NF=$(ls "$TMP/rot" | wc -l | tr -d ' ')
[ "$NF" -ge 3 ] && pass "rotation made $NF files" || fail "rotation made $NF files"
assert_exit 0 "$AGENTID" audit verify --key "$KEY" "$R".* "$R"
assert_grep "^intact: $NF files, 1 stream" "$OUT" "the chain continues across rotated files"
assert_exit 1 "$AGENTID" audit verify --key "$KEY" "$R"
assert_grep 'no_header' "$ERR" "the live file alone lacks its stream's beginning"

# ---------------------------------------------------------------- status lists
ISSK=$TMP/issuer.pem
"$AGENTID" keygen --alg ES256 --out "$ISSK" >/dev/null 2>&1
OTHERK=$TMP/other.pem
"$AGENTID" keygen --alg ES256 --out "$OTHERK" >/dev/null 2>&1
"$AGENTID" bundle --trust-domain example.org --use jwt-svid "$ISSK" >"$TMP/issuer.json" 2>/dev/null
URI=https://issuer.example.org/statuslists/1
tok() { # tok IDX [MEMBERS]: a token of entry IDX, with the JSON members MEMBERS ("a":1,...) too
	"$AGENTID" dev sign --key "$ISSK" --typ at+jwt --claim sub=spiffe://example.org/a \
		--claims-json "{${2:+$2,}\"status\":{\"status_list\":{\"idx\":$1,\"uri\":\"$URI\"}}}" 2>/dev/null
}
TOK3=$(tok 3)
TOK5=$(tok 5)
TOK7=$(tok 7)
LIST=$TMP/list.jwt
assert_exit 0 "$AGENTID" status-list make --key "$ISSK" --uri "$URI" --size 64 --revoke 5 \
	--suspend 7 --out "$LIST"
assert_exit 0 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$LIST" "$TOK3"
assert_grep '^valid ' "$OUT" "entry 3 is valid"
assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$LIST" "$TOK5"
assert_grep '^revoked ' "$OUT" "entry 5 is revoked"
assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$LIST" --json "$TOK7"
assert_grep '"status": "suspended"' "$OUT" "entry 7 is suspended"
# Flip a bit: the next check sees it.
assert_exit 0 "$AGENTID" status-list make --key "$ISSK" --uri "$URI" --size 64 --revoke 3 --out "$LIST"
assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$LIST" "$TOK3"
assert_grep '^revoked ' "$OUT" "a flipped bit is seen"
# Expired, wrongly signed, or for another URI: refused, fail closed.
assert_exit 0 "$AGENTID" status-list make --key "$ISSK" --uri "$URI" --size 64 --exp-in -3600 --out "$LIST"
assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$LIST" "$TOK3"
assert_grep 'expired' "$ERR" "an expired list is refused"
assert_exit 0 "$AGENTID" status-list make --key "$OTHERK" --uri "$URI" --size 64 --out "$LIST"
assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$LIST" "$TOK3"
assert_grep 'unknown_kid' "$ERR" "a list signed by another key is refused"
assert_exit 0 "$AGENTID" status-list make --key "$ISSK" --uri "$URI/2" --size 64 --out "$LIST"
assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$LIST" "$TOK3"
assert_grep 'claim_mismatch' "$ERR" "a list for another URI is refused"
# A token signed by someone else is not looked up at all.
BADTOK=$("$AGENTID" dev sign --key "$OTHERK" --claims-json "{\"status\":{\"status_list\":{\"idx\":1,\"uri\":\"$URI\"}}}" 2>/dev/null)
assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$LIST" "$BADTOK"
# The token's own window comes first: expired or not yet valid, whatever the list says.
NOW=$(date +%s)
OLDTOK=$(tok 3 "\"exp\":$((NOW - 3600))")
assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$LIST" "$OLDTOK"
assert_grep '^expired' "$OUT" "an expired token is reported expired"
assert_grep 'expired' "$ERR" "with the reason"
EARLYTOK=$(tok 3 "\"nbf\":$((NOW + 3600))")
assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$LIST" --json "$EARLYTOK"
assert_grep '"status": "not_yet_valid"' "$OUT" "a token before its nbf is not yet valid"

# Over HTTP (loopback only, --allow-http), with the URI the token names.
if command -v python3 >/dev/null 2>&1; then
	PORT=$((20000 + $$ % 20000))
	mkdir -p "$TMP/www/statuslists"
	HURI=http://127.0.0.1:$PORT/statuslists/1
	"$AGENTID" status-list make --key "$ISSK" --uri "$HURI" --size 16 --revoke 2 \
		--out "$TMP/www/statuslists/1" 2>/dev/null
	(cd "$TMP/www" && exec python3 -m http.server "$PORT" --bind 127.0.0.1) >/dev/null 2>&1 &
	HPID=$!
	on_exit "kill $HPID 2>/dev/null"
	n=0
	while [ $n -lt 50 ] && ! python3 -c "import urllib.request; urllib.request.urlopen('$HURI')" 2>/dev/null; do
		sleep 0.1
		n=$((n + 1))
	done
	HTOK=$("$AGENTID" dev sign --key "$ISSK" --claims-json "{\"status\":{\"status_list\":{\"idx\":2,\"uri\":\"$HURI\"}}}" 2>/dev/null)
	assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$HURI" --allow-http "$HTOK"
	assert_grep '^revoked ' "$OUT" "a list fetched over loopback HTTP"
	assert_exit 1 "$AGENTID" status-list check --bundle "$TMP/issuer.json" --list "$HURI" "$HTOK"
	assert_grep 'scheme not allowed' "$ERR" "http refused without --allow-http"
	kill "$HPID" 2>/dev/null
fi

finish
