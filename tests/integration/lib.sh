#!/bin/sh
# Shared helpers of the integration tests (POSIX sh).  Source it first:
#
#   . "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
#
# It provides
#   $AGENTID, $top_srcdir, $top_builddir   the binary under test and the trees
#   $TMP                                   a private directory removed on exit
#   pass DESC / fail DESC                  count a check
#   skip REASON                            exit 77 (skipped) with a message
#   assert_exit CODE CMD [ARGS...]         runs CMD (stdin inherited); stdout and
#                                          stderr land in $OUT and $ERR (files)
#   assert_eq GOT WANT DESC                string equality
#   assert_grep REGEX FILE DESC            an extended regex matches a line of FILE
#   assert_no_grep REGEX FILE DESC         ... matches no line of FILE
#   assert_one_line REGEX FILE DESC        FILE has exactly one line, matching REGEX
#   on_exit CMD                            run CMD (eval'd) at exit, before $TMP goes
#   finish                                 prints "N passed, M failed" and exits
#                                          0 when M == 0, 1 otherwise
# Checks print "ok - DESC" or "FAIL - DESC" (with the command's output).

set -u

if [ -z "${top_srcdir:-}" ]; then
	top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
fi
top_builddir=${top_builddir:-$(pwd)}
AGENTID=${AGENTID:-$top_builddir/agentid}
export top_srcdir top_builddir AGENTID

T_PASS=0
T_FAIL=0
T_EXIT_HOOKS=
TMP=$(mktemp -d "${TMPDIR:-/tmp}/agentid-test.XXXXXX") || {
	echo "cannot create a temporary directory" >&2
	exit 99
}
OUT=$TMP/.stdout
ERR=$TMP/.stderr
: >"$OUT"
: >"$ERR"

lib_cleanup() {
	if [ -n "$T_EXIT_HOOKS" ]; then
		eval "$T_EXIT_HOOKS" || :
	fi
	[ -n "${AGENTID_TEST_KEEP:-}" ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap lib_cleanup EXIT
trap 'exit 130' INT TERM HUP

on_exit() {
	T_EXIT_HOOKS="$T_EXIT_HOOKS
$1"
}

pass() {
	T_PASS=$((T_PASS + 1))
	echo "ok - $*"
}

fail() {
	T_FAIL=$((T_FAIL + 1))
	echo "FAIL - $*"
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# Shows the last command's output, indented, after a failure.
lib_show_output() {
	if [ -s "$OUT" ]; then
		echo "  stdout:"
		head -n 20 "$OUT" | sed 's/^/    /'
	fi
	if [ -s "$ERR" ]; then
		echo "  stderr:"
		head -n 20 "$ERR" | sed 's/^/    /'
	fi
}

assert_exit() {
	want=$1
	shift
	# "if" keeps a caller's "set -e" from ending the script on the expected failure.
	if "$@" >"$OUT" 2>"$ERR"; then
		got=0
	else
		got=$?
	fi
	if [ "$got" -eq "$want" ]; then
		pass "exit $want: $*"
		return 0
	fi
	fail "exit $got, wanted $want: $*"
	lib_show_output
	return 1
}

assert_eq() {
	if [ "$1" = "$2" ]; then
		pass "$3"
		return 0
	fi
	fail "$3: got '$1', wanted '$2'"
	return 1
}

assert_grep() {
	if grep -E -q -- "$1" "$2"; then
		pass "$3"
		return 0
	fi
	fail "$3: no line of $(basename "$2") matches /$1/"
	head -n 20 "$2" | sed 's/^/    /'
	return 1
}

assert_no_grep() {
	if ! grep -E -q -- "$1" "$2"; then
		pass "$3"
		return 0
	fi
	fail "$3: a line of $(basename "$2") matches /$1/"
	head -n 20 "$2" | sed 's/^/    /'
	return 1
}

assert_one_line() {
	n=$(wc -l <"$2" | tr -d ' ')
	if [ "$n" -eq 1 ] && grep -E -q -- "$1" "$2"; then
		pass "$3"
		return 0
	fi
	fail "$3: wanted exactly one line matching /$1/, got $n line(s)"
	head -n 20 "$2" | sed 's/^/    /'
	return 1
}

# wait_until TENTHS COMMAND...: runs COMMAND (its output discarded) every tenth of a second
# until it succeeds, at most TENTHS times; fails when it never did.
wait_until() {
	w_n=$1
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		w_n=$((w_n - 1))
		[ "$w_n" -gt 0 ] || return 1
		sleep 0.1
	done
}

# ngx_conf_head PREFIX WORKERS CONNECTIONS: prints the top of a test nginx.conf, up to and
# including "http {": $MODULE loaded, the error log (info), the pid file and every temporary
# path under PREFIX, and "user root" when run as root.  The caller writes the rest.
ngx_conf_head() {
	cat <<EOF
load_module $MODULE;
$([ "$(id -u)" -eq 0 ] && echo "user root;")
worker_processes $2;
error_log $1/logs/error.log info;
pid $1/nginx.pid;
events { worker_connections $3; }
http {
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}

finish() {
	echo "$T_PASS passed, $T_FAIL failed"
	if [ "$T_FAIL" -eq 0 ]; then
		exit 0
	fi
	exit 1
}
