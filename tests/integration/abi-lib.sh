# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=sh
# abi-lib.sh - helpers for abi-core.sh and abi-corosync.sh (sourced).
#
# Environment (set by tests/integration/Makefile.am):
#   ABI_CLIENT        abi-client, built against the system libsam
#   SAM_BUILD_LIBDIR  the directory holding our libsam.so.4

set -u

client=${ABI_CLIENT:?ABI_CLIENT is not set}
system_lib=/usr/lib/x86_64-linux-gnu/libsam.so.4
[ -e "$system_lib" ] || system_lib=$(ldconfig -p | sed -n 's/.*libsam\.so\.4 .*=> //p' | head -n 1)
libdir=$(readlink -f "${SAM_BUILD_LIBDIR:?SAM_BUILD_LIBDIR is not set}")
out=$(mktemp "${TMPDIR:-/tmp}/abi-client.XXXXXX")
trap 'rm -f "$out"' EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "--- client output ---" >&2
    cat "$out" >&2
    exit 1
}

# A sanitizer build of our library needs its runtime loaded first in an
# uninstrumented program such as the client.
preload=$(ldd "$libdir/libsam.so.4" 2>/dev/null | sed -n 's/^[[:space:]]*lib[a-z]*san\.so[.0-9]* => \([^ ]*\) .*/\1/p' | tr '\n' ' ')
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"

# run_client MODE: runs the client on OUR library; sets $status.
run_client() {
    LD_PRELOAD=$preload LD_LIBRARY_PATH=$libdir timeout -s KILL 30 "$client" "$1" >"$out" 2>&1
    # shellcheck disable=SC2034 # read by the script that sources this
    status=$?
}

# The binary was linked against the system library...
check_linked_against_system() {
    readelf -d "$client" | grep -q 'NEEDED.*\[libsam\.so\.4\]' ||
        fail "abi-client does not need libsam.so.4"
    resolved=$(env -u LD_LIBRARY_PATH ldd "$client" | sed -n 's/^[[:space:]]*libsam\.so\.4 => \([^ ]*\) .*/\1/p')
    [ -n "$resolved" ] && [ "$(readlink -f "$resolved")" = "$(readlink -f "$system_lib")" ] ||
        fail "abi-client resolves libsam.so.4 to '$resolved', not the system's $system_lib"
}

# ...and the last run mapped ours (the client prints /proc/self/maps' libsam).
check_ours_loaded() {
    lib=$(sed -n 's/^lib //p' "$out" | head -n 1)
    [ -n "$lib" ] || fail "no libsam mapped"
    case $(readlink -f "$lib") in
    "$libdir"/*) ;;
    *) fail "loaded $lib, not ours from $libdir" ;;
    esac
}

# Every "check NAME GOT WANT" line agrees, and there are at least $1.
check_status_codes() {
    n=$(grep -c '^check ' "$out")
    [ "$n" -ge "$1" ] || fail "only $n status checks ran, expected at least $1"
    bad=$(awk '$1 == "check" && $3 != $4' "$out")
    [ -z "$bad" ] || fail "status codes differ from the contract: $bad"
}

expect_line() { # REGEX
    grep -Eq -e "$1" "$out" || fail "no line matching '$1'"
}

expect_no_line() { # REGEX
    ! grep -Eq -e "$1" "$out" || fail "unexpected line matching '$1'"
}
