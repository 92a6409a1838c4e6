# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=sh
# lib.sh - shared helpers of the sam-run tests (sourced, not run).
#
# Every wait polls a condition against a deadline; nothing relies on a sleep
# being "long enough". Paths of the programs under test come from the
# Makefile (SAM_RUN, SD_NOTIFY_CLIENT, NOTIFY_TOOL); run by hand, they default
# to the build tree around this directory.

set -u

: "${SAM_RUN:=../../src/tools/sam-run}"
: "${SD_NOTIFY_CLIENT:=./sd-notify-client}"
: "${NOTIFY_TOOL:=./notify-tool}"
: "${DEADLINE_S:=30}"
export SAM_LOG_STDERR=1

test_name=$(basename "$0")
work=$(mktemp -d "${TMPDIR:-/tmp}/samrun-test.XXXXXX")
bg_pids=""

cleanup() {
    for p in $bg_pids; do
        kill -KILL "$p" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL ($test_name): $*"
    for f in "$work"/*.log; do
        [ -f "$f" ] || continue
        echo "----- $(basename "$f")"
        cat "$f"
    done
    exit 1
}

pass() { echo "ok - $*"; }

# now_ms, gone
# shellcheck source=../common/proc.sh
. "${srcdir:-.}/../common/proc.sh"

# wait_until SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_until() {
    local limit="$1" end
    shift
    end=$(($(now_ms) + limit * 1000))
    while ! "$@"; do
        [ "$(now_ms)" -ge "$end" ] && return 1
        sleep 0.05
    done
    return 0
}

has_line() { grep -Eq -- "$2" "$1" 2>/dev/null; }
count_lines() { grep -Ec -- "$2" "$1" 2>/dev/null || true; }

# wait_line FILE REGEX [SECONDS]
wait_line() {
    wait_until "${3:-$DEADLINE_S}" has_line "$1" "$2" || fail "no line /$2/ in $(basename "$1") within ${3:-$DEADLINE_S}s"
}

# start_bg NAME ARGS...: run sam-run ARGS in the background, output in
# $work/NAME.log; its pid in $last_pid. Waited for by wait_bg.
start_bg() {
    local name="$1"
    shift
    "$SAM_RUN" "$@" >"$work/$name.log" 2>&1 &
    last_pid=$!
    bg_pids="$bg_pids $last_pid"
}

# wait_bg PID [SECONDS]: wait for a background sam-run, status in $bg_status.
wait_bg() {
    wait_until "${2:-$DEADLINE_S}" gone "$1" || fail "sam-run (pid $1) still running after ${2:-$DEADLINE_S}s"
    wait "$1"
    bg_status=$?
}

# stop_within_1s PHASE: SIGTERM to sam-run ($pid), which must be gone one
# second later (dead of it, or exited like its program); status in $bg_status.
stop_within_1s() {
    local start end
    start=$(now_ms)
    # shellcheck disable=SC2154 # $pid is the caller's
    kill -s TERM "$pid"
    end=$((start + 1000))
    while ! gone "$pid"; do
        [ "$(now_ms)" -ge "$end" ] && fail "$1: sam-run still running 1 s after SIGTERM"
        sleep 0.02
    done
    wait_bg "$pid" 1
    pass "$1: SIGTERM ended sam-run in $(($(now_ms) - start)) ms (status $bg_status)"
}

# expect_status EXPECTED NAME ARGS...: run sam-run in the foreground.
expect_status() {
    local expected="$1" name="$2" status
    shift 2
    timeout -s KILL "$DEADLINE_S" "$SAM_RUN" "$@" >"$work/$name.log" 2>&1
    status=$?
    [ "$status" -eq "$expected" ] || fail "$name: exit status $status, expected $expected"
}

# The children of a pid (via /proc), to check that nothing is left behind.
descendants_of() {
    local p
    # shellcheck disable=SC2013 # lines of space-separated pids
    for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        echo "$p"
        descendants_of "$p"
    done
}
