/* SPDX-License-Identifier: BSD-3-Clause */
/* faultlib.c - helpers shared by the fault-injection tests. */
#define _GNU_SOURCE
#include "faultlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int report_rd = -1, report_wr = -1;
static pid_t test_pid;

void fl_fail(const char *file, int line, const char *fmt, ...) {
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAIL [pid %d] %s:%d: %s\n", (int)getpid(), file, line, text);
    fflush(stderr);
    /* In a helper process, _exit: no atexit handler of the test runs twice. */
    if (test_pid != 0 && getpid() != test_pid)
        _exit(98);
    exit(1);
}

void fl_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void fl_reports_open(void) {
    int p[2];
    test_pid = getpid();
    /* Not close-on-exec, not O_CLOEXEC: every descendant may report. Records
     * are smaller than PIPE_BUF, so writes from many processes never mix. */
    if (pipe(p) != 0)
        FL_FAIL("pipe: %s", strerror(errno));
    report_rd = p[0];
    report_wr = p[1];
}

void fl_report(int32_t kind, int64_t a, int64_t b) {
    struct fl_report r = {kind, (int32_t)getpid(), a, b};
    ssize_t n;
    do
        n = write(report_wr, &r, sizeof r);
    while (n < 0 && errno == EINTR);
}

int fl_report_wait(struct fl_report *out, uint64_t timeout_ms) {
    const uint64_t end = tp_now_ms() + timeout_ms;
    for (;;) {
        const uint64_t now = tp_now_ms();
        if (now >= end)
            return 0;
        struct pollfd p = {report_rd, POLLIN, 0};
        const int n = poll(&p, 1, (int)(end - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        ssize_t got = read(report_rd, out, sizeof *out);
        if (got == (ssize_t)sizeof *out)
            return 1;
        if (got < 0 && errno == EINTR)
            continue;
        FL_FAIL("short read on the report pipe (%zd)", got);
    }
}

struct fl_report fl_report_expect(int32_t kind, uint64_t timeout_ms) {
    const uint64_t end = tp_now_ms() + timeout_ms;
    struct fl_report r;
    for (;;) {
        const uint64_t now = tp_now_ms();
        if (now >= end || !fl_report_wait(&r, end - now))
            FL_FAIL("no report of kind %d within %llu ms", kind, (unsigned long long)timeout_ms);
        if (r.kind == kind)
            return r;
    }
}

int fl_wait_gone(pid_t pid, uint64_t timeout_ms) {
    const uint64_t end = tp_now_ms() + timeout_ms;
    while (!tp_process_gone(pid)) {
        if (tp_now_ms() >= end)
            return 0;
        struct timespec ts = {0, 2 * 1000 * 1000}; /* a poll step, not a wait for an outcome */
        nanosleep(&ts, NULL);
    }
    return 1;
}

int fl_wait_child(pid_t pid, uint64_t timeout_ms, int *status) {
    const uint64_t end = tp_now_ms() + timeout_ms;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (status != NULL)
                *status = st;
            return 1;
        }
        if (r < 0 && errno != EINTR)
            FL_FAIL("waitpid(%d): %s", (int)pid, strerror(errno));
        if (tp_now_ms() >= end)
            return 0;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void fl_reap(pid_t pid) {
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
}

long fl_rss_kib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int fl_count_children(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char cpath[sizeof "/proc//task//children" + 12 + sizeof e->d_name], buf[4096];
        snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", (int)pid, e->d_name);
        int fd = open(cpath, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t got = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (got <= 0)
            continue;
        buf[got] = '\0';
        for (char *tok = strtok(buf, " \n"); tok != NULL; tok = strtok(NULL, " \n"))
            if (!tp_process_gone((pid_t)atoi(tok)))
                ++n;
    }
    closedir(d);
    return n;
}

pid_t fl_fork(int (*body)(void *), void *arg) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        FL_FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(body(arg));
    return pid;
}

void fl_stderr_to(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        FL_FAIL("cannot redirect stderr to %s", path);
    close(fd);
}

int fl_file_count(const char *path, const char *needle) {
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, needle) != NULL)
            ++n;
    fclose(f);
    return n;
}

int fl_file_wait(const char *path, const char *needle, int count, uint64_t timeout_ms) {
    const uint64_t end = tp_now_ms() + timeout_ms;
    while (fl_file_count(path, needle) < count) {
        if (tp_now_ms() >= end)
            return 0;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 1;
}

void fl_fill(void *buf, size_t size, uint32_t seed) {
    uint64_t *w = buf;
    const size_t words = size / 8;
    for (size_t i = 0; i < words; ++i)
        w[i] = ((uint64_t)seed << 32) ^ i;
    for (size_t i = words * 8; i < size; ++i)
        ((unsigned char *)buf)[i] = (unsigned char)seed;
}

int fl_is_pattern(const void *buf, size_t size, uint32_t seed) {
    const uint64_t *w = buf;
    const size_t words = size / 8;
    for (size_t i = 0; i < words; ++i)
        if (w[i] != (((uint64_t)seed << 32) ^ i))
            return 0;
    for (size_t i = words * 8; i < size; ++i)
        if (((const unsigned char *)buf)[i] != (unsigned char)seed)
            return 0;
    return 1;
}
