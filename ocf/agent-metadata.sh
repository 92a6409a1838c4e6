#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# agent-metadata.sh: the agent's meta-data is valid against the OCF resource
# agent DTD that resource-agents installs, advertises exactly the
# parameters the agent reads, and the agent answers the API's fixed cases
# (usage, an unknown action) with the codes the API gives them.
set -u
agent=${OCF_AGENT:-./service}
dtd=${OCF_DTD:-/usr/share/resource-agents/ra-api-1.dtd}
src=${srcdir:-.}/sam-service.in
fail() { echo "FAIL: $*"; exit 1; }

command -v xmllint >/dev/null 2>&1 || { echo "SKIP: xmllint not installed (libxml2-utils)"; exit 77; }
[ -r "$dtd" ] || { echo "SKIP: no OCF DTD at $dtd (install resource-agents)"; exit 77; }
[ -x "$agent" ] || fail "$agent not built"

tmp=$(mktemp) || exit 99
trap 'rm -f "$tmp"' EXIT
"$agent" meta-data >"$tmp" || fail "meta-data exited with status $?"
(cd "$(dirname "$dtd")" && xmllint --noout --dtdvalid "$dtd" -) <"$tmp" || fail "meta-data is not valid against $dtd"
# As ocf-tester checks it: the DOCTYPE's own DTD, found next to the DTD.
(cd "$(dirname "$dtd")" && xmllint --noout --valid -) <"$tmp" || fail "meta-data does not validate through its DOCTYPE"
echo "ok   meta-data is valid against $dtd (--dtdvalid and its DOCTYPE)"

advertised=$(xmllint --xpath '//parameter/@name' "$tmp" | sed 's/ *name="\([^"]*\)"/\1\n/g' | sed '/^$/d' | sort -u)
read_by_agent=$(grep -o 'OCF_RESKEY_[a-z_]*' "$src" | sed 's/^OCF_RESKEY_//' | sort -u)
# words TEXT: its words on one line, one space apart
words() { printf '%s\n' "$1" | tr -s '[:space:]' ' ' | sed 's/^ //; s/ $//'; }
[ "$(words "$advertised")" = "$(words "$read_by_agent")" ] ||
    fail "parameters in meta-data ($(words "$advertised")) differ from those the agent reads ($(words "$read_by_agent"))"
echo "ok   meta-data lists every parameter the agent reads: $(words "$advertised")"

for a in start stop monitor meta-data validate-all; do
    xmllint --xpath "//action[@name='$a']" "$tmp" >/dev/null 2>&1 || fail "meta-data lacks the $a action"
done
xmllint --xpath "//action[@name='monitor'][@depth='10']" "$tmp" >/dev/null 2>&1 ||
    fail "meta-data does not advertise the deep monitor (depth 10)"
echo "ok   actions start stop monitor (depth 0 and 10) meta-data validate-all advertised"

"$agent" usage >/dev/null || fail "usage exited with $?"
"$agent" >/dev/null 2>&1
[ $? -eq 2 ] || fail "no action: expected OCF_ERR_ARGS (2)"
"$agent" promote >/dev/null 2>&1
[ $? -eq 3 ] || fail "unknown action: expected OCF_ERR_UNIMPLEMENTED (3)"
echo "ok   no action -> 2, unknown action -> 3"
echo PASS
