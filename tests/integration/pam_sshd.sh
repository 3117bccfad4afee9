#!/bin/sh
# End to end: a real OpenSSH sshd on a loopback port, with its own config,
# host key and PID file in a temporary directory, authenticates through a
# dedicated PAM service that uses pam_agentid.so.  An agent logs in as its
# mapped local user with a token typed at the keyboard-interactive prompt;
# a token with the wrong scope, an unmapped agent and a revoked token are
# refused; the audit log records every decision.  The same is done for
# sudo when it is installed, through a private sudoers drop-in that names
# a private PAM service (sudoers "pam_service").
#
# How the service name is chosen: OpenSSH 9.2 has no PAMServiceName option
# and uses its program name (__progname) as the PAM service, so sshd runs
# through a symbolic link named agentid-sshd-<random>, whose service file
# /etc/pam.d/agentid-sshd-<random> is created here and removed at exit.
# No existing file under /etc is changed.
#
# The ssh client answers the prompt through SSH_ASKPASS with
# SSH_ASKPASS_REQUIRE=force (OpenSSH >= 8.4), so no tty, sshpass or expect
# is needed.
#
# Needs root (useradd, sshd, /etc/pam.d); skipped (77) otherwise.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "pam_sshd: must run as root (creates users, PAM services, runs sshd)"
SSHD=/usr/sbin/sshd
SO=$top_builddir/pam-module/.libs/pam_agentid.so
[ -x "$SSHD" ] || skip "pam_sshd: $SSHD not installed (apt-get install openssh-server)"
command -v ssh >/dev/null 2>&1 || skip "pam_sshd: ssh client not installed"
command -v useradd >/dev/null 2>&1 || skip "pam_sshd: useradd not found"
[ -r "$SO" ] || skip "pam_sshd: $SO not built"
[ -x "$AGENTID" ] || skip "pam_sshd: agentid binary not found at $AGENTID"

RAND=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
SVC=agentid-sshd-$RAND
SUDO_SVC=agentid-sudo-$RAND
U1=agt${RAND}a
U2=agt${RAND}b
TD=example.org
ISS=https://exchange.example.org
AUD=spiffe://example.org/host/test
AGENT=spiffe://$TD/agent/deploy
ORCH=spiffe://$TD/orchestrator
CA=$TMP/ca
AUDIT=$TMP/audit.log
chmod 755 "$TMP"

# ---------------------------------------------------------------- cleanup (runs even on failure)
on_exit 'if [ -s "$TMP/sshd.pid" ]; then kill "$(cat "$TMP/sshd.pid")" 2>/dev/null; fi'
on_exit 'rm -f "/etc/pam.d/$SVC" "/etc/pam.d/$SUDO_SVC" "/etc/sudoers.d/agentid-test-$RAND"'
on_exit 'userdel -r "$U1" >/dev/null 2>&1; userdel -r "$U2" >/dev/null 2>&1'

useradd -m -s /bin/sh "$U1" || skip "pam_sshd: useradd $U1 failed"
useradd -m -s /bin/sh "$U2" || skip "pam_sshd: useradd $U2 failed"

# ---------------------------------------------------------------- trust, tokens, configuration
assert_exit 0 "$AGENTID" dev ca init --trust-domain "$TD" --dir "$CA" || finish

# The exchange server's issuer key, published as a JWK Set bound to no trust domain (a
# trust domain's JWT-SVID authority may not mint access tokens).
"$AGENTID" keygen --alg ES256 --out "$TMP/issuer.key" >/dev/null 2>&1 || fail "keygen"
"$AGENTID" bundle --trust-domain "$TD" --use jwt-svid "$TMP/issuer.key" >"$TMP/issuer.json" ||
	fail "issuer JWKS"
STATUS_URI=https://exchange.example.org/status/1

# An access token as agentid-exchange issues it: sub acts through AGENT (delegated by ORCH),
# with status-list entry IDX.  mint AGENT SCOPE IDX
mint() {
	"$AGENTID" dev sign --key "$TMP/issuer.key" --typ at+jwt --ttl 300 \
	    --claim iss="$ISS" --claim sub="spiffe://$TD/user/alice" --claim aud="$AUD" \
	    --claim client_id="$1" --claim scope="$2" --claim task=task-7 \
	    --claims-json "{\"act\":{\"sub\":\"$1\",\"act\":{\"sub\":\"$ORCH\"}},
	        \"status\":{\"status_list\":{\"idx\":$3,\"uri\":\"$STATUS_URI\"}}}"
}
mint "$AGENT" "ssh:login sudo" 1 >"$TMP/tok.good" || fail "mint good token"
mint "$AGENT" "read" 2 >"$TMP/tok.scope" || fail "mint wrong-scope token"
mint "spiffe://$TD/agent/intruder" "ssh:login sudo" 3 >"$TMP/tok.unmapped" || fail "mint unmapped"
mint "$AGENT" "ssh:login sudo" 7 >"$TMP/tok.revoked" || fail "mint revoked token"

# The issuer's status list, as a timer would keep it fresh on the host: entry 7 revoked.
make_status() {
	"$AGENTID" status-list make --key "$TMP/issuer.key" --uri "$STATUS_URI" --size 64 \
	    "$@" --out "$TMP/status.jwt" >/dev/null || fail "status-list make $*"
	chmod 644 "$TMP/status.jwt"
}
make_status --revoke 7

cat >"$TMP/pam.map" <<EOF
# SPIFFE ID pattern            local user
$AGENT                         $U1
EOF

cat >"$TMP/pam.conf" <<EOF
bundle = $CA/bundle.json
bundle = $TMP/issuer.json
issuer = $ISS
audience = $AUD
profile = access
scope = ssh:login
map = $TMP/pam.map
audit = $AUDIT
status = $TMP/status.jwt
EOF

cat >"/etc/pam.d/$SVC" <<EOF
# pam_agentid integration test (tests/integration/pam_sshd.sh); removed at exit.
auth     required  $SO conf=$TMP/pam.conf
account  required  $SO conf=$TMP/pam.conf
account  required  pam_permit.so
session  optional  $SO conf=$TMP/pam.conf
session  required  pam_permit.so
EOF

# ---------------------------------------------------------------- sshd
# In a sanitizer build the module needs the ASan runtime loaded first into Debian's sshd
# (which is not instrumented itself, and leaks by design: no leak check there).
SSHD_ENV=
if ldd "$top_builddir/.libs/libagentid.so" 2>/dev/null | grep -q libasan; then
	SSHD_ENV="env LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0"
fi
ssh-keygen -q -t ed25519 -N '' -f "$TMP/host_key" || fail "ssh-keygen"
mkdir -p /run/sshd "$TMP/bin"
ln -s "$SSHD" "$TMP/bin/$SVC"

start_sshd() {
	port=$1
	cat >"$TMP/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $TMP/host_key
PidFile $TMP/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication no
PermitRootLogin no
AuthorizedKeysFile none
AllowUsers $U1 $U2
StrictModes no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
MaxAuthTries 3
EOF
	rm -f "$TMP/sshd.pid"
	$SSHD_ENV "$TMP/bin/$SVC" -f "$TMP/sshd_config" -E "$TMP/sshd.log" || return 1
	i=0
	while [ $i -lt 50 ]; do
		if [ -s "$TMP/sshd.pid" ] && grep -q "Server listening" "$TMP/sshd.log" 2>/dev/null; then
			return 0
		fi
		if grep -q "Bind to port .* failed\|Cannot bind" "$TMP/sshd.log" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

PORT=
for try in 1 2 3 4 5; do
	p=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000))
	if start_sshd "$p"; then
		PORT=$p
		break
	fi
	[ -s "$TMP/sshd.pid" ] && kill "$(cat "$TMP/sshd.pid")" 2>/dev/null
done
if [ -z "$PORT" ]; then
	fail "sshd did not start"
	sed 's/^/    /' "$TMP/sshd.log" 2>/dev/null | tail -20
	finish
fi
pass "sshd ($SVC) listening on 127.0.0.1:$PORT"

cat >"$TMP/askpass" <<EOF
#!/bin/sh
# Answers sshd's keyboard-interactive prompt ("\$1") with the current token.
echo "\$1" >>"$TMP/prompts"
cat "$TMP/tok.current"
EOF
chmod 755 "$TMP/askpass"

# ssh_as USER TOKEN_FILE: log in, print who we are and the exported identity.
ssh_as() {
	cp "$2" "$TMP/tok.current"
	SSH_ASKPASS=$TMP/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
	    timeout 60 ssh -F /dev/null -p "$PORT" \
	    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	    -o PreferredAuthentications=keyboard-interactive -o PubkeyAuthentication=no \
	    -o NumberOfPasswordPrompts=1 -o ConnectTimeout=10 -o LogLevel=ERROR \
	    "$1@127.0.0.1" \
	    'echo "user=$(id -un)"; echo "agent=$AGENTID_AGENT"; echo "chain=$AGENTID_CHAIN";
	     echo "task=$AGENTID_TASK"; echo "subject=$AGENTID_SUBJECT"' </dev/null
}

assert_exit 0 ssh_as "$U1" "$TMP/tok.good"
assert_grep "^user=$U1\$" "$OUT" "agent logged in as its mapped user"
assert_grep "^agent=$AGENT\$" "$OUT" "session sees AGENTID_AGENT"
assert_grep "^chain=$AGENT,$ORCH\$" "$OUT" "session sees AGENTID_CHAIN"
assert_grep "^task=task-7\$" "$OUT" "session sees AGENTID_TASK"
assert_grep "^subject=spiffe://$TD/user/alice\$" "$OUT" "session sees AGENTID_SUBJECT"
assert_grep "Agent token: $" "$TMP/prompts" "the prompt came from pam_agentid"

assert_exit 255 ssh_as "$U1" "$TMP/tok.scope"
assert_exit 255 ssh_as "$U1" "$TMP/tok.unmapped"
assert_exit 255 ssh_as "$U2" "$TMP/tok.good"
echo "garbage.token.here" >"$TMP/tok.garbage"
assert_exit 255 ssh_as "$U1" "$TMP/tok.garbage"
assert_exit 255 ssh_as "$U1" "$TMP/tok.revoked"

# ---------------------------------------------------------------- revocation of a used token
make_status --revoke 7 --revoke 1
assert_exit 255 ssh_as "$U1" "$TMP/tok.good"
make_status --revoke 7
assert_exit 0 ssh_as "$U1" "$TMP/tok.good"

# ---------------------------------------------------------------- sudo
if command -v sudo >/dev/null 2>&1 && [ -d /etc/sudoers.d ]; then
	sed -e 's/^scope = ssh:login$/scope = sudo/' "$TMP/pam.conf" >"$TMP/pam-sudo.conf"
	echo "source = env,conv" >>"$TMP/pam-sudo.conf"
	cat >"/etc/pam.d/$SUDO_SVC" <<EOF
# pam_agentid integration test (tests/integration/pam_sshd.sh); removed at exit.
auth     required  $SO conf=$TMP/pam-sudo.conf
account  required  $SO conf=$TMP/pam-sudo.conf
account  required  pam_permit.so
session  required  pam_permit.so
EOF
	# Only U1, only /usr/bin/id, always authenticate, through the private service.
	cat >"$TMP/sudoers" <<EOF
Defaults:$U1 pam_service=$SUDO_SVC, timestamp_timeout=0, !lecture, passwd_tries=1
$U1 ALL=(root) /usr/bin/id
EOF
	if visudo -cf "$TMP/sudoers" >/dev/null 2>&1; then
		install -m 0440 "$TMP/sudoers" "/etc/sudoers.d/agentid-test-$RAND"
		chmod 644 "$TMP/tok.good" "$TMP/tok.scope" "$TMP/tok.unmapped" "$TMP/tok.revoked"
		# sudo_as TOKEN_FILE: the token in the environment of the invoking user.
		sudo_as() {
			su -s /bin/sh "$U1" -c "AGENTID_TOKEN=\$(cat '$1') sudo -S -p '' /usr/bin/id -un" </dev/null
		}
		assert_exit 0 sudo_as "$TMP/tok.good"
		assert_grep '^root$' "$OUT" "sudo with an agent token runs as root"
		assert_exit 1 sudo_as "$TMP/tok.scope"
		assert_exit 1 sudo_as "$TMP/tok.unmapped"
		assert_exit 1 sudo_as "$TMP/tok.revoked"
		assert_grep "\"resource\":\"$SUDO_SVC $U1\"" "$AUDIT" "audit: sudo login recorded"
		# Not tested: the token typed at sudo's prompt.  sudo refuses conversation answers
		# of 512 bytes or more (PAM_MAX_RESP_SIZE), and an access token is longer; with
		# sudo the token comes from the environment (or a file), as configured above.
	else
		fail "visudo rejected the test drop-in"
	fi
else
	echo "# sudo not installed: sudo checks skipped (apt-get install sudo to run them)"
fi

# ---------------------------------------------------------------- audit log
if [ -s "$AUDIT" ]; then
	n_allowed=$(grep -c '"event":"login.allowed"' "$AUDIT")
	assert_grep '"event":"login.allowed"' "$AUDIT" "audit: login.allowed recorded"
	assert_grep '"reason":"insufficient_scope"' "$AUDIT" "audit: wrong scope recorded"
	assert_grep '"reason":"not_mapped"' "$AUDIT" "audit: unmapped agent recorded"
	assert_grep '"reason":"revoked"' "$AUDIT" "audit: revoked token recorded"
	assert_grep "\"resource\":\"$SVC $U1\"" "$AUDIT" "audit: service and user recorded"
	assert_grep "\"agent\":\"$AGENT\"" "$AUDIT" "audit: agent recorded"
	[ "$n_allowed" -ge 1 ] && pass "audit: $n_allowed allowed login(s)"
	if "$AGENTID" audit verify "$AUDIT" >"$OUT" 2>"$ERR"; then
		pass "agentid audit verify accepts the log"
	else
		case $? in
		1) fail "agentid audit verify rejects the log"; lib_show_output ;;
		*) echo "# agentid audit verify unavailable in this build" ;;
		esac
	fi
else
	fail "audit log $AUDIT was not written"
fi
assert_no_grep "$(tr -d "\n" <"$TMP/tok.good" | tail -c 40)" "$TMP/sshd.log" "the token never appears in sshd's log"

finish
