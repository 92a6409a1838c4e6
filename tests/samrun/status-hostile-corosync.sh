#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# `sam-run --status` on hostile cmap keys (any cmap writer can create them)
# and on a stale key whose pid now belongs to another process, with a
# command line chosen to attack the terminal: no control character reaches
# the table, --json stays valid JSON (checked by a real parser), and the
# stale key is shown as stale, without the other process's command line.
# Runs next to a private corosync (tests/corosync/with-corosync.sh).
. "${srcdir:-.}/lib.sh"
[ -n "${COROSYNC_CTL:-}" ] || { echo "SKIP: run me through tests/corosync/with-corosync.sh"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is needed to check the JSON"; exit 77; }
PATH=$PATH:/usr/sbin:/sbin

esc=$(printf '\033')
set_key() { # NAME FIELD TYPE VALUE
    corosync-cmapctl -s "resources.process.$1.$2" "$3" "$4" >/dev/null || fail "cannot set $1.$2"
}

# A real supervisor, for comparison.
start_bg real --cmap --interval 1000 -- sh -c 'echo "run=$SAM_RUN_INSTANCE"; exec sleep 100'
real=$last_pid
wait_line "$work/real.log" '^run=1'
wait_until "$DEADLINE_S" sh -c "corosync-cmapctl -g resources.process.$real.last_updated >/dev/null 2>&1" ||
    fail "the real supervisor published nothing"

# A process that is no supervisor, with an argv[0] that clears the screen.
python3 -c 'import os, sys; os.execv("/bin/sleep", ["\033[2J\033[Hevil\033]0;title\007", "100"])' &
other=$!
bg_pids="$bg_pids $other"
wait_until 10 grep -q evil "/proc/$other/cmdline" || fail "the impostor did not start"

# Hostile values: escape sequences, a C1 CSI, invalid UTF-8, a bidi override.
set_key 0123 state str "$(printf '\033[2J\033[Hrunning')"
set_key 0123 recovery str "$(printf 'restart\302\233\061\155\377\376')"
set_key 0123 last_updated u64 18446744073709551615
set_key 9223372036854775808 state str "$(printf 'x\342\200\256gnidaew')"
set_key 9223372036854775808 last_updated u64 9223372036854775808
# A stale key: written long before the impostor started, under its pid.
set_key "$other" state str running
set_key "$other" recovery str restart
set_key "$other" last_updated u64 1
# A stale key of a supervisor that is gone: a pid nobody holds (pid_max + 1
# cannot be in use).
gone_pid=$(($(cat /proc/sys/kernel/pid_max) + 1))
set_key "$gone_pid" state str failed
set_key "$gone_pid" last_updated u64 1
# sam-run's own keys are just as open: hostile history, and an entry that
# exists only there.
corosync-cmapctl -s "samrun.0123.last_failure" str "$(printf 'exit\033[31m 3')" >/dev/null || fail "cannot set history"
corosync-cmapctl -s "samrun.0123.last_failure_time" u64 18446744073709551615 >/dev/null || fail "cannot set history"
corosync-cmapctl -s "samrun.0123.instance_started" u64 18446744073709551615 >/dev/null || fail "cannot set history"
corosync-cmapctl -s "samrun.0124.state" str "$(printf 'failed\033]0;x\007')" >/dev/null || fail "cannot set history"
corosync-cmapctl -s "samrun.0124.containment" str "$(printf '\302\233')" >/dev/null || fail "cannot set history"

"$SAM_RUN" --status >"$work/table.out" 2>&1 || fail "--status failed"
cp "$work/table.out" "$work/table.log"
tr -d '\n' <"$work/table.out" | LC_ALL=C grep -q '[[:cntrl:]]' && fail "a control character reached the table"
LC_ALL=C grep -q "$(printf '\302\233')" "$work/table.out" && fail "a C1 control reached the table"
python3 -c 'import sys; open(sys.argv[1], encoding="utf-8").read()' "$work/table.out" ||
    fail "the table is not valid UTF-8"
has_line "$work/table.out" '^0123 +\\x1b\[2J\\x1b\[Hrunning +restart\\u\{009b\}1m\\xff\\xfe ' ||
    fail "hostile values are not shown escaped"
has_line "$work/table.out" "^$other +running .*\[stale: pid now used by another process\]" ||
    fail "the stale key of a reused pid is not shown as stale"
has_line "$work/table.out" "evil" && fail "the table shows another process's command line"
has_line "$work/table.out" "^$gone_pid +failed .*\[stale: supervisor gone\]" || fail "a gone supervisor is not stale"
has_line "$work/table.out" "^$real +running .*sam-run" || fail "the real supervisor is not shown with its command"
has_line "$work/table.out" 'exit\\x1b\[31m 3, in ' || fail "a hostile last failure is not shown escaped"
has_line "$work/table.out" '^0124 +failed\\x1b\]0;x\\x07 .*\\u\{009b\}' ||
    fail "an entry only in sam-run's keys is not shown, escaped"
pass "table: escaped values, stale keys marked, no foreign command line"

"$SAM_RUN" --status --json >"$work/json.out" 2>&1 || fail "--status --json failed"
cp "$work/json.out" "$work/json.log"
python3 -m json.tool "$work/json.out" >/dev/null || fail "--json output is not valid JSON"
python3 - "$work/json.out" "$other" "$real" "$gone_pid" <<'EOF' || fail "--json content"
import json, sys
rows = {r["name"]: r for r in json.load(open(sys.argv[1], encoding="utf-8"))}
other, real, gone = sys.argv[2], sys.argv[3], sys.argv[4]
def check(cond, what):
    if not cond:
        sys.exit("json: " + what + ": " + json.dumps(rows, ensure_ascii=True))
check(rows["0123"]["pid"] is None, "a name with a leading zero is no pid")
check(rows["0123"]["state"] == "\x1b[2J\x1b[Hrunning", "state kept as text")
check(rows["0123"]["recovery"] == "restart\x9b1m\ufffd\ufffd", "invalid UTF-8 replaced")
check(rows["0123"]["last_updated_ns"] == 2**64 - 1, "last_updated_ns")
check(rows["0123"]["stale"] is True, "0123 stale")
check(rows["9223372036854775808"]["pid"] is None, "out-of-range pid")
check(rows[other]["pid"] == int(other) and rows[other]["stale"] is True, "reused pid stale")
check(rows[other]["command"] is None, "no foreign command line")
check(rows[gone]["stale"] is True and rows[gone]["command"] is None, "gone supervisor stale")
check(rows[real]["stale"] is False and "sam-run" in rows[real]["command"], "real supervisor")
check(rows["0123"]["last_failure"] == "exit\x1b[31m 3", "hostile last failure kept as text")
check(rows["0123"]["last_failure_time_ns"] == 2**64 - 1, "last_failure_time_ns")
check(rows["0123"]["up_ms"] is None, "no up time for a stale entry")
check(rows["0124"]["state"] == "failed\x1b]0;x\x07" and rows["0124"]["stale"] is True, "history-only entry")
check(0 <= rows[real]["last_updated_age_ms"] <= 3000, "real supervisor's age")
EOF
LC_ALL=C grep -q "$esc" "$work/json.out" && fail "an escape character reached the JSON output"
pass "--json: valid, pid only for canonical names, stale keys marked"

kill -s TERM "$real"
wait_bg "$real"
corosync-cmapctl -D samrun.012 >/dev/null 2>&1
