#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# cluster.sh: a three-node corosync cluster on one machine, for tests and demos.
#
# Each node is a network namespace (ip netns NAME-nN) plus a private mount
# namespace held open by a long-lived holder process; the node gets its own
# tmpfs /run and /dev/shm and its own corosync.  The nodes' veth interfaces
# end on a bridge that lives in a namespace of its own (NAME-br), so no
# address or route is added to the host.  Root is required.
#
# Usage: cluster.sh SUBCOMMAND [ARGS]
#   up                      create the namespaces and bridge, start corosync on
#                           all three nodes, wait until all three are quorate
#   down                    stop everything and delete the namespaces; safe to
#                           run at any time, also after a crashed run
#   exec N CMD [ARGS...]    run CMD on node N (inside its namespaces); the
#                           command replaces this script (same pid)
#   isolate N               cut node N off the bridge (packets are dropped)
#   heal N                  put node N back on the bridge
#   status                  show every node's corosync, quorum and link
#   kill-corosync N         SIGKILL node N's corosync, wait until it is gone
#   start-corosync N        start node N's corosync again; wait until quorate
#                           unless the node is isolated
#   ctl N SUBCOMMAND ...    run tests/corosync/corosync-ctl.sh on node N
#                           (wait-quorate, wait-inquorate, quorate, pid, ...)
#   node-dir N              print node N's directory (config, log, state)
#   list                    print the names of all clusters that have namespaces
#                           (SAM_CLUSTER_NAME=NAME cluster.sh down removes one)
#   holder-pid N            print the pid holding node N's namespaces: `nsenter
#                           -t PID -m -n CMD` is `exec N CMD` without this script
#
# Environment:
#   SAM_CLUSTER_NAME     prefix of the namespace names (default: samcl); two
#                        clusters with different names can run side by side
#   SAM_CLUSTER_DIR      state directory (default: /tmp/libsam-cluster-NAME);
#                        it must be on a file system the nodes see (not /run)
#   SAM_CLUSTER_SUBNET   first three octets of the node addresses
#                        (default: 10.213.0; node N gets .N)
#   COROSYNC_BIN         corosync binary (default: corosync)
#   COROSYNC_TIMEOUT_S   deadline for start-up and quorum waits (default: 30)

set -u

PATH=$PATH:/usr/sbin:/sbin
prog=cluster.sh
self=$(readlink -f "$0")
here=$(dirname "$self")
nodes="1 2 3"

name=${SAM_CLUSTER_NAME:-samcl}
statedir=${SAM_CLUSTER_DIR:-/tmp/libsam-cluster-$name}
subnet=${SAM_CLUSTER_SUBNET:-10.213.0}
template=${COROSYNC_CLUSTER_CONF_TEMPLATE:-$here/../../conf/corosync-cluster.conf.in}
ctl=${COROSYNC_CTL_SCRIPT:-$here/../corosync/corosync-ctl.sh}
timeout_s=${COROSYNC_TIMEOUT_S:-30}
br_ns=$name-br

die() {
    echo "$prog: $*" >&2
    exit 1
}
say() { echo "$prog: $*" >&2; }

node_ns() { echo "$name-n$1"; }
node_dir() { echo "$statedir/n$1"; }
node_addr() { echo "$subnet.$1"; }

check_node() {
    case ${1:-} in
    1 | 2 | 3) ;;
    *) die "node must be 1, 2 or 3 (got '${1:-}')" ;;
    esac
}

check_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (network and mount namespaces)"
}

# True while PID exists and is not a zombie (the sandbox's PID 1 may reap
# orphans late; a zombie counts as gone).
alive() {
    local stat state
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    state=${stat##*) }
    state=${state%% *}
    [ "$state" != Z ] && [ "$state" != X ]
}

now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}

holder_pid() { # N: the pid of node N's namespace holder, if it lives
    local pid
    read -r pid 2>/dev/null <"$(node_dir "$1")/holder.pid" || return 1
    alive "$pid" || return 1
    # The holder must still be in node N's network namespace (pid reuse).
    [ "/proc/$pid/ns/net" -ef "/run/netns/$(node_ns "$1")" ] || return 1
    echo "$pid"
}

# Run a command in node N's namespaces with the node's corosync environment.
in_node() { # N CMD...
    local n=$1 pid dir
    shift
    pid=$(holder_pid "$n") || die "node $n is not up (no namespace holder)"
    dir=$(node_dir "$n")
    COROSYNC_WORKDIR=$dir COROSYNC_CONF=$dir/corosync.conf COROSYNC_LOG=$dir/corosync.log \
        COROSYNC_CTL=$ctl SAM_CLUSTER_NODE=$n \
        nsenter -t "$pid" -m -n -- "$@"
}

start_holder() { # N
    local n=$1 dir ns end pid
    dir=$(node_dir "$n")
    ns=$(node_ns "$n")
    rm -f "$dir/holder.ready"
    # The holder enters the node's network namespace, makes a private mount
    # namespace with its own /run and /dev/shm (corosync's fixed pid file,
    # libqb's shared memory), says so, and then only exists.  setsid: no
    # terminal signal reaches it; `down` ends it.  No --fork anywhere, so
    # $! is the holder itself.
    setsid nsenter --net="/run/netns/$ns" -- \
        unshare --mount --propagation private -- \
        /bin/sh -c 'mount -t tmpfs -o mode=0755 tmpfs /run &&
            mount -t tmpfs -o mode=1777 tmpfs /dev/shm &&
            echo ready >"$1.tmp" && mv "$1.tmp" "$1" && exec sleep infinity' \
        holder "$dir/holder.ready" </dev/null >/dev/null 2>"$dir/holder.err" &
    pid=$!
    echo "$pid" >"$dir/holder.pid"
    end=$(($(now_ms) + 10000))
    until [ -e "$dir/holder.ready" ]; do
        alive "$pid" || die "node $n: namespace holder failed: $(cat "$dir/holder.err")"
        [ "$(now_ms)" -lt "$end" ] || die "node $n: namespace holder not ready after 10 s"
        sleep 0.02
    done
}

render_config() { # N
    local n=$1 dir
    dir=$(node_dir "$n")
    sed -e "s|@CLUSTER_NAME@|$name|g" \
        -e "s|@NODE1_ADDR@|$(node_addr 1)|g" \
        -e "s|@NODE2_ADDR@|$(node_addr 2)|g" \
        -e "s|@NODE3_ADDR@|$(node_addr 3)|g" \
        -e "s|@LOGFILE@|$dir/corosync.log|g" \
        -e "s|@STATE_DIR@|$dir/state|g" \
        "$template" >"$dir/corosync.conf"
}

is_isolated() { # N
    ! ip -n "$br_ns" -o link show "p$1" 2>/dev/null | grep -q ' master br0 '
}

cmd_up() {
    local n ns failed=0 t0
    check_root
    [ -r "$template" ] || die "cannot read $template"
    [ -x "$ctl" ] || die "cannot find corosync-ctl.sh at $ctl"
    if [ -e "/run/netns/$br_ns" ] || [ -d "$statedir" ]; then
        die "cluster '$name' seems to exist already (run '$0 down' first)"
    fi
    t0=$(now_ms)
    mkdir -p "$statedir" || die "cannot create $statedir"
    # Anything failing from here on leaves a half-built cluster: take it down.
    trap 'say "up failed; tearing down"; cmd_down >/dev/null 2>&1' EXIT

    ip netns add "$br_ns" || die "ip netns add $br_ns failed"
    ip -n "$br_ns" link set lo up
    ip -n "$br_ns" link add br0 type bridge || die "cannot create the bridge"
    ip -n "$br_ns" link set br0 up
    for n in $nodes; do
        ns=$(node_ns "$n")
        mkdir -p "$(node_dir "$n")/state"
        ip netns add "$ns" || die "ip netns add $ns failed"
        ip -n "$ns" link set lo up
        ip -n "$ns" link add eth0 type veth peer name "p$n" netns "$br_ns" ||
            die "cannot create node $n's veth pair"
        ip -n "$ns" addr add "$(node_addr "$n")/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$br_ns" link set "p$n" master br0 up
        start_holder "$n"
        render_config "$n"
    done
    for n in $nodes; do
        in_node "$n" "$ctl" launch || die "node $n: corosync did not start"
    done
    for n in $nodes; do
        in_node "$n" "$ctl" wait-quorate "$timeout_s" || {
            say "node $n: not quorate after $timeout_s s"
            tail -n 20 "$(node_dir "$n")/corosync.log" | sed 's/^/    /' >&2
            failed=1
        }
    done
    [ $failed -eq 0 ] || die "cluster did not become quorate"
    trap - EXIT
    say "cluster '$name' up: 3 nodes quorate after $(($(now_ms) - t0)) ms (state in $statedir)"
}

cmd_down() {
    local n ns pids pid end leftover
    check_root
    for ns in $(node_ns 1) $(node_ns 2) $(node_ns 3) "$br_ns"; do
        [ -e "/run/netns/$ns" ] || continue
        # Everything running in a node: holder, corosync, test programs.
        # SIGKILL at once: the cluster is going away, nothing needs a clean
        # shutdown, and a polite corosync shutdown takes seconds.
        # Listed again until none is left: a process may fork between the
        # listing and the kill.  Zombies are listed too but count as gone.
        end=$(($(now_ms) + 10000))
        while :; do
            pids=""
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                alive "$pid" && pids="$pids $pid"
            done
            [ -n "$pids" ] || break
            [ "$(now_ms)" -lt "$end" ] || {
                say "processes in $ns do not die:$pids"
                break
            }
            # shellcheck disable=SC2086 # a list of pids
            kill -KILL $pids 2>/dev/null
            sleep 0.05
        done
        ip netns del "$ns" || say "cannot delete namespace $ns"
    done
    # Holders left by a run whose namespaces are already gone.
    for n in $nodes; do
        if pid=$(cat "$(node_dir "$n")/holder.pid" 2>/dev/null) && alive "$pid" &&
            [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ]; then
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    rm -rf "$statedir"
    leftover=$(ip netns list 2>/dev/null | grep -c "^$name-")
    [ "$leftover" -eq 0 ] || die "namespaces left: $(ip netns list | grep "^$name-")"
    return 0
}

cmd_status() {
    local n pid cs q link members
    [ -d "$statedir" ] || {
        echo "cluster '$name': down"
        return 1
    }
    echo "cluster '$name' (state in $statedir)"
    for n in $nodes; do
        if ! pid=$(holder_pid "$n"); then
            echo "node $n: namespaces missing"
            continue
        fi
        cs=$(in_node "$n" "$ctl" pid 2>/dev/null) || cs=none
        in_node "$n" "$ctl" quorate
        case $? in
        0) q=quorate ;;
        2) q=inquorate ;;
        *) q=unknown ;;
        esac
        if is_isolated "$n"; then link=isolated; else link=connected; fi
        members=$(in_node "$n" corosync-quorumtool -s 2>/dev/null | awk '/^Nodes:/ {print $2}')
        echo "node $n: addr $(node_addr "$n") link $link corosync ${cs} $q members ${members:-?}"
    done
}

[ $# -ge 1 ] || die "usage: $0 up|down|status|exec N CMD...|isolate N|heal N|kill-corosync N|start-corosync N|ctl N SUB...|node-dir N"
sub=$1
shift
case $sub in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
exec)
    check_node "${1:-}"
    n=$1
    shift
    [ $# -ge 1 ] || die "usage: exec N CMD [ARGS...]"
    pid=$(holder_pid "$n") || die "node $n is not up"
    dir=$(node_dir "$n")
    export COROSYNC_WORKDIR=$dir COROSYNC_CONF=$dir/corosync.conf \
        COROSYNC_LOG=$dir/corosync.log COROSYNC_CTL=$ctl SAM_CLUSTER_NODE=$n
    exec nsenter -t "$pid" -m -n -- "$@"
    ;;
isolate)
    check_node "${1:-}"
    ip -n "$br_ns" link set "p$1" nomaster || die "cannot isolate node $1"
    ;;
heal)
    check_node "${1:-}"
    ip -n "$br_ns" link set "p$1" master br0 || die "cannot heal node $1"
    ;;
kill-corosync)
    check_node "${1:-}"
    in_node "$1" "$ctl" kill
    ;;
start-corosync)
    check_node "${1:-}"
    in_node "$1" "$ctl" launch || exit 1
    if is_isolated "$1"; then
        in_node "$1" "$ctl" wait-answer "$timeout_s"
    else
        in_node "$1" "$ctl" wait-quorate "$timeout_s"
    fi
    ;;
ctl)
    check_node "${1:-}"
    n=$1
    shift
    in_node "$n" "$ctl" "$@"
    ;;
node-dir)
    check_node "${1:-}"
    node_dir "$1"
    ;;
list)
    ip netns list 2>/dev/null | sed -n 's/^\(.*\)-br\( .*\)\{0,1\}$/\1/p'
    ;;
holder-pid)
    check_node "${1:-}"
    holder_pid "$1" || die "node $1 is not up"
    ;;
*) die "unknown subcommand '$sub'" ;;
esac
