/* SPDX-License-Identifier: BSD-3-Clause */
/* proc.h - what every test asks about processes and time, written once in C
 * so that the C fault programs (tests/faults) and the C++ integration
 * harness (tests/integration) share it; proc.sh is the same for the shell
 * tests. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CLOCK_MONOTONIC, in nanoseconds and in milliseconds. */
uint64_t tp_now_ns(void);
uint64_t tp_now_ms(void);

/* The state letter of /proc/PID/stat ('R', 'S', 'Z', ...); 0 when there is
 * no such process. Reads with open/read only, so it may run in a child
 * forked from a threaded process. */
char tp_process_state(pid_t pid);

/* 1 when `pid` no longer runs: it does not exist, or is a zombie (or dead,
 * 'X'). A zombie counts as gone because whoever must reap it (PID 1 of a
 * namespace, a subreaper) may do so late; the process itself is over. */
int tp_process_gone(pid_t pid);

/* How many descriptors `pid` has open (/proc/PID/fd); -1 if unreadable. */
int tp_count_fds(pid_t pid);

#ifdef __cplusplus
}
#endif
