#!/bin/sh
# check-debs.sh - placeholder, being written.
echo "FAIL: check-debs.sh is not written yet"
exit 1
