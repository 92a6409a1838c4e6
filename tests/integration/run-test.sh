#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# run-test.sh TEST: automake's LOG_COMPILER for tests/integration.
# A test whose name ends in "-corosync" or "-corosync.sh" runs next to a
# private corosync (with-corosync.sh: root only, exit 77 otherwise); any
# other test runs as is.
case $1 in
*-corosync | *-corosync.sh)
    exec "${WITH_COROSYNC:?WITH_COROSYNC is not set}" "$@"
    ;;
*)
    exec "$@"
    ;;
esac
