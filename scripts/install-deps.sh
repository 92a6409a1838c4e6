#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Install, by Debian package name, everything the build, the tests, the demo
# and the benchmark need on a fresh Debian 12 machine. Safe to run again.
set -eu
PACKAGES="build-essential autoconf automake libtool pkg-config
  corosync libcmap-dev libquorum-dev libqb-dev libcorosync-common-dev
  libsam4 libsam-dev libcpputest-dev libsystemd-dev
  iproute2 util-linux procps psmisc valgrind groff-base mandoc python3
  libasan8 libubsan1 libtsan2 clang libclang-rt-14-dev
  clang-format clang-tidy shellcheck
  debhelper dpkg-dev devscripts lintian fakeroot
  pacemaker pacemaker-cli-utils resource-agents libxml2-utils"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
fi
# Debian starts corosync (and pacemaker, which needs it) when the packages
# are installed; a running system corosync or pacemaker is never needed
# (tests and the demos start private ones in namespaces), so stop them only
# if we can, pacemaker first, and never fail because of it.
if [ -d /run/systemd/system ]; then
    systemctl stop pacemaker >/dev/null 2>&1 || true
    if command -v corosync >/dev/null 2>&1 && [ -f /run/corosync.pid ]; then
        systemctl stop corosync >/dev/null 2>&1 || true
    fi
fi
