#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# soak.sh - long-running reliability check of libsam (not part of `make check`).
#
# Runs SOAK_PROCS (50) supervised processes with the CMAP policy and a
# SOAK_INTERVAL_MS (100 ms) health-check interval next to a private corosync
# (tests/corosync/with-corosync.sh), for SOAK_SECONDS (600). Meanwhile it
# injects random faults into the instances, one every SOAK_FAULT_EVERY_MS
# (500 ms): a crash (abort) or a hang (no more health checks; half of the
# hung instances also block SIGTERM so that only SIGKILL ends them), and
# restarts corosync every SOAK_COROSYNC_EVERY_S (60 s).
#
# At the end it reports, from the supervisors' logs and the instances' own
# event records:
#   restarts done      instances restarted by their supervisors
#   wrong kills        instances the supervisor warned or killed that were not
#                      hung (must be 0)
#   missed detections  hung instances not killed and replaced (must be 0)
#   detection latency  hang -> next instance of the same supervisor (max, mean)
#   CPU and memory     of the supervisors and of corosync, first minute of the
#                      run versus the last
# and exits 1 if a wrong kill or a missed detection happened.
#
# Usage:  scripts/soak.sh [BUILDDIR]
#   BUILDDIR is a configured and built tree (make -C src/lib); default: the
#   current directory. Needs root (namespaces), gcc and corosync.
#   SOAK_SECONDS=150 scripts/soak.sh /tmp/build-rel     # a 2.5-minute run
#
# The back-off is turned off (SAM_RESTART_DELAY_MS=0) so that detection
# latency measures detection, not the crash-loop delay.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=$(cd "${1:-.}" && pwd)
seconds=${SOAK_SECONDS:-600}
procs=${SOAK_PROCS:-50}
interval_ms=${SOAK_INTERVAL_MS:-100}
fault_every_ms=${SOAK_FAULT_EVERY_MS:-500}
corosync_every_s=${SOAK_COROSYNC_EVERY_S:-60}

say() { echo "soak: $*" >&2; }

if [ ! -e "$build/src/lib/.libs/libsam.so.4" ]; then
    say "no built library in $build/src/lib (configure and make -C src/lib first)"
    exit 2
fi

# Re-run inside a private corosync's namespaces.
if [ -z "${COROSYNC_CTL:-}" ]; then
    export COROSYNC_CONF_TEMPLATE=$top/conf/corosync.conf.in
    exec "$top/tests/corosync/with-corosync.sh" "$0" "$build"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sam-soak.XXXXXX") || exit 2
events=$work/events
: >"$events"

# --- the supervised program ----------------------------------------------
cat >"$work/worker.c" <<'EOF'
/* One supervised process of the soak: CMAP|RESTART. The instance sends a
 * health check every 20 ms and records what happens to it in the events file
 * (one O_APPEND write per line): "start", and "hang"/"crash" when the soak
 * injects a fault with SIGUSR1 (hang) or SIGUSR2 (crash). */
#define _GNU_SOURCE
#include <corosync/sam.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t hang, crash;
static volatile long long last_beat_ms;
static int ev_fd = -1;
static unsigned my_iid;
static void on_usr1(int s) { (void)s; hang = 1; }
static void on_usr2(int s) { (void)s; crash = 1; }

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void record_n(int fd, const char *what, unsigned iid, long long n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char line[160];
    int len = snprintf(line, sizeof line, "%lld %s %d %d %u %lld\n",
                       (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, what, (int)getpid(), (int)getppid(), iid, n);
    if (write(fd, line, (size_t)len) != len)
        _exit(3);
}
static void record(int fd, const char *what, unsigned iid) { record_n(fd, what, iid, 0); }

/* The warn signal: note how long this instance had really been silent, by its
 * own clock, then die of it as without a handler. */
static void on_term(int s) {
    record_n(ev_fd, "term", my_iid, mono_ms() - last_beat_ms);
    signal(s, SIG_DFL);
    raise(s);
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    const int ev = open(argv[1], O_WRONLY | O_APPEND | O_CLOEXEC);
    if (ev < 0)
        return 2;
    ev_fd = ev;
    if (sam_initialize(atoi(argv[2]), SAM_RECOVERY_POLICY_RESTART | SAM_RECOVERY_POLICY_CMAP) != CS_OK)
        return 90;
    unsigned iid = 0;
    cs_error_t err = sam_register(&iid);
    if (err != CS_OK) {
        fprintf(stderr, "sam_register: %d\n", err);
        return 91;
    }
    my_iid = iid;
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    /* sam_start() may fail while corosync restarts: record it and retry, so
     * the soak goes on and the failure is counted. */
    for (int tries = 0; (err = sam_start()) != CS_OK; ++tries) {
        record_n(ev, "startfail", iid, err);
        if (tries == 300)
            return 92;
        usleep(100000);
    }
    last_beat_ms = mono_ms();
    signal(SIGTERM, on_term);
    record(ev, "start", iid);
    for (;;) {
        if (crash) {
            record(ev, "crash", iid);
            abort();
        }
        if (hang) {
            if (getpid() % 2) { /* only SIGKILL ends this one */
                sigset_t term;
                sigemptyset(&term);
                sigaddset(&term, SIGTERM);
                sigprocmask(SIG_BLOCK, &term, NULL);
                record(ev, "hang-blocked", iid);
            } else {
                record(ev, "hang", iid);
            }
            for (;;)
                pause();
        }
        sam_hc_send();
        last_beat_ms = mono_ms();
        usleep(20000);
    }
}
EOF
if ! gcc -std=gnu11 -O2 -Wall -I"$top/include" "$work/worker.c" -o "$work/worker" \
    -L"$build/src/lib/.libs" -lsam -Wl,-rpath,"$build/src/lib/.libs"; then
    say "cannot build the worker"
    exit 2
fi

# now_ms
# shellcheck source=../tests/common/proc.sh
. "$top/tests/common/proc.sh"

# utime+stime in clock ticks and VmRSS in KiB, summed over the given pids.
cpu_ticks() {
    local t=0 p f
    for p in "$@"; do
        f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        f=${f##*) }
        # shellcheck disable=SC2086 # its fields, split on purpose
        set -- $f
        t=$((t + ${12} + ${13}))
    done
    echo $t
}
rss_kib() {
    local t=0 p v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo $t
}
hz=$(getconf CLK_TCK)

# --- start the supervisors -------------------------------------------------
export SAM_LOG_STDERR=1 SAM_RESTART_DELAY_MS=0
sups=()
for i in $(seq 1 "$procs"); do
    "$work/worker" "$events" "$interval_ms" 2>"$work/sup.$i.log" &
    sups+=($!)
done
cleanup() {
    local s c
    # SIGTERM is forwarded to each instance; a hung one that blocks it is
    # then SIGKILLed with its supervisor.
    kill -TERM "${sups[@]}" 2>/dev/null
    sleep 1
    for s in "${sups[@]}"; do
        # shellcheck disable=SC2013 # one line of space-separated pids
        for c in $(cat "/proc/$s/task/$s/children" 2>/dev/null); do kill -KILL "$c" 2>/dev/null; done
        kill -KILL "$s" 2>/dev/null
    done
    wait 2>/dev/null
}
trap cleanup EXIT

# Wait until every instance has started once.
deadline=$(($(now_ms) + 30000))
while [ "$(grep -c ' start ' "$events")" -lt "$procs" ]; do
    if [ "$(now_ms)" -gt "$deadline" ]; then
        say "only $(grep -c ' start ' "$events") of $procs instances started"
        exit 1
    fi
    sleep 0.1
done
say "$procs supervisors running (interval ${interval_ms} ms, CMAP); soaking for ${seconds}s"

current_instance() { # the live child of a supervisor
    local c
    c=$(cat "/proc/$1/task/$1/children" 2>/dev/null)
    echo "${c%% *}"
}

declare -A injected=()
faults=0 crashes=0 hangs=0 corosync_restarts=0
start=$(now_ms)
end=$((start + seconds * 1000))
next_corosync=$((start + corosync_every_s * 1000))
sample_at=$((start + 60000))
[ "$seconds" -lt 120 ] && sample_at=$((start + seconds * 500))
first_sample=""
cs_pid=$("$COROSYNC_CTL" pid)
cs_ticks_0=$(cpu_ticks "$cs_pid")
cs_rss_0=$(rss_kib "$cs_pid")
sup_ticks_0=$(cpu_ticks "${sups[@]}")
sup_rss_0=$(rss_kib "${sups[@]}")
t_0=$(now_ms)

while :; do
    now=$(now_ms)
    [ "$now" -ge "$end" ] && break
    if [ "$now" -ge "$next_corosync" ]; then
        if "$COROSYNC_CTL" restart >/dev/null 2>&1; then
            corosync_restarts=$((corosync_restarts + 1))
            say "corosync restarted ($corosync_restarts)"
        else
            say "corosync restart failed"
        fi
        next_corosync=$((next_corosync + corosync_every_s * 1000))
        continue
    fi
    if [ -z "$first_sample" ] && [ "$now" -ge "$sample_at" ]; then
        # The first minute, for the comparison at the end (corosync's pid
        # changes with each restart: its figures are per incarnation).
        first_sample="$(cpu_ticks "${sups[@]}") $(rss_kib "${sups[@]}") $now"
    fi
    s=${sups[$((RANDOM % procs))]}
    inst=$(current_instance "$s")
    if [ -n "$inst" ] && [ -z "${injected[$inst]:-}" ] && grep -q " start $inst " "$events"; then
        injected[$inst]=1
        faults=$((faults + 1))
        if [ $((RANDOM % 2)) -eq 0 ]; then
            kill -USR2 "$inst" 2>/dev/null && crashes=$((crashes + 1))
        else
            kill -USR1 "$inst" 2>/dev/null && hangs=$((hangs + 1))
        fi
    fi
    sleep "$(awk -v ms="$fault_every_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
done

# Let the last faults be detected (two intervals and some) before judging.
sleep "$(awk -v ms="$interval_ms" 'BEGIN { printf "%.3f", 3 * ms / 1000 + 1 }')"
t_1=$(now_ms)
cs_pid_1=$("$COROSYNC_CTL" pid)
sup_ticks_1=$(cpu_ticks "${sups[@]}")
sup_rss_1=$(rss_kib "${sups[@]}")
cs_ticks_1=$(cpu_ticks "$cs_pid_1")
cs_rss_1=$(rss_kib "$cs_pid_1")
alive=0
for s in "${sups[@]}"; do [ -d "/proc/$s" ] && alive=$((alive + 1)); done

# --- judge -------------------------------------------------------------------
cat "$work"/sup.*.log >"$work/all.log"
restarts=$(grep -c 'restarting' "$work/all.log")
# Every warn or kill names the instance's pid; it must be one the soak hung.
grep -hE '\(pid [0-9]+\): .*sending SIG' "$work/all.log" | sed -E 's/.*\(pid ([0-9]+)\).*/\1/' | sort -u >"$work/killed"
awk '$2 ~ /^hang/ {print $3}' "$events" | sort -u >"$work/hung"
# A killed instance that was not hung is a wrong kill, unless it had really
# been silent for an interval by its own clock (starved of CPU: the
# supervisor was right). Its SIGTERM handler recorded that.
comm -23 "$work/killed" "$work/hung" >"$work/killed-not-hung"
wrong_kills=0 starved=0 silent_through=0
while read -r p; do
    if grep -q "(pid $p): wrote a time in the future" "$work/all.log"; then
        # The worker never writes the page itself: always a wrong kill.
        wrong_kills=$((wrong_kills + 1))
        echo "wrong kill: pid $p judged to have scribbled on its heartbeat page" >>"$work/judgement"
        continue
    fi
    silent=$(awk -v p="$p" '$2 == "term" && $3 == p {print $6}' "$events" | head -1)
    if [ -z "$silent" ]; then
        # Warned, and did not run its SIGTERM handler before the SIGKILL an
        # interval later: it got no CPU at all in that time.
        silent_through=$((silent_through + 1))
    elif [ "$silent" -ge "$interval_ms" ]; then
        starved=$((starved + 1))
    else
        wrong_kills=$((wrong_kills + 1))
        echo "wrong kill: pid $p had beaten ${silent} ms before its warn signal arrived" >>"$work/judgement"
    fi
done <"$work/killed-not-hung"
start_failures=$(awk '$2 == "startfail"' "$events" | wc -l)
# Every hang must have been followed by a new instance of its supervisor.
read -r missed lat_max lat_mean detected < <(awk '
    $2 ~ /^hang/ { hang_t[$4] = $1; hang_n[$4]++; pending[$4] = $1; total++ }
    $2 == "start" && ($4 in pending) { d = $1 - pending[$4]; if (d > max) max = d; sum += d; n++; delete pending[$4] }
    END { m = 0; for (p in pending) m++; printf "%d %d %d %d\n", m, max, (n ? sum / n : 0), n }' "$events")
failures=$(grep -c 'instance [0-9]* failed' "$work/all.log")
unexpected=$((failures - crashes - hangs - starved - silent_through - wrong_kills))
wd_failed=$(grep -cE 'resource .* failed|too late' "$COROSYNC_LOG" 2>/dev/null)

elapsed_s=$(awk -v a="$t_0" -v b="$t_1" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
pct() { awk -v t="$1" -v ms="$2" -v hz="$hz" 'BEGIN { if (ms <= 0) print "n/a"; else printf "%.2f%%", 100 * t / hz / (ms / 1000) }'; }
read -r f_ticks _ f_t <<<"${first_sample:-$sup_ticks_1 $sup_rss_1 $t_1}"

echo "soak: duration ${elapsed_s}s, $procs supervisors (CMAP, ${interval_ms} ms), $alive still running"
echo "soak: faults injected $faults: $crashes crashes, $hangs hangs; corosync restarted $corosync_restarts times"
echo "soak: restarts done $restarts"
echo "soak: wrong kills $wrong_kills (healthy instances warned or killed; must be 0)"
echo "soak: starved instances killed $starved (not hung, but silent >= ${interval_ms} ms by their own clock: CPU starvation, a correct kill)"
echo "soak: instances killed without running between warn and SIGKILL $silent_through (no CPU for a whole interval: starvation)"
echo "soak: sam_start failures (retried by the worker) $start_failures"
echo "soak: missed detections $missed (hangs without a new instance; must be 0); detected $detected, latency max ${lat_max} ms, mean ${lat_mean} ms"
echo "soak: instance failures logged $failures = injected $((crashes + hangs)) + starved $((starved + silent_through)) + wrong $wrong_kills + unexplained $unexpected"
echo "soak: corosync watchdog service complaints: ${wd_failed:-0} lines"
echo "soak: supervisors CPU: first part $(pct $((f_ticks - sup_ticks_0)) $((f_t - t_0))), last part $(pct $((sup_ticks_1 - f_ticks)) $((t_1 - f_t))) of one core (all $procs together)"
echo "soak: supervisors RSS: start ${sup_rss_0} KiB, end ${sup_rss_1} KiB (all $procs together; $((sup_rss_1 - sup_rss_0)) KiB change)"
if [ "$cs_pid" = "$cs_pid_1" ]; then
    echo "soak: corosync (pid $cs_pid): CPU $(pct $((cs_ticks_1 - cs_ticks_0)) $((t_1 - t_0))), RSS start ${cs_rss_0} KiB, end ${cs_rss_1} KiB"
else
    echo "soak: corosync: first incarnation (pid $cs_pid) RSS ${cs_rss_0} KiB at start; last incarnation (pid $cs_pid_1) RSS ${cs_rss_1} KiB, CPU ticks $cs_ticks_1 since its start"
fi
[ "$alive" -eq "$procs" ] || { say "FAIL: $((procs - alive)) supervisors died (logs kept in $work)"; exit 1; }
if [ "$wrong_kills" -ne 0 ] || [ "$missed" -ne 0 ] || [ "$unexpected" -ne 0 ]; then
    [ -f "$work/judgement" ] && cat "$work/judgement" >&2
    say "FAIL (logs kept in $work)"
    trap - EXIT
    cleanup
    exit 1
fi
rm -rf "$work"
say "PASS"
