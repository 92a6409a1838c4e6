#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# abi-core.sh - a program built against corosync's libsam runs unchanged on
# ours for the QUIT and RESTART policies (no corosync needed).
. "$(dirname "$0")/abi-lib.sh"

check_linked_against_system

# Without LD_LIBRARY_PATH the system library is the one mapped: the maps
# check below can tell the two apart.
env -u LD_LIBRARY_PATH "$client" none >"$out" 2>&1
mapped=$(sed -n 's/^lib //p' "$out" | head -n 1)
[ -n "$mapped" ] && [ "$(readlink -f "$mapped")" = "$(readlink -f "$system_lib")" ] ||
    fail "without LD_LIBRARY_PATH '$mapped' was mapped, not the system's $system_lib"

# QUIT: the instance exits 3 after sam_start; the supervisor exits 3.
run_client quit
check_ours_loaded
[ "$status" -eq 3 ] || fail "quit: exit status $status, expected 3"
check_status_codes 10
expect_line '^instance iid=1$'
expect_no_line '^instance iid=2'
echo "ok quit"

# RESTART: ids 1..3, data handed on, warn then kill, exit 0 at the end.
run_client restart
check_ours_loaded
[ "$status" -eq 0 ] || fail "restart: exit status $status, expected 0"
check_status_codes 12
expect_line '^instance iid=1 data=abi-0$'
expect_line '^instance iid=2 data=abi-1$'
expect_line '^instance iid=3 data=abi-2$'
expect_line '^warned iid=2$'
expect_no_line '^not killed'
echo "ok restart"
