#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# abi-check.sh - the binary interface of the built libsam.so.4.4.0: soname
# libsam.so.4, exactly the 12 public sam_* functions exported, each at symbol
# version COROSYNC_SAM_1.0, and no other defined dynamic symbol except that
# version's own definition. Also cross-checks with objdump and, when the
# host has corosync's libsam, that both export the same function names.
#
#   abi-check.sh [LIBRARY]   default: $top_builddir/src/lib/.libs/libsam.so.4.4.0
set -u

fail() { echo "FAIL: $*"; exit 1; }
lib="${1:-${top_builddir:-../..}/src/lib/.libs/libsam.so.4.4.0}"
test -f "$lib" || fail "$lib not found (build the library first)"
for tool in readelf objdump; do
    command -v $tool >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done
echo "checking $lib"

expected="sam_data_getsize sam_data_restore sam_data_store sam_finalize
sam_hc_callback_register sam_hc_send sam_initialize sam_mark_failed
sam_register sam_start sam_stop sam_warn_signal_set"
# shellcheck disable=SC2086 # one name a line
expected=$(printf '%s\n' $expected | sort)
status=0
bad() { echo "FAIL: $*"; status=1; }

# ---- soname ------------------------------------------------------------
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
test "$soname" = libsam.so.4 && echo "ok   soname libsam.so.4" || bad "soname is '$soname', expected libsam.so.4"

# ---- defined dynamic symbols -------------------------------------------
# readelf -W --dyn-syms: Num: Value Size Type Bind Vis Ndx Name
defined=$(readelf -W --dyn-syms "$lib" | awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" { print $4, $5, $6, $7, $8 }')
funcs=$(printf '%s\n' "$defined" | awk '$1 == "FUNC" && $2 == "GLOBAL" && $3 == "DEFAULT" && $5 ~ /^sam_[a-z_]+@@COROSYNC_SAM_1\.0$/ { sub(/@@.*/, "", $5); print $5 }' | sort)
if test "$funcs" = "$expected"; then
    echo "ok   the 12 sam_* functions are exported, each as NAME@@COROSYNC_SAM_1.0"
else
    bad "exported functions at COROSYNC_SAM_1.0 differ from the 12 expected:"
    printf '%s\n' "$expected" > "${TMPDIR:-/tmp}/abi-expected.$$"
    printf '%s\n' "$funcs" | diff "${TMPDIR:-/tmp}/abi-expected.$$" - | sed 's/^/    /'
    rm -f "${TMPDIR:-/tmp}/abi-expected.$$"
fi
others=$(printf '%s\n' "$defined" | awk '
    $1 == "FUNC" && $2 == "GLOBAL" && $3 == "DEFAULT" && $5 ~ /^sam_[a-z_]+@@COROSYNC_SAM_1\.0$/ { next }
    $1 == "OBJECT" && $4 == "ABS" && ($5 == "COROSYNC_SAM_1.0" || $5 == "COROSYNC_SAM_1.0@@COROSYNC_SAM_1.0") { next }
    NF { print "    " $0 }')
if test -z "$others"; then
    echo "ok   no other defined dynamic symbol (besides the COROSYNC_SAM_1.0 definition)"
else
    bad "other symbols are exported:"
    printf '%s\n' "$others"
fi

# ---- version definitions -------------------------------------------------
verdefs=$(readelf -V "$lib" | sed -n '/Version definition section/,/^$/p' | sed -n 's/.*Name: \([^ ]*\).*/\1/p' | sort | tr '\n' ' ')
test "$verdefs" = "COROSYNC_SAM_1.0 libsam.so.4 " && echo "ok   version definitions: libsam.so.4 (base), COROSYNC_SAM_1.0" ||
    bad "version definitions are '$verdefs', expected libsam.so.4 and COROSYNC_SAM_1.0"

# ---- objdump agrees --------------------------------------------------------
ofuncs=$(objdump -T "$lib" | awk '$NF ~ /^sam_/ && $0 !~ /\*UND\*/ { print $(NF-1), $NF }' | sort)
oexp=$(printf '%s\n' "$expected" | sed 's/^/COROSYNC_SAM_1.0 /')
test "$ofuncs" = "$oexp" && echo "ok   objdump -T agrees" || { bad "objdump -T shows:"; printf '%s\n' "$ofuncs" | sed 's/^/    /'; }

# ---- no executable stack, no text relocations ------------------------------
readelf -W -l "$lib" | grep GNU_STACK | grep -q 'RWE' && bad "the library asks for an executable stack"
readelf -d "$lib" | grep -q TEXTREL && bad "the library has text relocations"

# ---- same names as corosync's own libsam, when the host has it -------------
sys=$(ldconfig -p 2>/dev/null | awk '$1 == "libsam.so.4" { print $NF; exit }')
if test -n "$sys" && test -f "$sys"; then
    sysfuncs=$(readelf -W --dyn-syms "$sys" | awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" && $4 == "FUNC" { sub(/@.*/, "", $8); print $8 }' | sort)
    test "$sysfuncs" = "$expected" && echo "ok   same function names as $sys" ||
        bad "$sys exports other function names: $(printf '%s' "$sysfuncs" | tr '\n' ' ')"
fi

test $status -eq 0 && echo PASS
exit $status
