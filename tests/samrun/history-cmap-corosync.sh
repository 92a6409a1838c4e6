#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# sam-run's history in cmap and --status: restarts so far, the last failure's
# cause and when, the time since the current instance started, and what holds
# the program. Published under samrun.<pid>.*, not under libsam's
# resources.process.*: corosync's watchdog service must not hear of them.
# Runs next to a private corosync (tests/corosync/with-corosync.sh).
. "${srcdir:-.}/lib.sh"
[ -n "${COROSYNC_CTL:-}" ] || { echo "SKIP: run me through tests/corosync/with-corosync.sh"; exit 77; }
PATH=$PATH:/usr/sbin:/sbin

value() { corosync-cmapctl -g "$1" 2>/dev/null | sed 's/^.* = //'; }
is() { [ "$(value "$1")" = "$2" ]; }
absent() { ! corosync-cmapctl -g "$1" >/dev/null 2>&1; }

# Instance 1 exits 3; instance 2 runs.
start_bg hist --cmap --interval 1000 --restart-delay 0 -- \
    sh -c 'echo "run=$SAM_RUN_INSTANCE"; [ "$SAM_RUN_INSTANCE" -ge 2 ] || exit 3; exec sleep 100'
pid=$last_pid
wait_line "$work/hist.log" '^run=2'
wait_until "$DEADLINE_S" is "samrun.$pid.restarts" 1 || fail "samrun.$pid.restarts is '$(value "samrun.$pid.restarts")', not 1"
is "samrun.$pid.last_failure" "exit 3" || fail "last_failure is '$(value "samrun.$pid.last_failure")'"
is "samrun.$pid.instance" 2 || fail "instance is '$(value "samrun.$pid.instance")'"
containment=$(value "samrun.$pid.containment")
case $containment in cgroup | "process group") ;; *) fail "containment is '$containment'" ;; esac
corosync-cmapctl -b "samrun.$pid." >"$work/keys.log"
corosync-cmapctl -b resources.process | grep -v "^resources\.process\.[0-9]*\.\(state\|recovery\|poll_period\|last_updated\) " &&
    fail "sam-run wrote keys of its own under resources.process"
pass "samrun.$pid.*: restarts 1, last_failure 'exit 3', instance 2, containment '$containment'"

"$SAM_RUN" --status >"$work/status.log" 2>&1 || fail "--status failed"
has_line "$work/status.log" '^PID +STATE +POLICY +PERIOD +UPDATED +RESTARTS +UP +CONTAINMENT +LAST FAILURE +COMMAND' ||
    fail "no table header"
has_line "$work/status.log" "^$pid +running +restart +1000ms +[0-9.]+s ago +1 +[0-9.]+s +$containment +exit 3, [0-9.]+s ago +sam-run" ||
    fail "no row with the history for $pid"
"$SAM_RUN" --status --json >"$work/status-json.log" 2>&1 || fail "--status --json failed"
has_line "$work/status-json.log" "\"pid\": $pid,.*\"restarts\": 1, \"containment\": \"$containment\", \"instance_started_ns\": [0-9]+, \"up_ms\": [0-9]+, \"last_failure\": \"exit 3\", \"last_failure_time_ns\": [0-9]+, \"last_failure_age_ms\": [0-9]+" ||
    fail "no JSON history for $pid"
python3 -m json.tool "$work/status-json.log" >/dev/null || fail "--json output is not valid JSON"
up=$(sed -n "s/.*\"pid\": $pid,.*\"up_ms\": \([0-9]*\).*/\1/p" "$work/status-json.log")
pass "--status shows restarts, up time (${up} ms), containment and the last failure"

# Stopped: libsam deletes its keys, the keeper deletes ours.
kill -s TERM "$pid"
wait_bg "$pid"
wait_until 5 absent "samrun.$pid.restarts" || fail "samrun.$pid.* left in cmap after a clean stop"
pass "a clean stop removes samrun.$pid.*"

# A check that fails: cause "check failed" (the relay was killed after the
# warning; the next instance tells why).
flag=$work/sick
touch "$flag"
start_bg check --cmap --interval 500 --restart-delay 0 --check "test ! -e '$flag'" -- \
    sh -c 'echo "run=$SAM_RUN_INSTANCE"; [ "$SAM_RUN_INSTANCE" -ge 2 ] && { rm -f "$1"; exec sleep 100; }
           trap "" TERM; exec sleep 100' sh "$flag"
cpid=$last_pid
wait_line "$work/check.log" '^run=2'
wait_until "$DEADLINE_S" is "samrun.$cpid.last_failure" "check failed" ||
    fail "last_failure is '$(value "samrun.$cpid.last_failure")', not 'check failed'"
kill -s TERM "$cpid"
wait_bg "$cpid"
pass "a failing check is recorded as 'check failed'"

# Give-up with --cmap: exit 199; state "failed" and the history stay in
# sam-run's own keys for the cluster to see.
expect_status 199 giveup --cmap --max-restarts 1 --restart-delay 0 -- sh -c 'exit 4'
gpid=$(sed -n 's/^libsam\[\([0-9]*\)\].*/\1/p' "$work/giveup.log" | head -1)
is "samrun.$gpid.state" failed || fail "samrun.$gpid.state after giving up is '$(value "samrun.$gpid.state")'"
is "samrun.$gpid.last_failure" "exit 4" || fail "the last failure of the program that gave up is not 'exit 4'"
is "samrun.$gpid.restarts" 1 || fail "samrun.$gpid.restarts is not 1"
sleep_until_keeper_done() { is "samrun.$gpid.state" failed && ! pgrep -f "sam-run --cmap --max-restarts 1" >/dev/null; }
wait_until 5 sleep_until_keeper_done || fail "the keeper removed the history of a program that gave up"
"$SAM_RUN" --status >"$work/status2.log" 2>&1
has_line "$work/status2.log" "^$gpid +failed +- +- +never +1 +- +[a-z ]+ +exit 4, [0-9.]+s ago +\[stale: supervisor gone\]" ||
    fail "--status does not show the give-up"
pass "--max-restarts with --cmap: exit 199, samrun.$gpid.state failed, restarts 1 and 'exit 4' kept"

# corosync's watchdog service (WD) tracks resources.process.<name>.*: about a
# state key without its companions it logs "resource <name> missing a recovery
# key" (shown first with a key of our own making, so the log level is known to
# be enough). Every resource WD names must be one of libsam's (a supervisor
# pid) or corosync's own; none of sam-run's keys.
control=samrun-wd-control-$$
corosync-cmapctl -s "resources.process.$control.state" str running >/dev/null || fail "cannot write the control key"
wait_until 10 grep -q "\[WD .*resource $control missing a recovery key" "$COROSYNC_LOG" ||
    fail "WD said nothing about a resource without recovery key: this log cannot prove anything"
corosync-cmapctl -d "resources.process.$control.state" >/dev/null
wait_until 10 grep -q "\[WD .*\"$control\" deleted" "$COROSYNC_LOG" || fail "WD did not see the control key go"
grep -E '\[WD +\]' "$COROSYNC_LOG" | grep -v "$control" >"$work/wd.log" || true
has_line "$work/wd.log" "(Fsm:|resource \"?)$pid( |\"|$)" || fail "no WD line about libsam's keys of $pid"
named=$(sed -n 's/.*Fsm:\([^ ]*\) .*/\1/p; s/.*resource "\{0,1\}\([^" ]*\)"\{0,1\} .*/\1/p' "$work/wd.log" | sort -u)
for name in $named; do
    case " $pid $cpid $gpid load_15min memory_used " in
    *" $name "*) ;;
    *) fail "WD logged about a resource that is not libsam's: '$name'" ;;
    esac
done
grep -Ei 'samrun|restarts|containment|last_failure|instance_started' "$work/wd.log" &&
    fail "corosync's watchdog service logged about keys it does not own"
pass "corosync's log: $(wc -l <"$work/wd.log") WD lines, naming only libsam's resources ($(printf '%s' "$named" | tr -s '[:space:]' ' '))"
