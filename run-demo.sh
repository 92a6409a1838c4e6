#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# run-demo.sh - see libsam and sam-run at work, from a fresh Debian 12 machine.
#
# Run as root from the top of the source tree:   ./run-demo.sh
#
# It installs the build dependencies (scripts/install-deps.sh), builds out of
# tree in _build/, starts a private single-node corosync in its own mount and
# network namespaces (tests/corosync/with-corosync.sh, so a system corosync is
# never touched), and plays a short scene under sam-run with a timeline:
#
#   1. "crashy"  crashes twice and is restarted; each instance is told how the
#                previous one ended (kept in libsam's data store, which lives
#                in the supervisor and survives restarts)
#   2. "stuck"   stops passing its health check, is warned (SIGTERM), ignores
#                the warning and is killed, then restarted
#   3. "notifyd" a daemon using libsystemd's sd_notify() (READY=1, WATCHDOG=1),
#                supervised as it is with --notify; it goes silent, is warned
#                and restarted
#   4. the cluster's view: `sam-run --status` and `corosync-cmapctl`
#   5. "quorate" runs only with quorum: quorum is taken away (expected_votes 2)
#                and given back (expected_votes 1)
#   6. "flaky"   crashes at every start: --max-restarts 3 --restart-window 10
#                gives up, sam-run exits with its own status 199 and leaves
#                the cmap state "failed" for the next layer (systemd,
#                pacemaker); an --on-event hook reports each step
#   7. "web"     a server that listens on a socket sam-run opened (--listen,
#                socket activation) and crashes every 5 connections; a client
#                connects in a tight loop through 10 crashes: no connection is
#                refused, the kernel's backlog holds them between instances
#   8. everything is stopped with SIGTERM; nothing is left running
#
# The demo itself takes about 30 seconds; the first build takes longer.
# Environment: DEMO_SKIP_DEPS=1 skips the package installation,
# DEMO_BUILD_DIR (default _build) chooses the build directory.

set -euo pipefail

top=$(cd "$(dirname "$0")" && pwd)
build=${DEMO_BUILD_DIR:-$top/_build}

# --- outside: dependencies and build --------------------------------------
if [ "${1:-}" != --inside ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "run-demo.sh: run me as root (private namespaces, corosync)" >&2
        exit 2
    fi
    if [ "${DEMO_SKIP_DEPS:-0}" != 1 ]; then
        echo "==> installing build dependencies (scripts/install-deps.sh)"
        "$top/scripts/install-deps.sh"
    fi
    mkdir -p "$build"
    echo "==> building in $build (log: $build/build.log)"
    {
        [ -x "$top/configure" ] && [ "$top/configure" -nt "$top/configure.ac" ] || (cd "$top" && ./autogen.sh)
        cd "$build"
        [ -f Makefile ] || "$top/configure" --quiet
        make -j"$(nproc)"
        # The demo's sd_notify() daemon (a test helper, built with libsystemd)
        # and its socket-activated server and client (another test helper).
        make -C tests/samrun sd-notify-client || true
        make -C tests/samrun socket-tool
    } >"$build/build.log" 2>&1 || {
        echo "run-demo.sh: the build failed; the end of $build/build.log:" >&2
        tail -n 30 "$build/build.log" >&2
        exit 1
    }
    echo "==> starting a private corosync and the demo"
    exec "$top/tests/corosync/with-corosync.sh" bash "$top/run-demo.sh" --inside
fi

# --- inside the namespaces, next to a quorate corosync --------------------
PATH=$build/src/tools:$PATH:/usr/sbin:/sbin
export SAM_LOG_STDERR=1 # libsam's recovery lines on stderr, in the timeline
demo=$(mktemp -d /tmp/sam-run-demo.XXXXXX)
PATH=$demo:$PATH # the demo's services, started by name
export SAM_RUN_DEMO_DIR=$demo
t0=${EPOCHREALTIME/./}
services=()

# Every line goes through here: "  12.3s  [service] text".
timeline() {
    local line us
    while IFS= read -r line; do
        us=$((${EPOCHREALTIME/./} - t0))
        printf '%4d.%ds  %s\n' $((us / 1000000)) $((us / 100000 % 10)) "$line"
    done
}
tag() { # NAME: prefix every line, keep a copy for wait_for
    local line
    while IFS= read -r line; do
        printf '[%-7s] %s\n' "$1" "$line"
        printf '%s\n' "$line" >>"$demo/$1.log"
    done
}
say() { printf '\n%s\n' "== $*"; }
note() { printf '%s\n' "   $*"; }

fail() {
    echo "DEMO FAILED: $*"
    exit 1
}

# wait_for NAME REGEX [SECONDS]: poll the service's output, with a deadline.
wait_for() {
    local end=$((${EPOCHREALTIME/./} + ${3:-15} * 1000000))
    until grep -Eq -- "$2" "$demo/$1.log" 2>/dev/null; do
        [ "${EPOCHREALTIME/./}" -lt "$end" ] || fail "[$1] did not print /$2/ in ${3:-15}s"
        sleep 0.1
    done
}

# service NAME SAM-RUN-ARGS...: start sam-run in the background.
service() {
    local name=$1
    shift
    : >"$demo/$name.log"
    sam-run "$@" > >(tag "$name") 2>&1 &
    services+=("$!")
    eval "pid_$name=$!"
}

# shellcheck disable=SC2317 # called by the trap
stop_everything() {
    local p
    for p in "${services[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    "$COROSYNC_CTL" expected-votes 1 >/dev/null 2>&1 || true
}

# now_ms, gone (a zombie waiting to be reaped counts as gone)
# shellcheck source=tests/common/proc.sh
. "$top/tests/common/proc.sh"

scene() {
    trap 'stop_everything' EXIT

    say "corosync $(corosync -v | sed -n 's/.*version .\([0-9.]*\).*/\1/p') runs privately (pid $("$COROSYNC_CTL" pid)), node quorate"

    say "1. crashy: a service that crashes twice, restarted by sam-run (policy restart)"
    note "sam-run --cmap --interval 1000 -- crashy"
    cat >"$demo/crashy" <<'EOF'
#!/bin/sh
echo $$ >>"$SAM_RUN_DEMO_DIR/pids"
echo "instance $SAM_RUN_INSTANCE up; restored from the data store: $SAM_RUN_FAILURES failure(s), previous end: ${SAM_RUN_PREVIOUS_END:-none}"
if [ "$SAM_RUN_INSTANCE" -le 2 ]; then
    sleep 1
    echo "oops, segfault"
    kill -SEGV $$
fi
echo "instance $SAM_RUN_INSTANCE: serving"
exec sleep 1000
EOF
    chmod +x "$demo/crashy"
    service crashy --cmap --interval 1000 -- crashy
    wait_for crashy 'instance 3: serving'

    say "2. stuck: passes its health check, then hangs; warned with SIGTERM, ignores it, killed"
    note "sam-run --cmap --interval 1000 --check 'test ! -e \$SAM_RUN_DEMO_DIR/stuck.flag' -- stuck"
    cat >"$demo/stuck" <<EOF
#!/bin/sh
echo \$\$ >>"$demo/pids"
trap 'echo "got SIGTERM, but I am stuck and cannot stop"' TERM
echo "instance \$SAM_RUN_INSTANCE up (previous end: \${SAM_RUN_PREVIOUS_END:-none})"
if [ "\$SAM_RUN_INSTANCE" -ge 2 ]; then
    rm -f "$demo/stuck.flag"
    echo "instance \$SAM_RUN_INSTANCE: serving"
    exec sleep 1000
fi
sleep 2
echo "deadlock! (the health check fails from now on)"
touch "$demo/stuck.flag"
while :; do sleep 0.2; done
EOF
    chmod +x "$demo/stuck"
    service stuck --cmap --interval 1000 --check "test ! -e \$SAM_RUN_DEMO_DIR/stuck.flag" -- stuck
    wait_for stuck 'got SIGTERM'
    wait_for stuck 'instance 2: serving'

    if [ -x "$build/tests/samrun/sd-notify-client" ]; then
        say "3. notifyd: a daemon that speaks sd_notify() (libsystemd), supervised as it is"
        note "sam-run --notify --cmap --interval 1000 -- notifyd"
        cat >"$demo/notifyd" <<EOF
#!/bin/sh
echo \$\$ >>"$demo/pids"
# Instance 1 reports READY=1, sends WATCHDOG=1 for 2 seconds, then goes silent.
if [ "\$SAM_RUN_INSTANCE" = 1 ]; then
    exec "$build/tests/samrun/sd-notify-client" status:loading sleep:500 ready status:serving ping:4 hang
fi
exec "$build/tests/samrun/sd-notify-client" ready status:serving ping:1000000
EOF
        chmod +x "$demo/notifyd"
        service notifyd --notify --cmap --interval 1000 -- notifyd
        wait_for notifyd 'instance 2: health checking started \(READY=1\)'
        sleep 0.3
    fi

    say "4. what the cluster sees"
    note "\$ sam-run --status"
    sam-run --status | sed 's/^/   /'
    note "\$ corosync-cmapctl -b resources.process"
    corosync-cmapctl -b resources.process | sed 's/^/   /'

    say "5. quorate: runs only while the cluster is quorate (sam-run --quorum)"
    note "sam-run --quorum --cmap --interval 1000 -- quorate"
    cat >"$demo/quorate" <<'EOF'
#!/bin/sh
echo $$ >>"$SAM_RUN_DEMO_DIR/pids"
echo "instance $SAM_RUN_INSTANCE: serving, the cluster is quorate"
exec sleep 1000
EOF
    chmod +x "$demo/quorate"
    service quorate --quorum --cmap --interval 1000 -- quorate
    wait_for quorate 'instance 1: serving'
    note "\$ corosync-cmapctl -s quorum.expected_votes u32 2   # this node alone is no longer quorate"
    "$COROSYNC_CTL" expected-votes 2 >/dev/null
    "$COROSYNC_CTL" wait-inquorate >/dev/null || fail "corosync stayed quorate"
    local end=$((${EPOCHREALTIME/./} + 15000000))
    # shellcheck disable=SC2154 # set by service()
    until corosync-cmapctl -g "resources.process.$pid_quorate.state" 2>/dev/null | grep -q 'waiting for quorum'; do
        [ "${EPOCHREALTIME/./}" -lt "$end" ] || fail "quorate is not waiting for quorum"
        sleep 0.1
    done
    note "\$ sam-run --status"
    sam-run --status | sed 's/^/   /'
    sleep 2 # let the reader see that nothing starts without quorum
    grep -q 'instance 2: serving' "$demo/quorate.log" && fail "quorate ran without quorum"
    note "\$ corosync-cmapctl -s quorum.expected_votes u32 1   # quorum is back"
    "$COROSYNC_CTL" expected-votes 1 >/dev/null
    wait_for quorate 'instance 2: serving'

    say "6. flaky: crashes at every start; sam-run gives up so that the next layer can act"
    note "sam-run --cmap --max-restarts 3 --restart-window 10 --restart-delay 0 --on-event 'echo hook: ...' -- flaky"
    cat >"$demo/flaky" <<'EOF'
#!/bin/sh
echo $$ >>"$SAM_RUN_DEMO_DIR/pids"
echo "instance $SAM_RUN_INSTANCE: cannot open my database, exit 3"
sleep 0.2
exit 3
EOF
    chmod +x "$demo/flaky"
    : >"$demo/flaky.log"
    # Not one of the services: it ends by itself, and its status is the point.
    sam-run --cmap --max-restarts 3 --restart-window 10 --restart-delay 0 \
        --on-event 'echo "hook: $SAM_EVENT instance $SAM_INSTANCE${SAM_REASON:+ ($SAM_REASON)}"' \
        -- flaky > >(tag flaky) 2>&1 &
    local flaky_pid=$! flaky_status=0
    wait "$flaky_pid" || flaky_status=$?
    [ "$flaky_status" -eq 199 ] || fail "flaky: sam-run exited with status $flaky_status, not 199"
    wait_for flaky 'hook: gave-up' 5
    note "sam-run pid $flaky_pid exited with status 199: it gave up, for systemd (Restart=on-failure,"
    note "RestartPreventExitStatus=199) or pacemaker to act on"
    note "\$ corosync-cmapctl -b samrun.$flaky_pid.state"
    corosync-cmapctl -b "samrun.$flaky_pid.state" | sed 's/^/   /'
    corosync-cmapctl -g "samrun.$flaky_pid.state" 2>/dev/null | grep -q '= failed$' ||
        fail "flaky: the cmap state is not failed"

    say "7. web: a server that crashes every 5 connections, its socket opened by sam-run (--listen)"
    note "sam-run --listen tcp:127.0.0.1:8080,name=web --restart-burst 0 --restart-delay 20 --restart-delay-max 40 -- web"
    cat >"$demo/web" <<EOF
#!/bin/sh
echo \$\$ >>"$demo/pids"
# Socket activation: descriptor 3 is the listening socket.
echo "instance \$SAM_RUN_INSTANCE: LISTEN_FDS=\$LISTEN_FDS LISTEN_FDNAMES=\$LISTEN_FDNAMES LISTEN_PID=\$LISTEN_PID (me: \$\$)"
exec "$build/tests/samrun/socket-tool" serve 5
EOF
    chmod +x "$demo/web"
    service web --listen tcp:127.0.0.1:8080,name=web --restart-burst 0 --restart-delay 20 \
        --restart-delay-max 40 -- web
    wait_for web 'serving: instance 1'
    note "a client connects to 127.0.0.1:8080 in a tight loop, one connection after the other"
    "$build/tests/samrun/socket-tool" client tcp:127.0.0.1:8080 "$demo/web.stop" 20 >"$demo/client.out" &
    local client=$! end=$((${EPOCHREALTIME/./} + 20000000))
    until [ "$(grep -c '^crashing after' "$demo/web.log")" -ge 10 ]; do
        [ "${EPOCHREALTIME/./}" -lt "$end" ] || fail "web did not crash 10 times in 20 s"
        sleep 0.1
    done
    touch "$demo/web.stop"
    wait "$client"
    note "client: $(cat "$demo/client.out")"
    grep -q ' refused=0 other=0 ' "$demo/client.out" || fail "web: the client saw refused or failed connections"
    note "10 crashes, not one connection refused: sam-run kept the socket open, the kernel queued"
    note "the connections that came while no server ran, and the next instance accepted them"

    say "8. stopping: SIGTERM to every sam-run is passed on to its program"
    note "\$ sam-run --status"
    sam-run --status | sed 's/^/   /'
    local p status
    for p in "${services[@]}"; do
        kill -TERM "$p"
    done
    for p in "${services[@]}"; do
        status=0
        wait "$p" || status=$?
        if [ "$status" -eq 143 ]; then
            note "sam-run pid $p exited with status 143 (128+15: died of SIGTERM like its program)"
        else
            note "sam-run pid $p exited with status $status"
        fi
    done
    sleep 0.2 # the taggers print the last lines
    while read -r p; do
        gone "$p" || fail "program pid $p is still running"
    done <"$demo/pids"
    note "\$ sam-run --status"
    sam-run --status | sed 's/^/   /'
    say "done: nothing left running; corosync is stopped next"
    services=()
}

scene 2>&1 | timeline
status=${PIPESTATUS[0]}
rm -rf "$demo"
exit "$status"
