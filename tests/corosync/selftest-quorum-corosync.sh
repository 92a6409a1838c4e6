#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# expected_votes 2 takes quorum away from the single node; 1 gives it back.
. "$(dirname "$0")/selftest-lib.sh"

"$ctl" wait-quorate 5 || fail "not quorate at start"
for cycle in 1 2 3; do
    t0=$(now_ms)
    "$ctl" expected-votes 2 || fail "cannot set expected_votes 2"
    "$ctl" wait-inquorate 5 || fail "still quorate with expected_votes 2"
    t1=$(now_ms)
    "$ctl" expected-votes 1 || fail "cannot set expected_votes 1"
    "$ctl" wait-quorate 5 || fail "not quorate again with expected_votes 1"
    t2=$(now_ms)
    echo "cycle $cycle: inquorate after $((t1 - t0)) ms, quorate again after $((t2 - t1)) ms"
done
echo "ok"
