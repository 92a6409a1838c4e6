#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# abi-corosync.sh - a program built against corosync's libsam runs unchanged
# on ours for the CMAP and QUORUM policies (inside with-corosync.sh).
. "$(dirname "$0")/abi-lib.sh"

[ -n "${COROSYNC_CTL:-}" ] || {
    echo "run inside tests/corosync/with-corosync.sh" >&2
    exit 99
}
ctl=$COROSYNC_CTL
trap '"$ctl" expected-votes 1 2>/dev/null; rm -f "$out"' EXIT

check_linked_against_system

# now_ms
# shellcheck source=../common/proc.sh
. "$(dirname "$0")/../common/proc.sh"

# cmap_get KEY: the value of a cmap key, empty if missing.
cmap_get() {
    corosync-cmapctl -g "$1" 2>/dev/null | sed -n 's/^[^=]* = //p'
}

# CMAP: state "running" once sam_start returned; sam_mark_failed kills the
# instance, leaves "failed" and ends the supervisor (by the instance's SIGKILL).
run_client cmap
check_ours_loaded
check_status_codes 7
expect_line '^state_after_start running$'
expect_line '^marking iid=1$'
expect_no_line '^still alive'
expect_no_line '^instance iid=2'
[ "$status" -eq 137 ] || fail "cmap: exit status $status, expected 137 (SIGKILL like the instance)"
sup=$(sed -n 's/^supervisor pid=//p' "$out")
[ "$(cmap_get "resources.process.$sup.state")" = failed ] ||
    fail "state is '$(cmap_get "resources.process.$sup.state")' after sam_mark_failed, expected 'failed'"
[ "$(cmap_get "resources.process.$sup.recovery")" = restart ] || fail "recovery key is not 'restart'"
for k in recovery poll_period last_updated state; do
    corosync-cmapctl -d "resources.process.$sup.$k" >/dev/null 2>&1
done
echo "ok cmap"

# QUORUM: sam_start waits while inquorate, returns when quorum comes back.
"$ctl" expected-votes 2 || fail "cannot take quorum away"
"$ctl" wait-inquorate 5 || fail "still quorate"
# In the background without a wrapper: $! is the supervisor's pid.
LD_PRELOAD=$preload LD_LIBRARY_PATH=$libdir "$client" quorum >"$out" 2>&1 &
pid=$!
deadline=$(($(now_ms) + 5000))
until [ "$(cmap_get "resources.process.$pid.state")" = "waiting for quorum" ]; do
    if [ "$(now_ms)" -ge "$deadline" ]; then
        kill -KILL "$pid"
        fail "state never became 'waiting for quorum' (is '$(cmap_get "resources.process.$pid.state")')"
    fi
    sleep 0.02
done
expect_no_line '^started'
"$ctl" expected-votes 1 || fail "cannot give quorum back"
deadline=$(($(now_ms) + 10000))
while kill -0 "$pid" 2>/dev/null && ! grep -q '^[^ ]* ([^)]*) Z' "/proc/$pid/stat" 2>/dev/null; do
    if [ "$(now_ms)" -ge "$deadline" ]; then
        kill -KILL "$pid"
        fail "quorum: the client did not end within 10 s after quorum returned"
    fi
    sleep 0.02
done
wait "$pid"
status=$?
check_ours_loaded
[ "$status" -eq 0 ] || fail "quorum: exit status $status, expected 0"
check_status_codes 9
expect_line '^started iid=1$'
expect_no_line '^instance iid=2'
[ -z "$(cmap_get "resources.process.$pid.state")" ] || fail "keys not deleted after a clean exit"
echo "ok quorum"
