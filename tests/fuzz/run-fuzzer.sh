#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Builds the supervisor-input fuzzer with clang's libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer, and runs it for a bounded time from the
# seed corpus. Exit 77 (skipped) when clang++ or libFuzzer is not available;
# any crash, sanitizer report, broken invariant, leak or timeout fails.
#
# Knobs: FUZZ_CXX (clang++), FUZZ_SECONDS (20), FUZZ_JOBS (1).
set -u
src=${FUZZ_SRCDIR:-$(cd "$(dirname "$0")" && pwd)}
top=${FUZZ_TOP_SRCDIR:-$src/../..}
build=${FUZZ_BUILDDIR:-$(pwd)}
cxx=${FUZZ_CXX:-clang++}
seconds=${FUZZ_SECONDS:-20}

if ! command -v "$cxx" >/dev/null 2>&1; then
    echo "run-fuzzer: SKIP: $cxx not found (scripts/install-deps.sh installs clang)"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sam-fuzz.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT INT TERM

# libFuzzer is a separate package on Debian (libclang-rt-*-dev): probe it.
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char *, unsigned long) { return 0; }\n' >"$work/probe.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$work/probe.cpp" -o "$work/probe" >"$work/probe.log" 2>&1; then
    echo "run-fuzzer: SKIP: $cxx cannot link -fsanitize=fuzzer,address,undefined:"
    sed 's/^/  /' "$work/probe.log" | head -5
    exit 77
fi

bin=$build/fuzz-supervisor-input
lib=$top/src/lib
echo "run-fuzzer: building $bin"
# The library files the supervisor uses to take input apart and decide on
# it, linked directly.
if ! "$cxx" -std=c++17 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$top/include" -I"$top/src" -I"$lib" \
    "$src/fuzz_supervisor_input.cpp" \
    "$lib/wire.cpp" "$lib/health.cpp" "$lib/backoff.cpp" "$lib/datastore.cpp" "$lib/data_slot.cpp" "$lib/channel.cpp" \
    "$lib/supervisor_core.cpp" "$lib/supervisor_core_types.cpp" \
    "$top/src/common/parse.cpp" "$top/src/common/signals.cpp" "$top/src/common/fd_passing.cpp" \
    -o "$bin"; then
    echo "run-fuzzer: FAIL: the fuzz target does not build"
    exit 99
fi

# New inputs go to a scratch directory: the checked-in corpus is only read.
mkdir -p "$work/new" "$build/fuzz-artifacts"
echo "run-fuzzer: fuzzing for ${seconds}s from $src/corpus"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
"$bin" -max_total_time="$seconds" -max_len=40000 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/" \
    "$work/new" "$src/corpus" >"$work/fuzz.log" 2>&1
rc=$?
grep -E '^(INFO: (seed|Loaded)|#[0-9]+ +DONE|Done|stat::)' "$work/fuzz.log"
if [ $rc -ne 0 ]; then
    echo "run-fuzzer: FAIL: libFuzzer exited $rc; the last lines of its log:"
    tail -40 "$work/fuzz.log"
    echo "run-fuzzer: reproducers (if any) in $build/fuzz-artifacts/:"
    ls -l "$build/fuzz-artifacts/"
    exit 1
fi
echo "run-fuzzer: PASS: no finding; $(find "$work/new" -type f | wc -l) new inputs (discarded)"
exit 0
