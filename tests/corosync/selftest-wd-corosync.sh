#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# corosync's watchdog service ("wd") reads resources.process.* and logs what
# it finds: a "running" process whose last_updated is stale is failed.
# libsam's CMAP tests rely on these lines reaching COROSYNC_LOG.
. "$(dirname "$0")/selftest-lib.sh"

"$ctl" log-grep 'Service engine loaded: corosync watchdog service' >/dev/null ||
    fail "corosync did not load the wd service"

prefix=resources.process.12345
# last_updated is cs_timestamp_get(): CLOCK_MONOTONIC in nanoseconds.
# /proc/uptime is close enough to it here; 30 s ago is stale for any period.
read -r up _ </proc/uptime
stale=$(((${up%.*} - 30) * 1000000000))
[ "$stale" -gt 0 ] || stale=1

t0=$(now_ms)
corosync-cmapctl -s $prefix.recovery str quit >/dev/null || fail "cmap set recovery"
corosync-cmapctl -s $prefix.poll_period u64 1000 >/dev/null || fail "cmap set poll_period"
corosync-cmapctl -s $prefix.last_updated u64 "$stale" >/dev/null || fail "cmap set last_updated"
corosync-cmapctl -s $prefix.state str running >/dev/null || fail "cmap set state"

"$ctl" wait-log 'Fsm:12345 event "config_changed", state "stopped" --> "running"' 10 >/dev/null ||
    fail "wd did not pick up the resource"
# wd checks a resource about every 6 s here, whatever its poll_period.
"$ctl" wait-log 'last_updated [0-9]+ ms too late, period:1000' 15 >/dev/null ||
    fail "wd did not log the stale last_updated"
"$ctl" wait-log 'resource "12345" failed!' 5 >/dev/null || fail "wd did not log the failure"
t1=$(now_ms)
grep -E 'WD' "$COROSYNC_LOG" | grep 12345
echo "wd reported the stale resource after $((t1 - t0)) ms"
for k in recovery poll_period last_updated state; do
    corosync-cmapctl -d $prefix.$k >/dev/null 2>&1
done
echo "ok"
