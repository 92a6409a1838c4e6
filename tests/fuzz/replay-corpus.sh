#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Runs every seed of the fuzzer's corpus through the target, built with the
# ordinary compiler: the corpus stays checked where clang is not installed.
set -u
src=${FUZZ_SRCDIR:-$(dirname "$0")}
build=${FUZZ_BUILDDIR:-.}
exec "$build/fuzz-replay" "$src/corpus"
