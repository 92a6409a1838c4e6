#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# A stop signal ends sam-run within a second in every phase it can be in
# with --quorum (and --notify): waiting for quorum before the program
# starts, before READY=1 with and without quorum, waiting for quorum after
# the program failed before READY=1, and running. Quorum is taken away with
# expected_votes 2 on this single node, and always given back.
# Runs through tests/corosync/with-corosync.sh.
. "${srcdir:-.}/lib.sh"
[ -n "${COROSYNC_CTL:-}" ] || { echo "SKIP: run me through tests/corosync/with-corosync.sh"; exit 77; }
PATH=$PATH:/usr/sbin:/sbin
T=$NOTIFY_TOOL

restore_quorum() { "$COROSYNC_CTL" expected-votes 1 >/dev/null 2>&1; }
trap 'restore_quorum; cleanup' EXIT
lose_quorum() {
    "$COROSYNC_CTL" expected-votes 2 >/dev/null || fail "cannot take quorum away"
    "$COROSYNC_CTL" wait-inquorate >/dev/null || fail "still quorate"
}
regain_quorum() {
    restore_quorum || fail "cannot give quorum back"
    "$COROSYNC_CTL" wait-quorate >/dev/null || fail "quorum did not return"
}

# 1. Waiting for quorum, no program yet.
lose_quorum
start_bg wait --quorum --notify --interval 1000 -- "$T" send:READY=1 sleep:100000
pid=$last_pid
wait_line "$work/wait.log" 'instance 1 waits for quorum'
stop_within_1s "waiting for quorum before the program starts"
has_line "$work/wait.log" 'instance 1: started ' && fail "the program ran without quorum"
regain_quorum

# 2. The program runs but has not sent READY=1.
start_bg early --quorum --notify --interval 1000 -- sh -c 'echo "run=$SAM_RUN_INSTANCE"; exec sleep 100'
pid=$last_pid
wait_line "$work/early.log" '^run=1'
stop_within_1s "before READY=1"

# 3. The same while the cluster is not quorate: the program ends on the
# signal, and the relay must not then wait for quorum.
start_bg early-inq --quorum --notify --interval 1000 -- sh -c 'echo "run=$SAM_RUN_INSTANCE"; exec sleep 100'
pid=$last_pid
wait_line "$work/early-inq.log" '^run=1'
lose_quorum
stop_within_1s "before READY=1, not quorate"
regain_quorum

# 3b. READY=1 sent while the cluster is not quorate: the relay waits for
# quorum to start health checking, the program runs meanwhile.
go=$work/ready.go
start_bg ready-inq --quorum --notify --interval 1000 -- \
    sh -c 'echo "run=$SAM_RUN_INSTANCE"; while [ ! -e "$2" ]; do sleep 0.02; done; exec "$1" send:READY=1 sleep:100000' \
    sh "$T" "$go"
pid=$last_pid
wait_line "$work/ready-inq.log" '^run=1'
lose_quorum
: >"$go"
wait_line "$work/ready-inq.log" 'instance 1 waits for quorum'
stop_within_1s "READY=1 sent, waiting for quorum"
regain_quorum

# 4. The program failed before READY=1 while the cluster was not quorate:
# the relay waits for quorum to report the failure.
go=$work/fail.go
start_bg fail --quorum --notify --interval 1000 -- \
    sh -c 'echo "run=$SAM_RUN_INSTANCE"; while [ ! -e "$1" ]; do sleep 0.02; done; exit 3' sh "$go"
pid=$last_pid
wait_line "$work/fail.log" '^run=1'
lose_quorum
: >"$go"
wait_line "$work/fail.log" 'program failed \(exit 3\) before READY=1'
stop_within_1s "waiting for quorum after a failure before READY=1"
has_line "$work/fail.log" '^run=2' && fail "restarted after SIGTERM"
regain_quorum

# 5. Running.
start_bg run --quorum --notify --interval 1000 -- \
    sh -c '"$1" send:READY=1 sleep:100; while :; do "$1" send:WATCHDOG=1 sleep:200; done' sh "$T"
pid=$last_pid
wait_line "$work/run.log" 'health checking started \(READY=1\)'
stop_within_1s "running"
