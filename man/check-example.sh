#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Compile the example program printed in sam_overview(3) against the
# project's header, so the manual never shows code that does not build.
# Environment (set by Makefile.am): CC, top_srcdir, srcdir.
set -u
page="${srcdir:-.}/sam_overview.3"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

# The first .EX/.EE block of the page is the program; undo the roff escapes
# it uses (\e for a backslash, \- for a minus sign).
sed -n '/^\.EX$/,/^\.EE$/{/^\.E[XE]$/d;p;}' "$page" | awk 'NR==1,/^}$/' |
    sed -e 's/\\-/-/g' -e 's/\\e/\\/g' > "$tmp/example.c"

if ! grep -q 'sam_register' "$tmp/example.c"; then
    echo "FAIL: no example program found in $page"
    exit 1
fi
# shellcheck disable=SC2086
if ${CC:-cc} -Wall -Wextra -Werror -I"${top_srcdir:-..}/include" \
        -c -o "$tmp/example.o" "$tmp/example.c"; then
    echo "PASS: the example in sam_overview(3) compiles"
    exit 0
fi
echo "FAIL: the example in sam_overview(3) does not compile:"
cat -n "$tmp/example.c"
exit 1
