/* SPDX-License-Identifier: BSD-3-Clause */
/* faultlib.h - helpers shared by the fault-injection tests.
 *
 * Every scenario runs a real supervisor: the test forks a child that calls
 * sam_initialize() and sam_register(), so the child becomes the supervisor
 * and its child the instance. Instances report to the test through an
 * inherited pipe (fixed-size records), and the test waits for each report
 * with a deadline: nothing here sleeps to hide a race.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/proc.h"

#define FL_FAIL(...) fl_fail(__FILE__, __LINE__, __VA_ARGS__)
#define FL_CHECK(cond, ...)                                                                                            \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            FL_FAIL("check failed: " #cond ": " __VA_ARGS__);                                                          \
    } while (0)

void fl_fail(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
void fl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A report from an instance (or supervisor) to the test. */
struct fl_report {
    int32_t kind;
    int32_t pid;
    int64_t a, b;
};

/* The report pipe: created by the test before forking, inherited by all. */
void fl_reports_open(void);
void fl_report(int32_t kind, int64_t a, int64_t b); /* from any process */
/* Waits for the next report; returns 0 at the deadline. */
int fl_report_wait(struct fl_report *out, uint64_t timeout_ms);
/* Waits for a report of `kind`, failing the test at the deadline. Others are skipped. */
struct fl_report fl_report_expect(int32_t kind, uint64_t timeout_ms);

/* Process helpers; the clock, "gone" (a zombie counts) and descriptor counts
 * are tests/common/proc.h's, shared with the integration harness. */
int fl_wait_gone(pid_t pid, uint64_t timeout_ms);
/* waitpid() with a deadline: 1 and the status when the child ended, 0 at the deadline. */
int fl_wait_child(pid_t pid, uint64_t timeout_ms, int *status);
/* Kills and reaps a child, for clean-up on every path. */
void fl_reap(pid_t pid);
long fl_rss_kib(pid_t pid);
/* Number of children of `pid` (all its threads), from /proc. */
int fl_count_children(pid_t pid);

/* The test's own fork of a supervisor-to-be; the child runs `body` and exits with its result. */
pid_t fl_fork(int (*body)(void *), void *arg);

/* Redirects this process's stderr to a fresh file (for SAM_LOG_STDERR logs). */
void fl_stderr_to(const char *path);
/* How many lines of `path` contain `needle`. */
int fl_file_count(const char *path, const char *needle);
/* Waits until `path` holds at least `count` lines containing `needle`. */
int fl_file_wait(const char *path, const char *needle, int count, uint64_t timeout_ms);

/* A deterministic pattern: word i of a buffer with seed s is (s << 32) ^ i. */
void fl_fill(void *buf, size_t size, uint32_t seed);
/* Returns 1 if the whole buffer is the pattern of `seed`. */
int fl_is_pattern(const void *buf, size_t size, uint32_t seed);
