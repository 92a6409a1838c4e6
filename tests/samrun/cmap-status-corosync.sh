#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# --cmap publishes the instance in corosync's cmap; `sam-run --status` (and
# --json) shows it with its age; a QUIT failure leaves state "failed".
# Runs next to a private corosync (tests/corosync/with-corosync.sh).
. "${srcdir:-.}/lib.sh"
[ -n "${COROSYNC_CTL:-}" ] || { echo "SKIP: run me through tests/corosync/with-corosync.sh"; exit 77; }
PATH=$PATH:/usr/sbin:/sbin

cmap_value() { # PID KEY
    corosync-cmapctl -g "resources.process.$1.$2" 2>/dev/null | sed 's/^.* = //'
}
cmap_is() { [ "$(cmap_value "$1" "$2")" = "$3" ]; }

start_bg run --cmap --interval 1000 -- sh -c 'echo "run=$SAM_RUN_INSTANCE"; exec sleep 100'
pid=$last_pid
wait_line "$work/run.log" '^run=1'
wait_until "$DEADLINE_S" cmap_is "$pid" state running || fail "state is '$(cmap_value "$pid" state)', not running"
cmap_is "$pid" recovery restart || fail "recovery key"
cmap_is "$pid" poll_period 1000 || fail "poll_period key"
corosync-cmapctl -b resources.process >"$work/cmapctl.log"
pass "cmap keys: state running, recovery restart, poll_period 1000"

"$SAM_RUN" --status >"$work/status.log" 2>&1 || fail "--status failed"
has_line "$work/status.log" '^PID +STATE +POLICY +PERIOD +UPDATED +RESTARTS +UP +CONTAINMENT +LAST FAILURE +COMMAND' || fail "no table header"
has_line "$work/status.log" "^$pid +running +restart +1000ms +[0-9.]+s ago .*sam-run" || fail "no row for $pid"
pass "--status table"

"$SAM_RUN" --status --json >"$work/status-json.log" 2>&1 || fail "--status --json failed"
has_line "$work/status-json.log" "\"pid\": $pid, \"state\": \"running\", \"recovery\": \"restart\", \"poll_period_ms\": 1000" ||
    fail "no JSON object for $pid"
age=$(sed -n "s/.*\"pid\": $pid,.*\"last_updated_age_ms\": \(-\{0,1\}[0-9]*\).*/\1/p" "$work/status-json.log")
[ -n "$age" ] && [ "$age" -ge 0 ] && [ "$age" -le 3000 ] || fail "last_updated age '$age' ms: not refreshed within the period"
if command -v python3 >/dev/null 2>&1; then
    python3 -m json.tool "$work/status-json.log" >/dev/null || fail "--json output is not valid JSON"
fi
pass "--status --json (age ${age} ms)"

kill -s TERM "$pid"
wait_bg "$pid"

# QUIT after a failure: state "failed" stays for the cluster to see.
expect_status 4 quit --cmap --policy quit --interval 1000 -- sh -c 'echo "$PPID" >/dev/null; exit 4'
qpid=$(sed -n 's/^libsam\[\([0-9]*\)\].*/\1/p; s/^sam-run\[\([0-9]*\)\].*/\1/p' "$work/quit.log" | head -1)
[ -n "$qpid" ] || fail "cannot find the supervisor pid in the log"
cmap_is "$qpid" state failed || fail "state after a QUIT failure is '$(cmap_value "$qpid" state)', not failed"
"$SAM_RUN" --status >"$work/status2.log" 2>&1
has_line "$work/status2.log" "^$qpid +failed +quit " || fail "--status does not show the failed process"
pass "--policy quit failure: state failed stays in cmap"

# Without corosync: a clear error, exit 1.
"$COROSYNC_CTL" stop >/dev/null 2>&1 || fail "cannot stop corosync"
"$SAM_RUN" --status >"$work/nocorosync.log" 2>&1
status=$?
[ "$status" -eq 1 ] || fail "--status without corosync exited $status"
has_line "$work/nocorosync.log" 'cannot connect to corosync' || fail "no clear message without corosync"
"$COROSYNC_CTL" start >/dev/null 2>&1 || fail "cannot restart corosync"
pass "--status without corosync: exit 1"
