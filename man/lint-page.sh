#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Lint one manual page: it must format without a single warning, both with
# groff (-ww: all warnings) and with mandoc's linter, and man -l must render
# it. Used as the LOG_COMPILER of the man page tests (one test per page):
# the argument is either a page or a stub PAGE.lint (see Makefile.am) whose
# page lies in $srcdir.
page="$1"
case "$page" in
*.lint) page="${srcdir:-.}/$(basename "$page" .lint)" ;;
esac
name=$(basename "$page")
status=0
checked=""

if command -v groff >/dev/null 2>&1; then
    checked="$checked groff"
    out=$(LC_ALL=C.UTF-8 groff -ww -z -man "$page" 2>&1)
    if [ -n "$out" ]; then
        printf '%s: groff warnings:\n%s\n' "$name" "$out"
        status=1
    fi
fi

if command -v mandoc >/dev/null 2>&1; then
    checked="$checked mandoc"
    # -W style reports even style hints; any message at all fails the page.
    out=$(mandoc -T lint -W style "$page" 2>&1)
    rc=$?
    if [ -n "$out" ] || [ $rc -ne 0 ]; then
        printf '%s: mandoc lint (exit %s):\n%s\n' "$name" "$rc" "$out"
        status=1
    fi
fi

if command -v man >/dev/null 2>&1 && man --help 2>&1 | grep -q -- --warnings; then
    checked="$checked man"
    out=$(MANWIDTH=80 man --warnings=w -l -P cat "$page" 2>&1 >/dev/null)
    if [ -n "$out" ]; then
        printf '%s: man -l warnings:\n%s\n' "$name" "$out"
        status=1
    fi
fi

if [ -z "$checked" ]; then
    echo "$name: neither groff, mandoc nor man is installed; skipped"
    exit 77
fi
[ $status -eq 0 ] && echo "$name: clean ($checked )"
exit $status
