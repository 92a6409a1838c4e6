#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# with-corosync.sh [--] CMD [ARGS...]
#
# Run CMD next to a private, single-node, quorate corosync.  The script
# re-executes itself in a new mount and network namespace (so several runs
# can go on in parallel and none meets a system corosync), mounts tmpfs on
# /run and /dev/shm (corosync's fixed pid file, libqb's shared memory),
# brings up lo, renders conf/corosync.conf.in into a temporary directory,
# starts corosync and waits until the node is quorate.  CMD then runs with:
#
#   COROSYNC_CTL      absolute path of corosync-ctl.sh (stop, kill, start, ...)
#   COROSYNC_LOG      corosync's log file
#   COROSYNC_CONF     the rendered configuration
#   COROSYNC_WORKDIR  the temporary directory holding all of the above
#
# Afterwards corosync is stopped (SIGTERM, then SIGKILL at the deadline),
# every process left in the namespace is killed and reported, the
# temporary directory is removed, and the script exits with CMD's status
# (or dies by the signal that interrupted it).  If the script itself is
# SIGKILLed, a guardian process does the same clean-up.
#
# It also works as automake's LOG_COMPILER: `with-corosync.sh ./test`.
# Exit 77 (automake's "skipped") when not root or namespaces are unavailable.
#
# Environment knobs:
#   COROSYNC_BIN              corosync binary (default: corosync on PATH, /usr/sbin)
#   COROSYNC_CONF_TEMPLATE    template (default: conf/corosync.conf.in of the source tree)
#   COROSYNC_CLUSTER_NAME     cluster name put in the config (default: libsam-test)
#   COROSYNC_TIMEOUT_S        start/stop deadline in seconds (default: 20)
#   WITH_COROSYNC_KEEP=1      keep the temporary directory (its path is printed)
#   WITH_COROSYNC_LOG_TAIL=N  on failure, copy the last N corosync log lines to
#                             stderr (default: 30; 0 turns it off)
#   WITH_COROSYNC_GRACE_S     after forwarding a signal to CMD, how long to wait
#                             before SIGKILL (default: 5)

set -u

PATH=$PATH:/usr/sbin:/sbin
prog=with-corosync
self=$(readlink -f "$0")
here=$(dirname "$self")

say() { echo "$prog: $*" >&2; }

keep=${WITH_COROSYNC_KEEP:-0}
guard_pid=""
workdir=${COROSYNC_WORKDIR:-}

# now_ms, gone (a zombie counts as gone)
# shellcheck source=../common/proc.sh
. "$here/../common/proc.sh"

# Kill whatever is still running in our network namespace: a test's
# leftovers must not outlive it, and naming them helps find the leak.
# Builtins only, so this shell has no child of its own to trip over.
sweep() {
    local p pid comm
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = "$$" ] && continue
        [ "$pid" = "$BASHPID" ] && continue
        [ -n "$guard_pid" ] && [ "$pid" = "$guard_pid" ] && continue
        [ "$p/ns/net" -ef /proc/self/ns/net ] || continue
        gone "$pid" && continue
        comm='?'
        { read -r comm <"$p/comm"; } 2>/dev/null
        say "killing leftover process $pid ($comm)"
        kill -KILL "$pid" 2>/dev/null
    done
}

teardown() {
    if [ -e "$workdir/corosync.pid" ]; then
        "$COROSYNC_CTL" stop "${COROSYNC_TIMEOUT_S:-20}" ||
            "$COROSYNC_CTL" kill 5 || say "could not stop corosync"
    fi
    sweep
    if [ "$keep" = 1 ]; then
        say "kept $workdir"
    else
        rm -rf "$workdir"
    fi
}

# --- guardian mode (see below, where it is started) -----------------------
if [ "${WITH_COROSYNC_GUARDIAN:-}" = 1 ]; then
    trap '' INT TERM HUP
    guard_pid=$$
    while read -r _; do :; done
    if [ -e "$workdir/corosync.pid" ] || { [ "$keep" != 1 ] && [ -d "$workdir" ]; }; then
        say "the script ended without cleaning up; cleaning up"
        teardown
    fi
    exit 0
fi

[ "${1:-}" = -- ] && shift
if [ $# -eq 0 ]; then
    say "usage: $0 [--] CMD [ARGS...]"
    exit 2
fi

# --- outside: check prerequisites, then enter new namespaces -------------
# unshare without --fork keeps our pid: signals sent to the script (by a
# terminal, a test harness timeout, kill) reach it directly.
if [ "${WITH_COROSYNC_NS_PID:-}" != "$$" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        say "SKIP: needs root (mount and network namespaces)"
        exit 77
    fi
    if ! command -v "${COROSYNC_BIN:-corosync}" >/dev/null 2>&1; then
        say "SKIP: corosync not found (install it with scripts/install-deps.sh)"
        exit 77
    fi
    if ! unshare --mount --net --propagation private true 2>/dev/null; then
        say "SKIP: cannot create mount and network namespaces here"
        exit 77
    fi
    export WITH_COROSYNC_NS_PID=$$
    exec unshare --mount --net --propagation private -- "$self" "$@"
fi
unset WITH_COROSYNC_NS_PID

# --- inside the new namespaces ------------------------------------------
template=${COROSYNC_CONF_TEMPLATE:-$here/../../conf/corosync.conf.in}
[ -r "$template" ] || {
    say "cannot read config template $template"
    exit 99
}

mount -t tmpfs -o mode=0755 tmpfs /run || exit 99
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || exit 99
ip link set lo up || exit 99

workdir=$(mktemp -d "${TMPDIR:-/tmp}/with-corosync.XXXXXX") || exit 99
mkdir -p "$workdir/state"

export COROSYNC_WORKDIR=$workdir
export COROSYNC_CONF=$workdir/corosync.conf
export COROSYNC_LOG=$workdir/corosync.log
export COROSYNC_CTL=$here/corosync-ctl.sh
export COROSYNC_BIN=${COROSYNC_BIN:-corosync}

sed -e "s|@CLUSTER_NAME@|${COROSYNC_CLUSTER_NAME:-libsam-test}|g" \
    -e "s|@LOGFILE@|$COROSYNC_LOG|g" \
    -e "s|@STATE_DIR@|$workdir/state|g" \
    "$template" >"$COROSYNC_CONF" || exit 99

grace_s=${WITH_COROSYNC_GRACE_S:-5}
tail_lines=${WITH_COROSYNC_LOG_TAIL:-30}
cmd_pid=""

# Guardian: a second copy of this script reading a pipe whose only writer
# is this one.  When this script ends in any way (even SIGKILL) the read
# returns, and if the script could not clean up, the guardian does.  It
# runs in a session of its own (setsid does not fork here: a process
# substitution is no group leader, so $! stays right), so a kill aimed at
# the test's process group does not take it along.  Every child we start
# gets the pipe's write end closed so it cannot keep the guardian waiting.
exec {guard_fd}> >(WITH_COROSYNC_GUARDIAN=1 exec setsid "$self")
guard_pid=$!

dump_log_tail() {
    [ "$tail_lines" -gt 0 ] 2>/dev/null || return 0
    [ -r "$COROSYNC_LOG" ] || return 0
    say "last $tail_lines lines of the corosync log:"
    tail -n "$tail_lines" "$COROSYNC_LOG" | sed 's/^/    /' >&2
}

finish() { # STATUS [SIGNAL]
    trap '' INT TERM HUP
    [ "$1" -ne 0 ] && [ "$1" -ne 77 ] && dump_log_tail
    teardown
    exec {guard_fd}>&-
    if [ -n "${2:-}" ]; then
        trap - "$2"
        kill "-$2" $$
    fi
    exit "$1"
}

# shellcheck disable=SC2317 # called by the traps below
on_signal() { # SIGNAL
    say "got SIG$1"
    if [ -n "$cmd_pid" ]; then
        kill "-$1" "$cmd_pid" 2>/dev/null
        local end=$(($(now_ms) + grace_s * 1000))
        while ! gone "$cmd_pid"; do
            if [ "$(now_ms)" -ge "$end" ]; then
                say "command still running ${grace_s} s after SIG$1: SIGKILL"
                kill -KILL "$cmd_pid" 2>/dev/null
                break
            fi
            sleep 0.05
        done
    fi
    finish 1 "$1"
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

if ! "$COROSYNC_CTL" start {guard_fd}>&-; then
    say "corosync did not start"
    finish 99
fi

# CMD runs in the background so that a signal is handled at once (bash
# runs traps only between commands); its stdin is passed on explicitly
# because a background command would otherwise read /dev/null.
"$@" <&0 {guard_fd}>&- &
cmd_pid=$!
while :; do
    wait "$cmd_pid"
    status=$?
    gone "$cmd_pid" && ! kill -0 "$cmd_pid" 2>/dev/null && break
done
cmd_pid=""
finish "$status"
