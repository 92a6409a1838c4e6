#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Builds libsam and runs every test: unit, integration against a private
# corosync, sam-run, fault injection, fuzzing, the three-node cluster, the
# house-style checks (make format-check, make lint), the AddressSanitizer/UBSan
# pass, the ThreadSanitizer pass, `make distcheck` and the Debian package check.
# Run as root on Debian 12; installs what it needs. The last line is the
# summary "N passed, M failed".
set -u
cd "$(dirname "$0")" || exit 2
top=$(pwd)
log() { printf '==> %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "run-tests.sh: must run as root (tests use private namespaces and corosync)" >&2
    exit 2
fi
scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
./autogen.sh >/dev/null 2>&1 || { echo "autogen.sh failed" >&2; echo "0 passed, 1 failed"; exit 1; }

extra_pass=0
extra_fail=0
record() { # name status
    if [ "$2" -eq 0 ]; then
        extra_pass=$((extra_pass + 1)); log "$1: PASS"
    else
        extra_fail=$((extra_fail + 1)); log "$1: FAIL"
    fi
}

build_and_check() { # dir configure-args...
    dir=$1; shift
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && "$top/configure" -q "$@" && make -j2 -s >build.log 2>&1) || {
        tail -30 "$dir/build.log" 2>/dev/null; return 1; }
    (cd "$dir" && make -j2 -k check >check.log 2>&1)
    st=$?
    # What failed, and why: the end of each failing test's own log.
    grep -h '^FAIL\|^ERROR\|^XPASS' "$dir/check.log" | while read -r _ name _; do
        echo "FAIL: $name"
        find "$dir" -path "*/${name%.*}.log" -exec tail -n 25 {} \; | sed 's/^/    /'
    done
    # make check failed, but no test did: something the tests need was not
    # built, and its tests never ran (they would count as neither passed nor
    # failed): a failure of the build.
    if [ $st -ne 0 ] && ! grep -q '^FAIL\|^ERROR\|^XPASS' "$dir/check.log"; then
        echo "make check in $dir failed outside any test:"
        grep -h 'error\|Error [0-9]' "$dir/check.log" | head -15 | sed 's/^/    /'
        return 1
    fi
    return 0
}

log "normal build and make check"
build_and_check _build/normal
record "build (normal)" $?

log "make format-check (clang-format) and make lint (clang-tidy, shellcheck)"
(cd _build/normal && make -s format-check)
record "format-check" $?
(cd _build/normal && make -s lint)
record "lint" $?

log "AddressSanitizer + UndefinedBehaviorSanitizer build and make check"
build_and_check _build/asan --enable-asan
record "build (asan)" $?

log "ThreadSanitizer build and make check"
# The supervisor forks while its corosync thread runs, and an instance may
# start threads of its own (sam_hc_callback_register, sam-run --check): fine
# with glibc, but TSan refuses it unless told otherwise.
(TSAN_OPTIONS="die_after_fork=0 ${TSAN_OPTIONS:-}"; export TSAN_OPTIONS
    build_and_check _build/tsan --enable-tsan)
record "build (tsan)" $?
# A race report does not always change an exit status (a report in an
# instance that ends by _exit or a signal): every one found in a log counts.
reports=$(grep -rl 'WARNING: ThreadSanitizer' _build/tsan --include='*.log' 2>/dev/null)
[ -z "$reports" ] || printf 'ThreadSanitizer reports in:\n%s\n' "$reports"
record "no ThreadSanitizer reports" "$([ -z "$reports" ] && echo 0 || echo 1)"

log "make distcheck"
(cd _build/normal && make -s distcheck >distcheck.log 2>&1)
st=$?
[ $st -eq 0 ] || tail -40 _build/normal/distcheck.log
record "make distcheck" $st

if [ -x tests/packaging/check-debs.sh ]; then
    log "Debian packages"
    out=$(tests/packaging/check-debs.sh 2>&1)
    st=$?
    printf '%s\n' "$out" | tail -15
    [ "$(printf '%s\n' "$out" | tail -n 1)" = "PASS" ] || st=1
    record "debian packages" $st
fi

# Every automake test result of the three builds counts once.
results() {
    for b in normal asan tsan; do cat _build/$b/*/*.trs _build/$b/*/*/*.trs; done 2>/dev/null
}
pass=$(results | grep -c '^:test-result: \(PASS\|XFAIL\)')
fail=$(results | grep -c '^:test-result: \(FAIL\|ERROR\|XPASS\)')
skip=$(results | grep -c '^:test-result: SKIP')
pass=$((pass + extra_pass))
fail=$((fail + extra_fail))
log "skipped: $skip"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
