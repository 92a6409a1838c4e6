/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * notify-socket.h - the sending side of a notify socket, for the test
 * programs that play a daemon (notify-tool, notify-intruder, socket-tool):
 * the address a name stands for, "\n" escapes, one datagram with descriptors.
 * No libsystemd, so that the tests can send what it never would.
 */
#pragma once

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* The most descriptors notify_send() attaches to one datagram. */
#define NOTIFY_MAX_FDS 64

/* Fills *addr for NAME, a path or an @abstract name, and returns its
 * length; 0 when NAME is empty or does not fit in sun_path. */
socklen_t notify_address(const char *name, struct sockaddr_un *addr);

/* Copies IN to OUT with each two-character "\n" turned into a newline and
 * returns the length written (no terminator): at most strlen(IN). */
size_t notify_unescape(const char *in, char *out);

/* One datagram of SIZE bytes to ADDR through SOCK, carrying COUNT
 * descriptors (at most NOTIFY_MAX_FDS); returns what sendmsg() returns. */
ssize_t notify_send(int sock, const struct sockaddr_un *addr, socklen_t addr_len, const void *data, size_t size,
                    const int *fds, size_t count);
