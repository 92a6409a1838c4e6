#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# corosync can be killed, stopped and started again inside the fixture.
. "$(dirname "$0")/selftest-lib.sh"

pid=$("$ctl" pid) || fail "corosync is not running"

t0=$(now_ms)
"$ctl" kill 5 || fail "kill did not end corosync"
t1=$(now_ms)
"$ctl" is-running && fail "corosync still reported running after kill"
"$ctl" quorate
[ $? -eq 1 ] || fail "quorum state should be unknown while corosync is down"
"$ctl" start || fail "start after kill failed"
t2=$(now_ms)
pid2=$("$ctl" pid) || fail "no pid after start"
[ "$pid2" != "$pid" ] || fail "same pid after kill and start"
echo "kill: gone after $((t1 - t0)) ms; start: quorate after $((t2 - t1)) ms"

t0=$(now_ms)
"$ctl" stop 20 || fail "stop failed"
t1=$(now_ms)
"$ctl" is-running && fail "corosync still reported running after stop"
"$ctl" start || fail "start after stop failed"
t2=$(now_ms)
echo "stop: gone after $((t1 - t0)) ms; start: quorate after $((t2 - t1)) ms"

t0=$(now_ms)
"$ctl" restart || fail "restart failed"
t1=$(now_ms)
"$ctl" quorate || fail "not quorate after restart"
echo "restart: quorate after $((t1 - t0)) ms"
echo "ok"
