#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# install-test.sh - `make install DESTDIR=...` of the build tree, check that
# every promised file is installed, then build an outside program against the
# installed copy with nothing but `pkg-config --cflags --libs libsam` and run
# it against the installed library.
#
# Environment (set by Makefile.am): MAKE, CC, top_builddir, srcdir, prefix,
# libdir, includedir, bindir, sbindir, mandir, ocfdir, SANITIZER_FLAGS.
# shellcheck disable=SC2154 # the directory variables come from Makefile.am
set -u

fail() { echo "FAIL: $*"; exit 1; }
for v in MAKE CC top_builddir srcdir libdir includedir bindir sbindir mandir ocfdir; do
    eval "test -n \"\${$v:-}\"" || fail "$v is not set (run through make check)"
done
command -v pkg-config >/dev/null 2>&1 || { echo "SKIP: pkg-config not installed"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/libsam-install.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"

echo "== make install DESTDIR=$dest"
# Keep the inner make quiet and independent of the outer test harness.
if ! $MAKE -C "$top_builddir" install DESTDIR="$dest" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    fail "make install DESTDIR=$dest failed"
fi

# ---- the promised files ------------------------------------------------
missing=0
need() {  # need TEST PATH: report and count a missing file
    if test "$1" "$dest$2"; then echo "ok   $2"; else echo "MISSING $2"; missing=$((missing + 1)); fi
}
need -f "$includedir/corosync/sam.h"
need -f "$libdir/libsam.so.4.4.0"
need -L "$libdir/libsam.so.4"
need -L "$libdir/libsam.so"
need -f "$libdir/pkgconfig/libsam.pc"
for page in sam_overview sam_initialize sam_finalize sam_register sam_start \
    sam_stop sam_hc_send sam_hc_callback_register sam_warn_signal_set \
    sam_data_store sam_data_restore sam_data_getsize sam_mark_failed; do
    need -f "$mandir/man3/$page.3"
done
need -f "$mandir/man8/sam-run.8"
need -f "$mandir/man7/ocf_sam_service.7"
# The OCF agent, where pacemaker looks: OCF_ROOT/resource.d/PROVIDER/TYPE.
need -x "$ocfdir/resource.d/sam/service"
if test -e "$top_builddir/src/tools/sam-run"; then
    if test -x "$dest$bindir/sam-run"; then echo "ok   $bindir/sam-run"
    elif test -x "$dest$sbindir/sam-run"; then echo "ok   $sbindir/sam-run"
    else echo "MISSING $bindir/sam-run (or $sbindir/sam-run)"; missing=$((missing + 1)); fi
else
    echo "note: sam-run is not built in this tree; not expected in the install"
fi
test $missing -eq 0 || fail "$missing installed files missing"

# Both links must lead to the real library.
for link in libsam.so.4 libsam.so; do
    test "$(readlink -f "$dest$libdir/$link")" = "$(readlink -f "$dest$libdir/libsam.so.4.4.0")" ||
        fail "$libdir/$link does not point to libsam.so.4.4.0"
done

# ---- build an outside program with pkg-config only ---------------------
# The .pc file names the final prefix; PKG_CONFIG_SYSROOT_DIR relocates it
# into DESTDIR. pkg-config drops -I/usr/include and -L/usr/lib-style flags
# as "system" ones, which for a /usr prefix would silently pick the host's
# corosync libsam: the ALLOW_SYSTEM variables keep them.
PKG_CONFIG_PATH="$dest$libdir/pkgconfig"
PKG_CONFIG_SYSROOT_DIR="$dest"
PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1
PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_ALLOW_SYSTEM_CFLAGS PKG_CONFIG_ALLOW_SYSTEM_LIBS
flags=$(pkg-config --cflags --libs libsam) || fail "pkg-config --cflags --libs libsam failed"
echo "== pkg-config --cflags --libs libsam: $flags"

mkdir "$tmp/client"
cp "$srcdir/sam-client.c" "$tmp/client/" || exit 99
cd "$tmp/client" || exit 99
# A sanitizer build of the library needs the sanitizer runtime loaded first.
# shellcheck disable=SC2086
$CC ${SANITIZER_FLAGS:-} -o sam-client sam-client.c $flags -MD -MF sam-client.d ||
    fail "cannot build a program against the installed libsam"
grep -q "$dest$includedir/corosync/sam.h" sam-client.d ||
    fail "the program was not compiled with the installed sam.h"

# Run with the installed library; the client checks in /proc/self/maps that
# the dynamic linker really took it from there.
echo "== run sam-client"
SAM_EXPECT_DIR="$dest" SAM_CHECK_VERSIONS=1 LD_LIBRARY_PATH="$dest$libdir" \
    ./sam-client || fail "sam-client failed against the installed libsam"
echo "== run sam-client register"
SAM_EXPECT_DIR="$dest" LD_LIBRARY_PATH="$dest$libdir" SAM_LOG_STDERR=1 ./sam-client register
rc=$?
test $rc -eq 42 || fail "sam-client register exited with $rc, expected 42 (the instance's status)"
echo "PASS"
