#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# run-bench.sh - our libsam against the system's, side by side, on this machine.
#
# Runs sam-bench once per metric and library, alternating A (ours) and B
# (upstream, the system libsam.so.4) for several pairs so that slow drifts of
# the machine hit both alike, takes the median of each side and prints one
# Markdown table: metric, ours, upstream, ratio (ours/upstream), which
# direction is better, and the issue's target with whether it is met.
#
# The CMAP metrics need a corosync: unless one is already described by
# COROSYNC_CTL, the whole run re-executes itself inside
# tests/corosync/with-corosync.sh (a private corosync in its own namespaces).
#
# By default sam-bench and corosync are pinned to one CPU: on a small machine
# cross-CPU wake-ups otherwise dominate the noise. --unpin turns that off.
set -u

here=$(cd "$(dirname "$0")" && pwd)

usage() {
    cat <<EOF
usage: $0 [options]
  --ours DIR           directory holding our libsam.so.4 (required), e.g. BUILD/src/lib/.libs
  --upstream DIR       directory holding the system libsam.so.4 (default /usr/lib/x86_64-linux-gnu)
  --bench PATH         the sam-bench binary (default ./sam-bench)
  --pairs N            A/B pairs per metric (default 3, at least 1)
  --metrics "M ..."    metrics to run (default: all; see sam-bench --help)
  --unpin              do not pin sam-bench and corosync to one CPU
  --cpu N              the CPU to pin to (default 0)
  --quick              short loops and few samples: checks that everything runs
  --with-corosync PATH the private-corosync wrapper (default: tests/corosync/with-corosync.sh
                       of the source tree)
  --no-corosync        never start a corosync: the CMAP metrics are skipped
  --log FILE           raw RESULT lines go here (default ./bench-results.log)
EOF
}

ours=""
upstream=/usr/lib/x86_64-linux-gnu
bench=./sam-bench
pairs=3
all_metrics="hc hc-cmap store-64 store-64k store-1m store-64m restore-1m restore-64m first-restore-1m first-restore-64m fork-floor restart restart-cmap restart-warm restart-warm-cmap hang supervisor supmem supmem-cmap"
metrics=$all_metrics
pin=1
cpu=0
quick=0
with_corosync=$here/../tests/corosync/with-corosync.sh
no_corosync=0
log=./bench-results.log
orig_args=("$@")

while [ $# -gt 0 ]; do
    case "$1" in
    --ours) ours=$2; shift ;;
    --upstream) upstream=$2; shift ;;
    --bench) bench=$2; shift ;;
    --pairs) pairs=$2; shift ;;
    --metrics) metrics=$2; shift ;;
    --unpin) pin=0 ;;
    --cpu) cpu=$2; shift ;;
    --quick) quick=1 ;;
    --with-corosync) with_corosync=$2; shift ;;
    --no-corosync) no_corosync=1 ;;
    --log) log=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run-bench: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

die() { echo "run-bench: $*" >&2; exit 2; }
[ -n "$ours" ] || die "--ours DIR is required"
[ -e "$ours/libsam.so.4" ] || die "no libsam.so.4 in $ours (build the library first)"
[ -e "$upstream/libsam.so.4" ] || die "no libsam.so.4 in $upstream (install libsam4)"
[ -x "$bench" ] || die "no sam-bench at $bench"
case "$pairs" in '' | *[!0-9]* | 0) die "--pairs needs a positive number" ;; esac
ours=$(cd "$ours" && pwd)
upstream=$(cd "$upstream" && pwd)
bench=$(cd "$(dirname "$bench")" && pwd)/$(basename "$bench")
case "$log" in /*) ;; *) log=$(pwd)/${log#./} ;; esac

needs_corosync=0
for m in $metrics; do
    case "$m" in *-cmap) needs_corosync=1 ;; esac
done

# Enter a private corosync once, for the whole run (A and B see the same one).
if [ "$needs_corosync" = 1 ] && [ "$no_corosync" = 0 ] && [ -z "${COROSYNC_CTL:-}" ] &&
    [ -z "${RUN_BENCH_INSIDE:-}" ] && [ -f "$with_corosync" ]; then
    inner=(bash "$here/run-bench.sh" --ours "$ours" --upstream "$upstream" --bench "$bench"
        --pairs "$pairs" --metrics "$metrics" --cpu "$cpu" --log "$log")
    [ "$pin" = 1 ] || inner+=(--unpin)
    [ "$quick" = 1 ] && inner+=(--quick)
    RUN_BENCH_INSIDE=1 RUN_BENCH_COMMAND="$0$(printf ' %q' "${orig_args[@]}")" \
        bash "$with_corosync" "${inner[@]}"
    rc=$?
    # 77: the wrapper could not make a private corosync here (not root, no
    # namespaces); this script itself never exits 77. Go on without CMAP.
    [ "$rc" = 77 ] || exit "$rc"
    echo "run-bench: no private corosync possible here: the CMAP metrics are skipped" >&2
    no_corosync=1
fi

corosync_pid=""
if [ "$no_corosync" = 0 ] && [ -n "${COROSYNC_CTL:-}" ]; then
    corosync_pid=$($COROSYNC_CTL pid 2>/dev/null)
    [ -n "$corosync_pid" ] && [ -d "/proc/$corosync_pid" ] || corosync_pid=""
fi

if [ "$quick" = 1 ]; then
    declare -A extra=(
        [hc]="-t 0.2" [hc-cmap]="-t 0.3" [store-64]="-t 0.2" [store-64k]="-t 0.2" [store-1m]="-t 0.2"
        [store-64m]="-t 0.2" [restore-1m]="-t 0.2" [restore-64m]="-t 0.2"
        [first-restore-1m]="-n 5" [first-restore-64m]="-n 5"
        [fork-floor]="-n 30" [restart]="-n 30" [restart-cmap]="-n 30" [restart-warm]="-n 30" [restart-warm-cmap]="-n 30" [hang]="-n 5" [supervisor]="-t 0.5"
        [supmem]="-n 100" [supmem-cmap]="-n 100")
else
    declare -A extra=()
fi

pin_cmd=()
if [ "$pin" = 1 ]; then
    command -v taskset >/dev/null || die "taskset not found (util-linux); use --unpin"
    pin_cmd=(taskset -c "$cpu")
    if [ -n "$corosync_pid" ]; then
        taskset -a -p -c "$cpu" "$corosync_pid" >/dev/null || die "cannot pin corosync $corosync_pid"
    fi
fi

# Lines the watchdog service logs when it finds a supervised process late.
wd_reports() {
    if [ -n "${COROSYNC_LOG:-}" ] && [ -f "$COROSYNC_LOG" ]; then
        grep -c -E 'too late|failed!' "$COROSYNC_LOG" 2>/dev/null
    else
        echo 0
    fi
}

results=$(mktemp /tmp/run-bench.XXXXXX)
trap 'rm -f "$results"' EXIT

{
    echo "# run-bench $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(uname -n), $(nproc) CPUs, $(uname -r)"
    echo "# args: ${orig_args[*]}"
    echo "# ours: $ours  upstream: $upstream  pairs: $pairs  pinned: $([ "$pin" = 1 ] && echo "CPU $cpu" || echo no)  corosync: ${corosync_pid:-none}"
} >"$log"

# run_one SIDE METRIC PAIR: one sam-bench run; appends "side metric key value" lines.
run_one() {
    local side=$1 metric=$2 pair=$3 dir args line wd0 wd1
    if [ "$side" = ours ]; then dir=$ours; else dir=$upstream; fi
    args=(--expect-lib "$dir")
    [ -n "$corosync_pid" ] && args+=(--corosync-pid "$corosync_pid")
    # shellcheck disable=SC2206
    [ -n "${extra[$metric]:-}" ] && args+=(${extra[$metric]})
    wd0=$(wd_reports)
    line=$(LD_LIBRARY_PATH=$dir timeout -k 5 600 "${pin_cmd[@]}" "$bench" "$metric" "${args[@]}" 2>>"$log" |
        grep '^RESULT ' | tail -n 1)
    wd1=$(wd_reports)
    [ -n "$line" ] || line="RESULT metric=$metric error=\"no result (crashed or timed out)\""
    echo "$side pair=$pair $line" >>"$log"
    printf '  %-8s %-13s pair %d: %s\n' "$side" "$metric" "$pair" "${line#RESULT metric="$metric" }" >&2
    case "$line" in
    *' error='*) echo "$side $metric error 1" >>"$results" ;;
    *)
        # key=value pairs (values never contain spaces, except error="...").
        for kv in ${line#RESULT }; do
            case "$kv" in *=*) echo "$side $metric ${kv%%=*} ${kv#*=}" >>"$results" ;; esac
        done
        case "$metric" in *-cmap) echo "$side $metric wd_reports $((wd1 - wd0))" >>"$results" ;; esac
        ;;
    esac
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "run-bench: $pairs pair(s) of runs per metric, A = ours, B = upstream; raw results in $log" >&2
for metric in $metrics; do
    case "$metric" in
    *-cmap)
        if [ -z "$corosync_pid" ]; then
            echo "  skipping $metric: no corosync (tests/corosync/with-corosync.sh missing or --no-corosync)" >&2
            continue
        fi ;;
    esac
    for pair in $(seq 1 "$pairs"); do
        run_one ours "$metric" "$pair"
        run_one upstream "$metric" "$pair"
    done
done

# agg SIDE METRIC KEY HOW: median (or max) of one field over the runs of one side.
agg() {
    awk -v s="$1" -v m="$2" -v k="$3" -v how="$4" '
        $1 == s && $2 == m && $3 == k { v[n++] = $4 + 0 }
        END {
            if (n == 0) { print "-"; exit }
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            if (how == "max") r = v[n - 1]
            else if (n % 2) r = v[(n - 1) / 2]
            else r = (v[n / 2 - 1] + v[n / 2]) / 2
            print r
        }' "$results"
}

failed() { grep -q "^$1 $2 error " "$results"; }

fmt() {
    case "$1" in
    - | FAIL) echo "$1" ;;
    *) awk -v x="$1" 'BEGIN {
            a = x < 0 ? -x : x
            if (a == 0) printf "0"
            else if (a >= 1000) printf "%.0f", x
            else if (a >= 100) printf "%.1f", x
            else if (a >= 1) printf "%.2f", x
            else printf "%.3g", x }' ;;
    esac
}

# Rows: label;metric;key;how (median|max);better (lower|higher);target
# target: "ratio<=X" / "ratio>=X" on ours/upstream, "ours<X" absolute, or "" (report only).
rows='sam_hc_send, RESTART (ns/call);hc;ns_per_call;median;lower;ratio<=0.05
sam_hc_send, RESTART|CMAP (ns/call);hc-cmap;ns_per_call;median;lower;ratio<=0.05
corosync CPU per 100k heartbeats, CMAP (ms, /proc/PID/stat utime+stime);hc-cmap;cs_cpu_ms_per_100k;median;lower;ratio<=0.05
corosync CPU per 100k heartbeats, CMAP, net of idle (ms, schedstat);hc-cmap;cs_net_ms_per_100k;median;lower;ratio<=0.05
corosync CPU while heartbeating flat out, CMAP (% of a CPU);hc-cmap;cs_cpu_pct;median;lower;
corosync CPU idle, no client, just before (% of a CPU);hc-cmap;cs_idle_pct;median;lower;
sam_data_store 64 B (ops/s);store-64;ops_per_s;median;higher;ratio>=10
sam_data_store 64 KiB (MiB/s);store-64k;mib_per_s;median;higher;
sam_data_store 1 MiB (MiB/s);store-1m;mib_per_s;median;higher;ratio>=1
sam_data_store 64 MiB (MiB/s);store-64m;mib_per_s;median;higher;ratio>=2
sam_data_restore 1 MiB (MiB/s);restore-1m;mib_per_s;median;higher;ratio>=1
sam_data_restore 64 MiB (MiB/s);restore-64m;mib_per_s;median;higher;ratio>=1
first sam_data_restore in a fresh instance after a restart, 1 MiB (MiB/s, median of 20);first-restore-1m;mib_per_s;median;higher;ratio>=1
first sam_data_restore in a fresh instance after a restart, 64 MiB (MiB/s, median of 20);first-restore-64m;mib_per_s;median;higher;ratio>=1
first restore, 64 MiB: page faults inside the call;first-restore-64m;faults_per_restore;median;lower;
fork floor: bare fork/exit/waitpid/fork with the library loaded, median (us);fork-floor;median_us;median;lower;
fork floor, min (us);fork-floor;min_us;median;lower;
restart latency, median (us);restart;median_us;median;lower;ratio<=1
restart latency, p99 (us);restart;p99_us;median;lower;
restart latency, min (us);restart;min_us;median;lower;
restart latency CMAP, median (us);restart-cmap;median_us;median;lower;ratio<=1
restart latency CMAP, p99 (us);restart-cmap;p99_us;median;lower;
restart latency CMAP, min (us);restart-cmap;min_us;median;lower;
restart latency, instance failing 1 ms after its start, median (us);restart-warm;median_us;median;lower;ratio<=1
restart latency, instance failing 1 ms after its start, CMAP, median (us);restart-warm-cmap;median_us;median;lower;ratio<=1
hang detection error, median (ms);hang;median_ms;median;lower;ours<1
hang detection error, max (ms);hang;max_ms;max;lower;ours<5
supervisor RSS, idle (KiB);supervisor;idle_rss_kib;median;lower;
supervisor CPU, idle (% of a CPU);supervisor;idle_cpu_pct;median;lower;
supervisor RSS, 1 kHz heartbeats (KiB);supervisor;busy_rss_kib;median;lower;
supervisor CPU, 1 kHz heartbeats (% of a CPU);supervisor;busy_cpu_pct;median;lower;
supervisor Pss, idle (KiB, smaps_rollup);supmem;idle_sup_pss_kib;median;lower;ratio<=1
supervisor Private_Dirty, idle (KiB);supmem;idle_sup_dirty_kib;median;lower;ratio<=1
supervisor Pss, after 1,000 restarts (KiB);supmem;restarted_sup_pss_kib;median;lower;ratio<=1
supervisor Private_Dirty, after 1,000 restarts (KiB);supmem;restarted_sup_dirty_kib;median;lower;ratio<=1
supervisor Pss, idle, CMAP (KiB);supmem-cmap;idle_sup_pss_kib;median;lower;
supervisor Private_Dirty, idle, CMAP (KiB);supmem-cmap;idle_sup_dirty_kib;median;lower;
helper processes (link, sink) Pss, idle, CMAP (KiB);supmem-cmap;idle_helpers_pss_kib;median;lower;
helper processes Private_Dirty, idle, CMAP (KiB);supmem-cmap;idle_helpers_dirty_kib;median;lower;
supervisor + helpers Pss, idle, CMAP (KiB);supmem-cmap;idle_sum_pss_kib;median;lower;ratio<=1
supervisor + helpers Private_Dirty, idle, CMAP (KiB);supmem-cmap;idle_sum_dirty_kib;median;lower;ratio<=1
supervisor + helpers Pss, after 1,000 restarts, CMAP (KiB);supmem-cmap;restarted_sum_pss_kib;median;lower;ratio<=1
supervisor + helpers Private_Dirty, after 1,000 restarts, CMAP (KiB);supmem-cmap;restarted_sum_dirty_kib;median;lower;ratio<=1'

table() {
    echo "| metric | ours | upstream | ratio ours/upstream | better | target | met |"
    echo "|---|---:|---:|---:|---|---|---|"
    local label metric key how better target o u ratio met
    while IFS=';' read -r label metric key how better target; do
        case " $metrics " in *" $metric "*) ;; *) continue ;; esac
        grep -q "^[a-z]* $metric " "$results" || continue
        if failed ours "$metric"; then o=FAIL; else o=$(agg ours "$metric" "$key" "$how"); fi
        if failed upstream "$metric"; then u=FAIL; else u=$(agg upstream "$metric" "$key" "$how"); fi
        ratio=$(awk -v o="$o" -v u="$u" 'BEGIN {
            if (o == "-" || u == "-" || o == "FAIL" || u == "FAIL") { print "-"; exit }
            if (u + 0 == 0) { print (o + 0 == 0 ? "1" : "inf"); exit }
            r = o / u; if (r >= 100) printf "%.0f", r; else if (r >= 0.01) printf "%.3f", r; else printf "%.2g", r }')
        met=$(awk -v o="$o" -v r="$ratio" -v t="$target" 'BEGIN {
            if (t == "") { print ""; exit }
            if (o == "FAIL" || o == "-") { print "no"; exit }
            if (t ~ /^ours</) { lim = substr(t, 6) + 0; print ((o + 0 < lim) ? "yes" : "no"); exit }
            if (r == "-") { print "?"; exit }
            lim = substr(t, 8) + 0
            if (t ~ /^ratio<=/) ok = (r == "inf") ? 0 : (r + 0 <= lim)
            else ok = (r == "inf") ? 1 : (r + 0 >= lim)
            print (ok ? "yes" : "no") }')
        target=${target/ratio<=/ratio <= }
        target=${target/ratio>=/ratio >= }
        target=${target/ours</ours < }
        label=${label//|/\\|}
        echo "| $label | $(fmt "$o") | $(fmt "$u") | $ratio | $better | $target | $met |"
    done <<<"$rows"
}

out=$(table)
{
    echo
    echo "Command: ${RUN_BENCH_COMMAND:-$0$(printf ' %q' "${orig_args[@]}")}"
    echo "Machine: $(nproc) CPUs, $(uname -r); upstream: $(readlink -f "$upstream/libsam.so.4") (libsam4 $(dpkg-query -W -f '${Version}' libsam4 2>/dev/null || echo "?"))"
    echo "Pinned: $([ "$pin" = 1 ] && echo "yes, CPU $cpu (sam-bench and corosync)" || echo no)." \
        "$pairs A/B pair(s) per metric, medians of each side (hang max: max over all runs)." \
        "Load average at start: $load_start, at end: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "$out"
    if grep -q ' wd_reports ' "$results"; then
        echo
        echo "corosync watchdog 'too late'/'failed!' log lines during CMAP runs: ours $(awk '$1=="ours" && $3=="wd_reports"{s+=$4} END{print s+0}' "$results"), upstream $(awk '$1=="upstream" && $3=="wd_reports"{s+=$4} END{print s+0}' "$results")."
    fi
    if grep -q ' error ' "$results"; then
        echo
        echo "Some runs failed; their error lines are in $log."
    fi
} | tee -a "$log"

# A failed run makes the whole benchmark fail; a missed target does not.
if grep -q ' error ' "$results"; then
    exit 1
fi
exit 0
