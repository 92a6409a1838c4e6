#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The fixture starts a private, quorate corosync and tells the test where it is.
. "$(dirname "$0")/selftest-lib.sh"

for v in COROSYNC_CTL COROSYNC_LOG COROSYNC_CONF COROSYNC_WORKDIR; do
    [ -n "${!v:-}" ] || fail "$v is not set"
done
[ -x "$COROSYNC_CTL" ] || fail "COROSYNC_CTL is not executable"
[ -r "$COROSYNC_CONF" ] || fail "config $COROSYNC_CONF missing"
grep -v '^[[:space:]]*#' "$COROSYNC_CONF" | grep -q '@[A-Z_]*@' && fail "config has unsubstituted placeholders"

pid=$("$ctl" pid) || fail "corosync is not running"
echo "corosync pid $pid"
"$ctl" quorate || fail "node is not quorate"
corosync-quorumtool -s | grep -q '^Quorate: *Yes' || fail "corosync-quorumtool does not say quorate"
[ "$(corosync-cmapctl -g runtime.votequorum.this_node_id | sed 's/.*= //')" = 1 ] ||
    fail "this node's id is not 1"

# Private /run: corosync's fixed pid file is ours, not a system corosync's.
[ "$(cat /run/corosync.pid)" = "$pid" ] || fail "/run/corosync.pid is not our corosync's"
# state_dir honoured: corosync keeps its ring id there, not in /var/lib/corosync.
ls "$COROSYNC_WORKDIR"/state/ringid_* >/dev/null 2>&1 || fail "state_dir not used"
# Our own network namespace: only lo.
[ "$(ip -o link show | wc -l)" = 1 ] || fail "network namespace is not private"
"$ctl" log-grep 'Completed service synchronization' >/dev/null || fail "log does not show start-up"
echo "ok"
