#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined) and runs them.
#
#   run.sh SRCDIR BUILDDIR smoke [SECONDS]        every target for SECONDS (default 20) each
#   run.sh SRCDIR BUILDDIR run TARGET SECONDS     one target for a longer campaign
#
# Crashes are written to BUILDDIR/fuzz/crashes/<target>/; copy each into the unit tests as a
# regression vector.  The corpus grows in BUILDDIR/fuzz/corpus/<target>/ (seeds are read from
# tests/fuzz/corpus/<target>/ and never written).
set -euo pipefail
src=$1 build=$2 mode=$3
out="$build/fuzz"
mkdir -p "$out"
cc=${FUZZ_CC:-clang}
command -v "$cc" >/dev/null || { echo "fuzz: $cc not found; skipping" >&2; exit 0; }

libs="$(pkg-config --libs libcrypto libssl jansson libcurl zlib) -lpthread"
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
	-I$src/include -I$src/core -I$build $(pkg-config --cflags jansson libcrypto)"
extra_cflags=${FUZZ_EXTRA_CFLAGS:-}

# The library is compiled into each target so that all of it is instrumented.
lib_srcs=$(ls "$src"/core/*.c "$src"/spiffe/*.c)
objdir="$out/obj"
mkdir -p "$objdir"
# An object is rebuilt when its source or any header it may include is newer: a struct that
# changed in a header must never meet an object compiled against its old layout.
lib_hdrs=$(ls "$src"/include/agentid/*.h "$src"/core/*.h "$src"/spiffe/*.h "$build"/config.h \
	2>/dev/null)
stale() {
	local o=$1 f
	shift
	[ -f "$o" ] || return 0
	for f in "$@"; do
		[ "$f" -nt "$o" ] && return 0
	done
	return 1
}
build_lib() {
	local f o
	for f in $lib_srcs; do
		o="$objdir/$(basename "$(dirname "$f")")_$(basename "$f" .c).o"
		# shellcheck disable=SC2086
		if stale "$o" "$f" $lib_hdrs; then
			# shellcheck disable=SC2086
			"$cc" $cflags $extra_cflags -fsanitize=fuzzer-no-link -c "$f" -o "$o"
		fi
	done
}
# A target may name further sources (relative to SRCDIR, e.g. a server file it drives
# unchanged) and pkg-config packages in its header comment:
#   * fuzz-sources: token-exchange/form.c token-exchange/policy.c
#   * fuzz-libs: yaml-0.1
# Those sources are compiled with the same instrumentation, their folders on the include path.
target_tag() {
	sed -n "s/^[ /*]*fuzz-$2:[[:space:]]*//p" "$src/tests/fuzz/$1.c" | tr '\n' ' '
}
build_target() {
	local t=$1 f o objs=() incs=() tlibs=""
	local extra pkgs
	extra=$(target_tag "$t" sources)
	pkgs=$(target_tag "$t" libs)
	mkdir -p "$objdir/extra"
	for f in $extra; do
		incs+=("-I$src/$(dirname "$f")")
	done
	for f in $extra; do
		o="$objdir/extra/$(dirname "$f" | tr / _)_$(basename "$f" .c).o"
		# shellcheck disable=SC2086
		if stale "$o" "$src/$f" $lib_hdrs "$src/$(dirname "$f")"/*.h; then
			# shellcheck disable=SC2086
			"$cc" $cflags $extra_cflags "${incs[@]}" -fsanitize=fuzzer-no-link \
				-c "$src/$f" -o "$o"
		fi
		objs+=("$o")
	done
	# shellcheck disable=SC2086
	[ -n "$pkgs" ] && tlibs=$(pkg-config --libs $pkgs)
	# shellcheck disable=SC2086
	"$cc" $cflags $extra_cflags "${incs[@]}" "$src/tests/fuzz/$t.c" "$objdir"/*.o \
		"${objs[@]}" $libs $tlibs -o "$out/$t"
}
run_target() {
	local t=$1 secs=$2 corpus="$out/corpus/$1" seeds="$src/tests/fuzz/corpus/$1"
	local dict=() crashdir="$out/crashes/$t" log="$out/$t.${3:-smoke}.log"
	mkdir -p "$corpus" "$crashdir"
	[ -f "$src/tests/fuzz/$t.dict" ] && dict=(-dict="$src/tests/fuzz/$t.dict")
	[ -d "$seeds" ] || seeds=
	echo "fuzz: $t for ${secs}s"
	"$out/$t" "${dict[@]}" -max_total_time="$secs" -max_len=20000 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$crashdir/" "$corpus" $seeds 2>"$log" || {
		tail -n 40 "$log"; echo "fuzz: $t FAILED (artifacts in $crashdir)"; return 1; }
	# The last status line has the coverage reached (cov: edges, ft: features).
	grep -E '^#[0-9]+' "$log" | tail -n 1 | sed "s/^/fuzz: $t /"
	grep -E '^stat::number_of_executed_units' "$log" | sed "s/^/fuzz: $t /"
}

targets=$(cd "$src/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//')
build_lib
case "$mode" in
smoke)
	secs=${4:-20}
	failed=0 passed=0
	for t in $targets; do
		build_target "$t"
		if run_target "$t" "$secs"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	done
	echo "fuzz-smoke: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	;;
run)
	t=$4 secs=${5:-600}
	build_target "$t"
	run_target "$t" "$secs" run
	;;
*) echo "usage: run.sh SRCDIR BUILDDIR smoke|run ..." >&2; exit 2 ;;
esac
