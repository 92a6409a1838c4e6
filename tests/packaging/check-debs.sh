#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# check-debs.sh - build the Debian packages from a clean copy of the
# repository and check them, without ever touching the host's libsam4:
#
#   1. git clone of the repository (committed HEAD) into a temporary
#      directory; dpkg-buildpackage -us -uc -b there
#   2. lintian on the result: any error fails; warnings are listed
#   3. apt-get --simulate: apt accepts our packages in place of corosync's
#      libsam4/libsam-dev, and a package that depends on libsam4 stays
#      satisfied by libsam4-cxx (nothing is installed)
#   4. dpkg-deb -x of libsam4-cxx into a temporary root; abi-check.sh on it
#   5. sam-client.c built against the SYSTEM libsam (gcc ... -lsam) and run
#      with LD_LIBRARY_PATH on the unpacked library: it must really load
#      ours (/proc/self/maps) and see the same return values
#   6. the other way round: built against the unpacked libsam-cxx-dev, the
#      same program runs with the host's corosync libsam4
#
# Usage: tests/packaging/check-debs.sh [--worktree] [--keep]
#   --worktree  copy the working tree's tracked files (with uncommitted
#               changes) instead of cloning HEAD
#   --keep      keep the temporary directory (its path is printed)
# Environment: DEB_BUILD_OPTIONS is passed on (e.g. nocheck, parallel=2).
# The last line of output is "PASS" or "FAIL: reason".
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null) || repo=$(cd "$here/../.." && pwd)
mode=clone keep=no
for arg in "$@"; do
    case "$arg" in
    --worktree) mode=worktree ;;
    --keep) keep=yes ;;
    *) echo "usage: $0 [--worktree] [--keep]"; echo "FAIL: bad argument $arg"; exit 2 ;;
    esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/check-debs.XXXXXX") || { echo "FAIL: mktemp"; exit 1; }
cleanup() { if [ $keep = yes ]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
step() { echo; echo "== $*"; }

for tool in git dpkg-buildpackage dpkg-deb lintian apt-get gcc readelf; do
    command -v $tool >/dev/null 2>&1 || fail "$tool is not installed (scripts/install-deps.sh)"
done
[ -f /usr/include/corosync/sam.h ] || fail "the system libsam-dev is not installed (scripts/install-deps.sh)"

# ---- 1. build ---------------------------------------------------------------
step "copy of $repo ($mode) into $work/src"
if [ $mode = clone ]; then
    git clone -q "$repo" "$work/src" || fail "git clone $repo"
    echo "HEAD $(git -C "$work/src" log -1 --format='%h %s')"
else
    mkdir "$work/src" &&
        (cd "$repo" && git ls-files -z | xargs -0 tar -cf - --) | tar -xf - -C "$work/src" ||
        fail "copy of the working tree"
fi
[ -d "$work/src/debian" ] || fail "no debian/ directory in the copy (not committed?)"
# m4/ is ignored by git but named by ACLOCAL_AMFLAGS; autoreconf wants it.
mkdir -p "$work/src/m4"

step "dpkg-buildpackage -us -uc -b (log: build.log)"
(cd "$work/src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
    tail -40 "$work/build.log"
    fail "dpkg-buildpackage failed"
}
first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return; }; done; }
changes=$(first "$work"/*.changes)
[ -n "$changes" ] || fail "no .changes file produced"
libdeb=$(first "$work"/libsam4-cxx_*.deb)
devdeb=$(first "$work"/libsam-cxx-dev_*.deb)
rundeb=$(first "$work"/sam-run_*.deb)
[ -n "$libdeb" ] || fail "libsam4-cxx .deb missing"
[ -n "$devdeb" ] || fail "libsam-cxx-dev .deb missing"
[ -n "$rundeb" ] || fail "sam-run .deb missing"
for f in "$work"/*.deb; do echo "built ${f##*/}"; done

# ---- 2. lintian -------------------------------------------------------------
step "lintian --display-info --pedantic"
lintian --display-info --pedantic "$changes" >"$work/lintian.log" 2>&1
grep -v 'running with root privileges' "$work/lintian.log"
errors=$(grep -c '^E:' "$work/lintian.log")
warnings=$(grep -c '^W:' "$work/lintian.log")
echo "lintian summary: $errors error(s), $warnings warning(s), $(grep -c '^I:' "$work/lintian.log") info, $(grep -c '^P:' "$work/lintian.log") pedantic"
[ "$errors" -eq 0 ] || fail "lintian reports $errors error(s)"

# ---- 3. would apt accept them? (simulation only) ----------------------------
step "apt-get --simulate install of the three packages"
# A stand-in for any package built against corosync's libsam4: it must stay
# installable once libsam4-cxx replaces libsam4.
mkdir -p "$work/dependent/DEBIAN"
cat >"$work/dependent/DEBIAN/control" <<CTRL
Package: libsam4-dependent-dummy
Version: 1.0
Architecture: all
Maintainer: check-debs <nobody@example.org>
Depends: libsam4 (>= 3.1.7)
Description: dummy package that depends on libsam4
 Used by check-debs.sh only; never installed.
CTRL
dpkg-deb -b "$work/dependent" "$work/dependent.deb" >/dev/null || fail "building the dummy dependent package"

simulate() {  # simulate LOGNAME DEB...: succeed unless apt refuses
    log="$work/$1"; shift
    apt-get --simulate -o Debug::NoLocking=1 install "$@" >"$log" 2>&1 || { cat "$log"; return 1; }
    grep -E '^(Inst|Remv) ' "$log" | sed 's/^/    /'
    removed=$(sed -n 's/^Remv \([^ :]*\).*/\1/p' "$log" | grep -v -x -e libsam4 -e libsam-dev)
    [ -z "$removed" ] || { echo "apt would also remove: $removed"; return 1; }
}
simulate apt-all.log "$libdeb" "$devdeb" "$rundeb" "$work/dependent.deb" ||
    fail "apt does not accept libsam4-cxx, libsam-cxx-dev and sam-run in place of libsam4/libsam-dev"
grep -q '^Inst libsam4-dependent-dummy' "$work/apt-all.log" ||
    fail "a package depending on libsam4 (>= 3.1.7) is not satisfied by libsam4-cxx"
echo "ok   apt replaces libsam4/libsam-dev and keeps libsam4 dependencies satisfied"

step "apt-get --simulate install of the library alone"
simulate apt-lib.log "$libdeb" || fail "apt does not accept libsam4-cxx alone in place of libsam4"
if grep -q '^Remv libsam-dev' "$work/apt-lib.log"; then
    echo "note: corosync's libsam-dev would be removed (its exact libsam4 version differs from the one we provide)"
else
    echo "ok   corosync's libsam-dev stays satisfied by libsam4-cxx alone"
fi

# ---- 4. unpack, never install -------------------------------------------------
step "dpkg-deb -x $(basename "$libdeb") into $work/root"
root="$work/root"
dpkg-deb -x "$libdeb" "$root" || fail "dpkg-deb -x"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
libdir="$root/usr/lib/$multiarch"
[ -f "$libdir/libsam.so.4.4.0" ] || fail "usr/lib/$multiarch/libsam.so.4.4.0 missing from the package"
[ "$(readlink -f "$libdir/libsam.so.4")" = "$(readlink -f "$libdir/libsam.so.4.4.0")" ] || fail "libsam.so.4 does not lead to libsam.so.4.4.0"
echo "ok   usr/lib/$multiarch/libsam.so.4 -> libsam.so.4.4.0"

step "the OCF resource agent in $(basename "$rundeb")"
dpkg-deb -x "$rundeb" "$root" || fail "dpkg-deb -x $(basename "$rundeb")"
ra="$root/usr/lib/ocf/resource.d/sam/service"
[ -x "$ra" ] || fail "usr/lib/ocf/resource.d/sam/service missing or not executable"
# Its default sam-run is the packaged one.
"$ra" meta-data | grep -q 'name="sam_run"' &&
    "$ra" meta-data | grep -q 'default="/usr/sbin/sam-run"' || fail "the agent's default sam_run is not /usr/sbin/sam-run"
if [ -r /usr/share/resource-agents/ra-api-1.dtd ] && command -v xmllint >/dev/null 2>&1; then
    # From the DTD's directory: the DOCTYPE names it relatively.
    "$ra" meta-data | (cd /usr/share/resource-agents && xmllint --noout --dtdvalid ra-api-1.dtd -) ||
        fail "the packaged agent's meta-data is not valid against the OCF DTD"
fi
dpkg-deb -f "$rundeb" Enhances | grep -qw pacemaker || fail "sam-run does not declare Enhances: pacemaker"
dpkg-deb -f "$rundeb" Suggests | grep -qw resource-agents || fail "sam-run does not suggest resource-agents"
echo "ok   usr/lib/ocf/resource.d/sam/service, sam_run=/usr/sbin/sam-run, Enhances: pacemaker, Suggests: $(dpkg-deb -f "$rundeb" Suggests)"

step "abi-check.sh on the packaged library"
sh "$here/abi-check.sh" "$libdir/libsam.so.4.4.0" || fail "ABI check of the packaged library"

# ---- 5. a program built against the system libsam, run with ours --------------
step "sam-client.c built against the system libsam (gcc ... -lsam)"
gcc -Wall -o "$work/sam-client" "$here/sam-client.c" -lsam || fail "cannot build against the system libsam"
readelf -d "$work/sam-client" | grep -q 'NEEDED.*libsam.so.4' || fail "sam-client does not need libsam.so.4"

step "sam-client with the system libsam (reference)"
"$work/sam-client" >"$work/reference.log" 2>&1
ref=$?
cat "$work/reference.log"
[ $ref -eq 0 ] || echo "note: the reference run against corosync's libsam failed (exit $ref)"

step "sam-client with LD_LIBRARY_PATH=$libdir"
SAM_EXPECT_DIR="$root" SAM_CHECK_VERSIONS=1 LD_LIBRARY_PATH="$libdir" "$work/sam-client" ||
    fail "the program built against the system libsam fails with ours"
step "sam-client register with LD_LIBRARY_PATH=$libdir"
SAM_EXPECT_DIR="$root" SAM_LOG_STDERR=1 LD_LIBRARY_PATH="$libdir" "$work/sam-client" register
rc=$?
[ $rc -eq 42 ] || fail "sam-client register exited with $rc with our library, expected 42"

# ---- 6. the other direction: built against ours, run with corosync's -----------
step "sam-client built against the unpacked libsam-cxx-dev, run with the system libsam"
dpkg-deb -x "$devdeb" "$root" || fail "dpkg-deb -x $(basename "$devdeb")"
gcc -Wall -o "$work/sam-client-ours" "$here/sam-client.c" -I"$root/usr/include" -L"$libdir" -lsam ||
    fail "cannot build against the packaged header and library"
# LD_BIND_NOW: every symbol version must resolve at start, not on first call.
LD_BIND_NOW=1 "$work/sam-client-ours" >"$work/reverse.log" 2>&1 || {
    cat "$work/reverse.log"
    fail "a program built against libsam-cxx-dev does not run with corosync's libsam4"
}
echo "ok   a program built against libsam-cxx-dev also runs with corosync's libsam4"

echo
echo "PASS"
