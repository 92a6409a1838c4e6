# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=sh
# proc.sh - the shell tests' side of proc.h (sourced): the clock in
# milliseconds, and whether a process is gone, a zombie counting as gone.

# CLOCK_REALTIME in ms: only differences are used, over seconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# gone PID: true when PID no longer runs (no such process, or a zombie that
# its reaper, PID 1 of a namespace or a subreaper, has not reaped yet).
# Builtins only: a caller sweeping /proc has no child of its own to trip over.
gone() {
    local stat state
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
    state=${stat##*) }
    state=${state%% *}
    [ "$state" = Z ] || [ "$state" = X ]
}
