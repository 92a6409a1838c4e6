#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# --quorum: the program runs only while the node is quorate. Losing quorum
# (expected_votes 2 on this single node) stops it, and the next instance
# waits until quorum returns. Runs through tests/corosync/with-corosync.sh.
. "${srcdir:-.}/lib.sh"
[ -n "${COROSYNC_CTL:-}" ] || { echo "SKIP: run me through tests/corosync/with-corosync.sh"; exit 77; }
PATH=$PATH:/usr/sbin:/sbin

restore_quorum() { "$COROSYNC_CTL" expected-votes 1 >/dev/null 2>&1; }
trap 'restore_quorum; cleanup' EXIT

cmap_is() { [ "$(corosync-cmapctl -g "resources.process.$1.$2" 2>/dev/null | sed 's/^.* = //')" = "$3" ]; }
history_is() { [ "$(corosync-cmapctl -g "samrun.$1.$2" 2>/dev/null | sed 's/^.* = //')" = "$3" ]; }

start_bg q --quorum --cmap --interval 1000 -- sh -c 'echo "run=$SAM_RUN_INSTANCE at=$(date +%s%N)"; exec sleep 100'
pid=$last_pid
log=$work/q.log
wait_line "$log" '^run=1'
wait_until "$DEADLINE_S" cmap_is "$pid" state running || fail "not running in cmap"

"$COROSYNC_CTL" expected-votes 2 >/dev/null || fail "cannot take quorum away"
"$COROSYNC_CTL" wait-inquorate >/dev/null || fail "still quorate"
wait_until "$DEADLINE_S" cmap_is "$pid" state "waiting for quorum" || fail "state never became 'waiting for quorum'"
has_line "$log" '^run=2' && fail "a new instance ran without quorum"
has_line "$log" 'instance 1: program (failed|ended) \(signal TERM\)' || fail "the program was not stopped by the warn signal"
pass "quorum lost: program stopped, next instance waiting"

lost_at=$(now_ms)
restore_quorum || fail "cannot give quorum back"
wait_line "$log" '^run=2'
wait_until "$DEADLINE_S" cmap_is "$pid" state running || fail "not running again in cmap"
pass "quorum back: program started again after $(($(now_ms) - lost_at)) ms"
wait_until 5 history_is "$pid" last_failure "quorum loss" ||
    fail "the last failure is '$(corosync-cmapctl -g "samrun.$pid.last_failure" 2>/dev/null)', not 'quorum loss'"
pass "the history says why: quorum loss"

# A stop signal while waiting for quorum ends sam-run: nothing hangs.
"$COROSYNC_CTL" expected-votes 2 >/dev/null || fail "cannot take quorum away"
wait_until "$DEADLINE_S" cmap_is "$pid" state "waiting for quorum" || fail "not waiting for quorum"
kill -s TERM "$pid"
wait_bg "$pid"
[ "$bg_status" -eq 143 ] || [ "$bg_status" -eq 0 ] || fail "sam-run exited $bg_status after SIGTERM while waiting"
pass "SIGTERM while waiting for quorum: sam-run ends ($bg_status)"
restore_quorum
"$COROSYNC_CTL" wait-quorate >/dev/null || fail "quorum did not return"

# Most daemons answer SIGTERM with a clean exit. With plain liveness the
# quorum-loss warning (SIGTERM, queued by the supervisor) must still count as
# a failure, not as the end of the service: the program runs again once
# quorum is back.
start_bg d --quorum --cmap --interval 1000 -- \
    sh -c 'echo "run=$SAM_RUN_INSTANCE"; trap "echo term=$SAM_RUN_INSTANCE; exit 0" TERM; while :; do sleep 0.1; done'
pid=$last_pid
log=$work/d.log
wait_line "$log" '^run=1'
wait_until "$DEADLINE_S" cmap_is "$pid" state running || fail "daemon: not running in cmap"
"$COROSYNC_CTL" expected-votes 2 >/dev/null || fail "cannot take quorum away"
wait_line "$log" '^term=1'
wait_until "$DEADLINE_S" cmap_is "$pid" state "waiting for quorum" || fail "daemon: not waiting for quorum after its clean exit"
gone "$pid" && fail "sam-run ended after the program's clean exit on the quorum-loss warning"
restore_quorum || fail "cannot give quorum back"
wait_line "$log" '^run=2'
wait_until 5 history_is "$pid" last_failure "quorum loss" || fail "daemon: the last failure is not 'quorum loss'"
pass "clean exit on the quorum-loss warning: restarted once quorum is back"
kill -s TERM "$pid"
wait_bg "$pid"

# --quorum without --cmap: the same rules, and nothing in cmap.
"$COROSYNC_CTL" wait-quorate >/dev/null || fail "quorum did not return"
start_bg n --quorum --interval 1000 -- sh -c 'echo "run=$SAM_RUN_INSTANCE"; exec sleep 100'
pid=$last_pid
log=$work/n.log
wait_line "$log" '^run=1'
"$COROSYNC_CTL" expected-votes 2 >/dev/null || fail "cannot take quorum away"
wait_line "$log" 'instance 1: program (failed|ended) \(signal TERM\)'
wait_line "$log" 'libsam.*instance 2 started as pid'
has_line "$log" '^run=2' && fail "without --cmap: a new instance ran without quorum"
restore_quorum || fail "cannot give quorum back"
wait_line "$log" '^run=2'
dump=$(corosync-cmapctl 2>/dev/null) && [ -n "$dump" ] || fail "cannot read cmap"
printf '%s\n' "$dump" | grep -q "^\(resources.process\|samrun\).$pid\." && fail "without --cmap, keys were written"
pass "--quorum without --cmap: stopped on loss, started again on return, nothing in cmap"
kill -s TERM "$pid"
wait_bg "$pid"

# --quorum-loss give-up: after the quorum loss stopped the program, sam-run
# leaves with its give-up status instead of waiting, so quorum coming back
# (a partition healing) never starts the program here again; the history
# and the hook say why.
"$COROSYNC_CTL" wait-quorate >/dev/null || fail "quorum did not return"
start_bg g --quorum --quorum-loss give-up --cmap --interval 1000 \
    --on-event 'echo "event=$SAM_EVENT reason=$SAM_REASON"' -- sh -c 'echo "run=$SAM_RUN_INSTANCE"; exec sleep 100'
pid=$last_pid
log=$work/g.log
wait_line "$log" '^run=1'
wait_until "$DEADLINE_S" cmap_is "$pid" state running || fail "give-up: not running in cmap"
"$COROSYNC_CTL" expected-votes 2 >/dev/null || fail "cannot take quorum away"
wait_bg "$pid"
[ "$bg_status" -eq 199 ] || fail "--quorum-loss give-up: sam-run exited $bg_status, not 199"
has_line "$log" 'giving up: the program was stopped when the cluster lost quorum' || fail "give-up: no log line saying why"
wait_until 10 has_line "$log" '^event=gave-up reason=quorum loss' || fail "give-up: the gave-up hook did not say 'quorum loss'"
has_line "$log" '^run=2' && fail "give-up: a second program ran"
restore_quorum || fail "cannot give quorum back"
"$COROSYNC_CTL" wait-quorate >/dev/null || fail "quorum did not return"
pass "--quorum-loss give-up: program stopped on the loss, sam-run exited 199, nothing started when quorum returned"
