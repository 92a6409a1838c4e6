#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# A supervisor under valgrind memcheck across 100 restarts: no definite leak,
# no memory error. Skipped (77) without valgrind, or in a sanitizer build
# (valgrind cannot run sanitized code).
set -u
build=${FAULT_BUILDDIR:-.}
restarts=${FAULT_VALGRIND_RESTARTS:-100}
if ! command -v valgrind >/dev/null 2>&1; then
    echo "fault-valgrind: SKIP: valgrind not installed"
    exit 77
fi
if [ -n "${FAULT_SANITIZER:-}" ]; then
    echo "fault-valgrind: SKIP: sanitizer build ($FAULT_SANITIZER)"
    exit 77
fi
log=$build/fault-valgrind.memcheck.log
rm -f "$log"
# --child-silent-after-fork: the instances are forks of this process until
# they exec; what they do is not the supervisor's memory.
# A supervisor that stops making progress fails the test (124) instead of
# holding up the whole suite; 100 restarts take about a minute.
timeout -k 10 600 valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
    --trace-children=no --child-silent-after-fork=yes --log-file="$log" \
    "$build/valgrind-supervisor" "$restarts"
rc=$?
[ $rc -eq 124 ] && echo "fault-valgrind: FAIL: no end after 600 s (a hung supervisor?)" 
grep -E "definitely lost|indirectly lost|possibly lost|still reachable|ERROR SUMMARY|All heap blocks" "$log" | sed 's/^==[0-9]*== */fault-valgrind: /'
if [ $rc -ne 0 ]; then
    echo "fault-valgrind: FAIL: exit status $rc (99: valgrind found errors or definite leaks, 124: timed out); full log: $log"
    sed -n '1,200p' "$log"
    exit 1
fi
grep -q "ERROR SUMMARY: 0 errors" "$log" || {
    echo "fault-valgrind: FAIL: memcheck reported errors; full log: $log"
    exit 1
}
echo "fault-valgrind: PASS: $restarts restarts under memcheck, no definite leak, no error"
