#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# run-demo-pacemaker.sh - layered recovery in a terminal timeline: sam-run
# restarts a crashing service on its node within milliseconds, pacemaker
# moves it to another node only when sam-run gives up or the node is cut off.
#
# Run as root from the top of the source tree:   ./run-demo-pacemaker.sh
#
# It installs the dependencies (scripts/install-deps.sh, which brings
# pacemaker), builds out of tree in _build/, starts the three-node corosync
# cluster of the tests (tests/cluster/cluster.sh: network and mount
# namespaces, nothing on the host's network) with pacemaker on each node
# (tests/cluster/pacemaker.sh), and plays:
#
#   1. the resource "web" (ocf:sam:service, max_restarts 3, monitor 2 s)
#      starts on one node
#   2. it crashes three times: sam-run restarts it each time, pacemaker's
#      fail count stays 0
#   3. it crash-loops: sam-run gives up, pacemaker starts it on another node
#   4. that node is cut off: sam-run stops the service there when quorum is
#      lost, pacemaker starts it on the quorate side; the overlap is shown
#   5. the node comes back; one copy runs; everything is taken down
#
# About 40 seconds once built.  Not run by CI (the test is
# tests/cluster/cluster-pacemaker.test).  DEMO_SKIP_DEPS=1 skips the
# package installation, DEMO_BUILD_DIR (default _build) names the build.

set -uo pipefail

top=$(cd "$(dirname "$0")" && pwd)
build=${DEMO_BUILD_DIR:-$top/_build}
cluster=$top/tests/cluster/cluster.sh
pcmk=$top/tests/cluster/pacemaker.sh

if [ "$(id -u)" -ne 0 ]; then
    echo "run-demo-pacemaker.sh: run me as root (namespaces, corosync, pacemaker)" >&2
    exit 2
fi
if [ "${DEMO_SKIP_DEPS:-0}" != 1 ]; then
    echo "==> installing dependencies (scripts/install-deps.sh)"
    "$top/scripts/install-deps.sh" || exit 1
fi
mkdir -p "$build"
echo "==> building in $build (log: $build/build.log)"
{
    [ -x "$top/configure" ] && [ "$top/configure" -nt "$top/configure.ac" ] || (cd "$top" && ./autogen.sh)
    cd "$build" && { [ -f Makefile ] || "$top/configure" --quiet; } && make -j"$(nproc)"
} >"$build/build.log" 2>&1 || {
    echo "run-demo-pacemaker.sh: the build failed; the end of $build/build.log:" >&2
    tail -n 30 "$build/build.log" >&2
    exit 1
}

export SAM_CLUSTER_NAME=samdemo$$
export SAM_CLUSTER_DIR=/tmp/libsam-cluster-$SAM_CLUSTER_NAME
work=$(mktemp -d /tmp/demo-pacemaker.XXXXXX) || exit 1
chmod 755 "$work"
events=$work/events
: >"$events" && : >"$work/sam-run.log"
follower=""
finish() {
    [ -n "$follower" ] && kill "$follower" 2>/dev/null
    "$cluster" down >/dev/null 2>&1
    rm -rf "$work"
}
trap finish EXIT

t_begin=${EPOCHREALTIME/./}
ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
stamp() { local t=$((${EPOCHREALTIME/./} - t_begin)); printf '%4d.%01ds' $((t / 1000000)) $((t % 1000000 / 100000)); }
stamped() { local line; while IFS= read -r line; do echo "$(stamp)     $line"; done; }
say() { echo "$(stamp)  == $*"; }
note() { echo "$(stamp)     $*"; }
poll() { # TIMEOUT_S CMD...
    local end=$(($(ms) + $1 * 1000))
    shift
    until "$@"; do
        [ "$(ms)" -lt "$end" ] || return 1
        sleep 0.05
    done
}
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
located() { # [N]: where node N's crm_mon says web runs (asks again while it is busy)
    local xml
    for _ in 1 2 3 4 5; do
        xml=$("$pcmk" crm "${1:-1}" crm_mon --output-as=xml 2>/dev/null) && [[ $xml == *'<status code="0"'* ]] && break
        sleep 0.1
    done
    xmllint --xpath "string(//resource[@id='web'][@role='Started']/node/@name)" - <<<"$xml" 2>/dev/null
}
last_start() { grep '^start ' "$events" | tail -n 1; }
field() { local v=" ${1#* } "; v=${v#* "$2"=}; echo "${v%% *}"; }

# The service: says where it runs; dies on SIGTERM saying so.
cat >"$work/web.sh" <<'EOF'
#!/bin/sh
ulimit -c 0
node=${OCF_RESKEY_CRM_meta_on_node:-?}
echo "start node=$node pid=$$ ms=$(date +%s%3N)" >>"$1"
trap 'echo "term node=$node pid=$$ ms=$(date +%s%3N)" >>"$1"; exit 0' TERM
while :; do sleep 0.05; done
EOF
chmod 755 "$work/web.sh"

say "three corosync nodes, each in its own namespaces"
"$cluster" up 2>&1 | stamped
say "pacemaker on each node (own CIB, /run, logs), stonith off, no-quorum-policy=stop"
"$pcmk" up "$build/ocf/service" 2>&1 | stamped || exit 1

# The timeline of the service and of sam-run, as they happen.
(
    # --pid: tail ends with this script, and the loop with it.
    tail --pid=$$ -n 0 -F "$events" "$work/sam-run.log" 2>/dev/null | while IFS= read -r line; do
        case $line in
        "==> "* | "") continue ;;
        start\ * | term\ *) echo "$(stamp)  [web on $(field "$line" node)] ${line%% *} (pid $(field "$line" pid))" ;;
        *"giving up"* | *"quorum lost"* | *"failed (was killed"* | *"waits for quorum"*)
            echo "$(stamp)  [sam-run] ${line#*: }" ;;
        esac
    done
) &
follower=$!

say "1. web = ocf:sam:service, max_restarts 3, monitor every 2 s, migration-threshold 1"
"$pcmk" crm 1 cibadmin --create --scope resources --xml-text "
<primitive id='web' class='ocf' provider='sam' type='service'>
  <instance_attributes id='web-params'>
    <nvpair id='web-command' name='command' value='$work/web.sh $events'/>
    <nvpair id='web-sam_run' name='sam_run' value='$build/src/tools/sam-run'/>
    <nvpair id='web-max_restarts' name='max_restarts' value='3'/>
    <nvpair id='web-logfile' name='logfile' value='$work/sam-run.log'/>
  </instance_attributes>
  <meta_attributes id='web-meta'><nvpair id='web-mt' name='migration-threshold' value='1'/></meta_attributes>
  <operations><op id='web-monitor' name='monitor' interval='2s' timeout='20s'/></operations>
</primitive>" || exit 1
poll 30 eval '[ -n "$(located)" ]' || { echo "web did not start"; exit 1; }
home=$(located)
sleep 0.3
note "crm_mon: web started on $home"

say "2. three crashes (SIGSEGV): sam-run's business"
for _ in 1 2 3; do
    before=$(grep -c '^start ' "$events")
    kill -SEGV "$(field "$(last_start)" pid)"
    poll 10 eval '[ "$(grep -c "^start " "$events")" -gt '"$before"' ]'
    sleep 0.7
done
sleep 2.5
note "pacemaker: web on $(located), fail count $("$pcmk" crm 1 crm_failcount --query -r web -N "$home" | sed 's/.*value=//')"

say "3. a crash loop: sam-run gives up after 3 restarts within its window, pacemaker takes over"
t0=$(ms)
last=""
until grep -q 'giving up' "$work/sam-run.log"; do
    p=$(field "$(last_start)" pid)
    [ "$p" != "$last" ] && alive "$p" && kill -SEGV "$p" && last=$p
    [ $(($(ms) - t0)) -lt 20000 ] || break
    sleep 0.02
done
poll 30 eval '[ "$(field "$(last_start)" node)" != '"$home"' ]'
moved=$(field "$(last_start)" node)
poll 10 eval '[ "$(located)" = '"$moved"' ]'
sleep 0.3
note "crm_mon: web started on $moved; failed action on $home: $("$pcmk" crm 1 crm_mon -1 | grep -o "monitor on $home returned '[a-z ]*'")"

vn=${moved#node}
for n in 1 2 3; do [ "$n" != "$vn" ] && obs=$n && break; done
say "4. $moved is cut off from the others"
pid=$(field "$(last_start)" pid)
starts=$(grep -c '^start ' "$events")
t_iso=$(ms)
"$cluster" isolate "$vn"
poll 30 eval '! alive '"$pid" && poll 30 eval '[ "$(grep -c "^start " "$events")" -gt '"$starts"' ]'
sleep 0.3
end_ms=$(field "$(grep "^term .* pid=$pid " "$events")" ms)
new=$(last_start)
overlap=$((end_ms - $(field "$new" ms)))
[ $overlap -gt 0 ] || overlap=0
note "stopped on $moved $((end_ms - t_iso)) ms after the cut; started on $(field "$new" node) $(($(field "$new" ms) - t_iso)) ms after it; overlap $overlap ms"
note "crm_mon on node$obs: web on $(located "$obs")"

say "5. $moved comes back"
"$cluster" heal "$vn"
poll 60 eval '[ "$("$pcmk" crm '"$vn"' crm_mon --output-as=xml 2>/dev/null | grep -c "online=\"true\"")" = 3 ]'
note "crm_mon on $moved: web on $(located "$vn"); copies running: $(grep '^start ' "$events" | while read -r l; do alive "$(field "$l" pid)" && echo x; done | wc -l)"
say "done: taking the cluster down"
