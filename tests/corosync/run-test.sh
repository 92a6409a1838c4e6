#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# run-test.sh [INTERPRETER...] TEST: automake's LOG_COMPILER in every test
# directory that has tests next to a private corosync ($(run_test), from
# tests/common/corosync-env.am). Such a test says so by its name alone: it
# ends in "-corosync", before any extension (integ-cmap-corosync,
# quorum-corosync.sh). It then runs through with-corosync.sh (root only;
# skipped with 77 otherwise); any other test runs as is. The test is the
# last argument, so a directory may name an interpreter before it
# (AM_SH_LOG_FLAGS = $(SHELL)).
for last in "$@"; do :; done
case ${last##*/} in
*-corosync | *-corosync.*)
    exec "$(dirname "$0")/with-corosync.sh" "$@"
    ;;
*)
    exec "$@"
    ;;
esac
