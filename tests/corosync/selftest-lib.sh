# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
# selftest-lib.sh: helpers shared by the fixture's self-tests (sourced).
# Each self-test runs inside with-corosync.sh (automake's SH_LOG_COMPILER).

set -u

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

[ -n "${COROSYNC_CTL:-}" ] || {
    echo "not inside with-corosync.sh: COROSYNC_CTL is not set" >&2
    exit 99
}
ctl=$COROSYNC_CTL

now_ms() {
    local t
    t=$(date +%s%N)
    echo $((t / 1000000))
}

# Leave quorum as we found it, even when a check fails half-way.
trap '"$ctl" is-running && "$ctl" expected-votes 1 2>/dev/null; :' EXIT
