#!/bin/bash
# Builds ngx_http_agentid_module.so against Debian's nginx-dev tree.
#
#   build.sh SRCDIR BUILDDIR
#
# The configure-only nginx tree (/usr/share/nginx/src, or $NGINX_SRC) is
# copied into BUILDDIR/nginx-module/nginx-src first, so concurrent builds
# never write into the system tree.  nginx's configure runs once (again only
# when this module's config file changes); the module itself is recompiled
# by nginx's generated Makefile when its source changes.  The result,
# BUILDDIR/nginx-module/ngx_http_agentid_module.so, links the build tree's
# libagentid with an rpath, so tests can load it into /usr/sbin/nginx.

set -e

srcdir=$(cd "$1" && pwd)
builddir=$(cd "$2" && pwd)
ngxsrc=${NGINX_SRC:-/usr/share/nginx/src}
out=$builddir/nginx-module
objs=$out/objs

if [ ! -f "$ngxsrc/conf_flags" ]; then
	echo "build.sh: $ngxsrc/conf_flags not found (install nginx-dev)" >&2
	exit 1
fi

mkdir -p "$out"

if [ ! -f "$out/nginx-src/configure" ]; then
	rm -rf "$out/nginx-src.tmp"
	cp -a "$ngxsrc" "$out/nginx-src.tmp"
	mv "$out/nginx-src.tmp" "$out/nginx-src"
fi

if command -v dpkg-buildflags >/dev/null 2>&1; then
	cflags="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
	ldflags="$(dpkg-buildflags --get LDFLAGS)"
else
	cflags="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -Wdate-time -D_FORTIFY_SOURCE=2"
	ldflags="-Wl,-z,relro -Wl,-z,now"
fi

# A sanitizer build of the tree (configure --enable-sanitizers) instruments the module too;
# the tests then preload libasan into nginx.
cflags="$cflags ${AGENTID_SAN_CFLAGS:-}"
ldflags="$ldflags ${AGENTID_SAN_LDFLAGS:-}"

pc_libs=$(pkg-config --libs jansson libcrypto 2>/dev/null || echo "-ljansson -lcrypto")

export AGENTID_INCS="$srcdir/include"
export AGENTID_LIBS="-L$builddir/.libs -Wl,-rpath,$builddir/.libs -lagentid $pc_libs"

if [ ! -f "$objs/Makefile" ] || [ "$srcdir/nginx-module/config" -nt "$objs/Makefile" ] \
    || [ "$0" -nt "$objs/Makefile" ] \
    || [ "${AGENTID_SAN_CFLAGS:-}" != "$(cat "$out/san-flags" 2>/dev/null)" ]; then
	(
		cd "$out/nginx-src"
		. ./conf_flags
		./configure --with-cc-opt="$cflags -fPIC" --with-ld-opt="$ldflags -fPIC" \
		    "${NGX_CONF_FLAGS[@]}" \
		    --add-dynamic-module="$srcdir/nginx-module" --builddir="$objs"
	) >"$out/configure.log" 2>&1 || {
		tail -n 30 "$out/configure.log" >&2
		exit 1
	}
	printf '%s' "${AGENTID_SAN_CFLAGS:-}" >"$out/san-flags"
fi

make -s --no-print-directory -f "$objs/Makefile" -C "$out/nginx-src" modules
cp "$objs/ngx_http_agentid_module.so" "$out/ngx_http_agentid_module.so.tmp"
mv "$out/ngx_http_agentid_module.so.tmp" "$out/ngx_http_agentid_module.so"
