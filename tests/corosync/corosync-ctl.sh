#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# corosync-ctl.sh: control the private corosync of a with-corosync.sh run.
#
# Usage (inside the environment set up by with-corosync.sh, which exports
# COROSYNC_WORKDIR and COROSYNC_CTL pointing to this script):
#
#   $COROSYNC_CTL start [TIMEOUT_S]    start corosync (same config), wait until quorate
#   $COROSYNC_CTL launch               start corosync, do not wait
#   $COROSYNC_CTL wait-answer [TIMEOUT_S]
#                                      wait until corosync answers, quorate or not
#   $COROSYNC_CTL stop [TIMEOUT_S]     SIGTERM, wait until it is gone
#   $COROSYNC_CTL kill [TIMEOUT_S]     SIGKILL, wait until it is gone
#   $COROSYNC_CTL restart              stop, then start
#   $COROSYNC_CTL wait-quorate [TIMEOUT_S]
#   $COROSYNC_CTL wait-inquorate [TIMEOUT_S]
#                                      poll corosync-quorumtool until the node is
#                                      (not) quorate; exit 1 at the deadline
#   $COROSYNC_CTL expected-votes N     set quorum.expected_votes through cmap
#                                      (2 makes the single node inquorate, 1 restores)
#   $COROSYNC_CTL pid                  print corosync's pid; exit 1 if not running
#   $COROSYNC_CTL is-running           exit 0 if corosync runs, 1 if not
#   $COROSYNC_CTL log-grep PATTERN     print how many log lines match the extended
#                                      regular expression; exit 0 if any, else 1
#   $COROSYNC_CTL wait-log PATTERN [TIMEOUT_S] [COUNT]
#                                      poll until at least COUNT (1) lines match
#   $COROSYNC_CTL quorate              exit 0 if quorate, 2 if not, 1 if unknown
#
# Timeouts are whole or fractional seconds; the default is
# COROSYNC_TIMEOUT_S (20).  A process counts as gone once it no longer exists
# or is a zombie: the sandbox's PID 1 may take seconds to reap orphans, and
# a zombie holds no resources corosync or a test cares about.

set -u

PATH=$PATH:/usr/sbin:/sbin
prog=corosync-ctl

die() {
    echo "$prog: $*" >&2
    exit 1
}

[ -n "${COROSYNC_WORKDIR:-}" ] && [ -d "$COROSYNC_WORKDIR" ] ||
    die "COROSYNC_WORKDIR is not set or not a directory (run inside with-corosync.sh)"

workdir=$COROSYNC_WORKDIR
conf=${COROSYNC_CONF:-$workdir/corosync.conf}
log=${COROSYNC_LOG:-$workdir/corosync.log}
pidfile=$workdir/corosync.pid
corosync_bin=${COROSYNC_BIN:-corosync}
default_timeout=${COROSYNC_TIMEOUT_S:-20}
# Polling period for every wait: short enough that measured times are
# accurate to a few tens of milliseconds, long enough not to load the node.
poll_s=0.05

# now_ms, gone
# shellcheck source=../common/proc.sh
. "$(dirname "$(readlink -f "$0")")/../common/proc.sh"

deadline_ms() { # SECONDS (may be fractional)
    local s=$1 whole frac
    whole=${s%%.*}
    [ -n "$whole" ] || whole=0
    frac=0
    if [ "$whole" != "$s" ]; then
        frac=${s#*.}000
        frac=$((10#${frac:0:3}))
    fi
    echo $(($(now_ms) + 10#$whole * 1000 + frac))
}

# True while PID exists and is not a zombie.
alive() {
    [ -n "$1" ] && ! gone "$1"
}

recorded_pid() {
    local pid
    [ -r "$pidfile" ] || return 1
    read -r pid <"$pidfile" || return 1
    echo "$pid"
}

# The recorded pid, if it is still a live corosync.
running_pid() {
    local pid comm
    pid=$(recorded_pid) || return 1
    alive "$pid" || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = corosync ] || return 1
    echo "$pid"
}

wait_gone() { # PID TIMEOUT_S
    local pid=$1 end
    end=$(deadline_ms "$2")
    while alive "$pid"; do
        [ "$(now_ms)" -lt "$end" ] || return 1
        sleep "$poll_s"
    done
    return 0
}

# 0 quorate, 2 inquorate, 1 unknown (corosync down or not answering).
quorate() {
    corosync-quorumtool -s >/dev/null 2>&1
    case $? in
    0) return 0 ;;
    2) return 2 ;;
    *) return 1 ;;
    esac
}

wait_quorum_state() { # WANT(0|2) TIMEOUT_S
    local want=$1 end rc
    end=$(deadline_ms "$2")
    while :; do
        quorate
        rc=$?
        [ "$rc" -eq "$want" ] && return 0
        if [ "$want" -eq 0 ] && ! running_pid >/dev/null; then
            echo "$prog: corosync is not running" >&2
            return 1
        fi
        [ "$(now_ms)" -lt "$end" ] || return 1
        sleep "$poll_s"
    done
}

log_tail() {
    [ -r "$log" ] || return 0
    echo "$prog: last lines of $log:" >&2
    tail -n 20 "$log" | sed 's/^/    /' >&2
}

launch() {
    local pid
    if pid=$(running_pid); then
        echo "$prog: corosync already running (pid $pid)" >&2
        return 0
    fi
    rm -f "$pidfile"
    (
        # corosync must hold none of our caller's descriptors: a caller
        # reading our output through a pipe would otherwise wait for
        # corosync's end instead of ours.
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && eval "exec $fd>&-"
        done
        # setsid: corosync must not get the terminal's or the test
        # harness's signals meant for the test; it is stopped explicitly.
        exec setsid "$corosync_bin" -f -c "$conf" </dev/null >>"$workdir/corosync.out" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$pidfile"
    # Until the subshell has exec'd (bash, then setsid, then corosync) the
    # pid does not look like corosync: on a loaded machine a check right now
    # would call a starting corosync "not running". Wait for the exec.
    local end
    end=$(deadline_ms 10)
    while alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != corosync ]; do
        [ "$(now_ms)" -lt "$end" ] || break
        sleep "$poll_s"
    done
}

start_failed() { # WHAT TIMEOUT_S
    echo "$prog: corosync ($(recorded_pid)) did not $1 within $2 s" >&2
    log_tail
    [ -s "$workdir/corosync.out" ] && sed 's/^/    /' "$workdir/corosync.out" >&2
    return 1
}

cmd_start() { # [TIMEOUT_S]
    launch
    wait_quorum_state 0 "${1:-$default_timeout}" || start_failed "become quorate" "${1:-$default_timeout}"
}

# Wait until corosync answers at all (quorate or not).
cmd_wait_answer() { # [TIMEOUT_S]
    local end rc
    end=$(deadline_ms "${1:-$default_timeout}")
    while :; do
        quorate
        rc=$?
        [ "$rc" -ne 1 ] && return 0
        running_pid >/dev/null || {
            echo "$prog: corosync is not running" >&2
            return 1
        }
        [ "$(now_ms)" -lt "$end" ] || {
            start_failed "answer" "${1:-$default_timeout}"
            return 1
        }
        sleep "$poll_s"
    done
}

cmd_signal_and_wait() { # SIGNAL TIMEOUT_S
    local sig=$1 timeout=$2 pid
    pid=$(running_pid) || {
        rm -f "$pidfile"
        return 0
    }
    kill "-$sig" "$pid" 2>/dev/null
    if ! wait_gone "$pid" "$timeout"; then
        echo "$prog: corosync (pid $pid) still running ${timeout} s after SIG$sig" >&2
        return 1
    fi
    rm -f "$pidfile"
    return 0
}

cmd_log_grep() { # PATTERN
    local n
    n=$(grep -c -E -e "$1" "$log" 2>/dev/null)
    [ -n "$n" ] || n=0
    echo "$n"
    [ "$n" -gt 0 ]
}

cmd_wait_log() { # PATTERN [TIMEOUT_S] [COUNT]
    local pattern=$1 end want=${3:-1} n
    end=$(deadline_ms "${2:-$default_timeout}")
    while :; do
        n=$(grep -c -E -e "$pattern" "$log" 2>/dev/null)
        [ -n "$n" ] || n=0
        if [ "$n" -ge "$want" ]; then
            echo "$n"
            return 0
        fi
        if [ "$(now_ms)" -ge "$end" ]; then
            echo "$prog: fewer than $want log lines match '$pattern' after ${2:-$default_timeout} s" >&2
            echo "$n"
            return 1
        fi
        sleep "$poll_s"
    done
}

[ $# -ge 1 ] || die "usage: $0 start|launch|wait-answer|stop|kill|restart|wait-quorate|wait-inquorate|expected-votes N|pid|is-running|quorate|log-grep PATTERN|wait-log PATTERN [TIMEOUT_S] [COUNT]"

sub=$1
shift
case $sub in
start) cmd_start "$@" ;;
launch) launch ;;
wait-answer) cmd_wait_answer "$@" ;;
stop) cmd_signal_and_wait TERM "${1:-$default_timeout}" ;;
kill) cmd_signal_and_wait KILL "${1:-$default_timeout}" ;;
restart) cmd_signal_and_wait TERM "$default_timeout" && cmd_start ;;
wait-quorate)
    wait_quorum_state 0 "${1:-$default_timeout}" ||
        die "not quorate after ${1:-$default_timeout} s"
    ;;
wait-inquorate)
    wait_quorum_state 2 "${1:-$default_timeout}" ||
        die "still quorate (or corosync not answering) after ${1:-$default_timeout} s"
    ;;
expected-votes)
    [ $# -eq 1 ] && [ "$1" -ge 1 ] 2>/dev/null || die "usage: expected-votes N (N >= 1)"
    corosync-cmapctl -s quorum.expected_votes u32 "$1" >/dev/null ||
        die "could not set quorum.expected_votes to $1"
    ;;
pid) running_pid || exit 1 ;;
is-running) running_pid >/dev/null ;;
quorate) quorate ;;
log-grep)
    [ $# -eq 1 ] || die "usage: log-grep PATTERN"
    cmd_log_grep "$1"
    ;;
wait-log)
    [ $# -ge 1 ] || die "usage: wait-log PATTERN [TIMEOUT_S] [COUNT]"
    cmd_wait_log "$@"
    ;;
*) die "unknown subcommand '$sub'" ;;
esac
