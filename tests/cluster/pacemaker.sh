#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# pacemaker.sh: pacemaker on the three nodes of a cluster made by cluster.sh.
#
# Each node's pacemakerd (the distribution's, run as root; its daemons
# switch to hacluster themselves) lives in the node's namespaces: the
# node's network namespace gives it its own corosync (libqb's abstract
# sockets are per network namespace) and the node's mount namespace gets,
# bound over the system paths, a CIB, logs and state of its own:
#
#   NODE_DIR/pcmk/lib      -> /var/lib/pacemaker   (cib, pengine, blackbox, cores)
#   NODE_DIR/pcmk/log      -> /var/log/pacemaker   (pacemaker.log)
#   NODE_DIR/pcmk/ocf      -> /usr/lib/ocf/resource.d (only provider "sam",
#                             the agent under test; pacemaker has no search path)
#
# /run and /dev/shm are already the node's own tmpfs (cluster.sh).  The CIB
# starts from a file with the cluster options given here, so that the first
# election does not wait pacemaker's default 20 s dc-deadtime.
#
# Usage: pacemaker.sh SUBCOMMAND
#   up AGENT      start pacemaker on every node with AGENT installed as
#                 ocf:sam:service; wait until one DC and three nodes online
#   crm N CMD...  run a pacemaker command line tool on node N
#   log N         print node N's pacemaker log file name
#
# Environment: as cluster.sh (SAM_CLUSTER_NAME, SAM_CLUSTER_DIR, ...);
# PCMK_TIMEOUT_S (60): deadline for the cluster to form.

set -u
PATH=$PATH:/usr/sbin:/sbin
prog=pacemaker.sh
here=$(cd "$(dirname "$0")" && pwd)
cluster=$here/cluster.sh
timeout_s=${PCMK_TIMEOUT_S:-60}

die() {
    echo "$prog: $*" >&2
    exit 1
}
now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}

node_dir() { echo "$("$cluster" node-dir "$1")/pcmk"; }

in_node() { # N CMD...
    local n=$1 pid
    shift
    pid=$("$cluster" holder-pid "$n") || die "node $n is not up"
    nsenter -t "$pid" -m -n -- "$@"
}

# The cluster options every test cluster starts with:
#   stonith-enabled=false   no fencing device exists here.  The price is
#       that a node that is cut off is trusted to stop its resources; in
#       this cluster that is what SAM's quorum policy (sam-run --quorum)
#       does within the token timeout, and pacemaker's own
#       no-quorum-policy=stop stops the resource agent there as well.
#   no-quorum-policy=stop   a partition without quorum stops everything
#       (pacemaker's default, written down because the tests rely on it):
#       "ignore" would keep the resource there too, "freeze" would leave
#       sam-run waiting for quorum and starting the program again at the
#       heal, next to the copy the quorate side started.
#   dc-deadtime=2s          the first election; the default 20 s only
#       matters when nodes boot at very different times.
#   cluster-recheck-interval=1min, start-failure-is-fatal (default).
initial_cib() {
    cat <<'EOF'
<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-stonith-enabled" name="stonith-enabled" value="false"/>
        <nvpair id="opt-no-quorum-policy" name="no-quorum-policy" value="stop"/>
        <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="2s"/>
        <nvpair id="opt-recheck" name="cluster-recheck-interval" value="1min"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
    <rsc_defaults>
      <meta_attributes id="rsc-options">
        <nvpair id="rsc-stickiness" name="resource-stickiness" value="100"/>
      </meta_attributes>
    </rsc_defaults>
  </configuration>
  <status/>
</cib>
EOF
}

start_node() { # N AGENT
    local n=$1 agent=$2 d
    d=$(node_dir "$n")
    mkdir -p "$d/lib/cib" "$d/lib/pengine" "$d/lib/blackbox" "$d/lib/cores" "$d/log/bundles" "$d/ocf/sam" ||
        die "cannot create $d"
    initial_cib >"$d/lib/cib/cib.xml"
    cp "$agent" "$d/ocf/sam/service" && chmod 755 "$d/ocf/sam/service" || die "cannot install $agent"
    chown -R hacluster:haclient "$d/lib" "$d/log" || die "cannot give $d to hacluster"
    chmod 750 "$d/lib"/* && chmod 600 "$d/lib/cib/cib.xml" && chmod 770 "$d/log"
    in_node "$n" sh -c "mount --bind '$d/lib' /var/lib/pacemaker &&
        mount --bind '$d/log' /var/log/pacemaker &&
        mount --bind '$d/ocf' /usr/lib/ocf/resource.d &&
        mkdir -p /run/crm /run/resource-agents" || die "node $n: cannot mount pacemaker's directories"
    # setsid: no terminal signal reaches it; cluster.sh down ends it with
    # everything else in the node.
    PCMK_logfacility=none PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logpriority=info \
        setsid "$cluster" exec "$n" /usr/sbin/pacemakerd </dev/null >"$d/pacemakerd.out" 2>&1 &
}

# True when node N's crm_mon shows a DC and all three nodes online.
formed() { # N
    local xml
    xml=$(in_node "$1" crm_mon --output-as=xml 2>/dev/null) || return 1
    [[ $xml == *'<current_dc present="true"'* ]] || return 1
    [ "$(grep -c '<node name="node[123]" id="[123]" online="true"' <<<"$xml")" = 3 ]
}

cmd_up() { # AGENT
    local agent=${1:-} n t0 end
    [ -x "$agent" ] || die "usage: up AGENT (an executable resource agent)"
    command -v pacemakerd >/dev/null 2>&1 || [ -x /usr/sbin/pacemakerd ] || die "pacemakerd not installed"
    id hacluster >/dev/null 2>&1 || die "no hacluster user (installed by the pacemaker package)"
    t0=$(now_ms)
    for n in 1 2 3; do
        start_node "$n" "$agent"
    done
    end=$((t0 + timeout_s * 1000))
    until formed 1 && formed 2 && formed 3; do
        [ "$(now_ms)" -lt "$end" ] || {
            for n in 1 2 3; do
                echo "--- node $n: pacemakerd output and last log lines ---" >&2
                cat "$(node_dir "$n")/pacemakerd.out" >&2
                tail -n 15 "$(node_dir "$n")/log/pacemaker.log" >&2
            done
            die "pacemaker did not form a three-node cluster within $timeout_s s"
        }
        sleep 0.2
    done
    echo "$prog: pacemaker up on 3 nodes after $(($(now_ms) - t0)) ms" >&2
}

[ $# -ge 1 ] || die "usage: $0 up AGENT | crm N CMD... | log N"
sub=$1
shift
case $sub in
up) cmd_up "$@" ;;
crm)
    [ $# -ge 2 ] || die "usage: crm N CMD..."
    n=$1
    shift
    in_node "$n" "$@"
    ;;
log) echo "$(node_dir "${1:-1}")/log/pacemaker.log" ;;
*) die "unknown subcommand '$sub'" ;;
esac
