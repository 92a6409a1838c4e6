/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sam-cluster-probe: a libsam client for the three-node cluster tests.
 *
 * Usage: sam-cluster-probe EVENT_FILE [INTERVAL_MS]
 *
 * Initializes libsam with QUORUM_RESTART | CMAP, registers, starts and then
 * sends a health check four times per interval, forever.  Every instance
 * appends one line per event to EVENT_FILE, so a test can follow kills and
 * restarts from outside:
 *
 *   register iid=N pid=P supervisor=S ms=T   instance N exists (before sam_start)
 *   start iid=N pid=P supervisor=S ms=T      sam_start returned: quorate, running
 *   warn iid=N pid=P supervisor=S ms=T       the warn signal (SIGTERM) arrived
 *   error what=CALL err=E pid=P ms=T         a libsam call failed
 *
 * T is CLOCK_REALTIME in milliseconds (the same clock as `date +%s%3N`).
 * The instance ignores the warn signal apart from recording it, so the
 * supervisor's kill after another interval is what ends it.  Each line is
 * written with one write() to an O_APPEND file: lines never interleave.
 */
#define _GNU_SOURCE
#include <corosync/sam.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int event_fd = -1;
static unsigned int instance_id;

/* Formatting by hand: append_event() also runs in a signal handler, where
 * snprintf() is not async-signal-safe. */
static size_t put_str(char *buf, size_t pos, size_t cap, const char *s) {
    while (*s != '\0' && pos + 1 < cap) {
        buf[pos++] = *s++;
    }
    return pos;
}

static size_t put_uint(char *buf, size_t pos, size_t cap, uint64_t v) {
    char digits[24];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0 && pos + 1 < cap) {
        buf[pos++] = digits[--n];
    }
    return pos;
}

static uint64_t realtime_ms(void) {
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void append_event(const char *event) {
    char line[160];
    size_t pos = 0;
    int saved_errno = errno;

    pos = put_str(line, pos, sizeof(line), event);
    pos = put_str(line, pos, sizeof(line), " iid=");
    pos = put_uint(line, pos, sizeof(line), instance_id);
    pos = put_str(line, pos, sizeof(line), " pid=");
    pos = put_uint(line, pos, sizeof(line), (uint64_t)getpid());
    pos = put_str(line, pos, sizeof(line), " supervisor=");
    pos = put_uint(line, pos, sizeof(line), (uint64_t)getppid());
    pos = put_str(line, pos, sizeof(line), " ms=");
    pos = put_uint(line, pos, sizeof(line), realtime_ms());
    line[pos++] = '\n';
    /* A short write of a line this small to a regular file does not happen;
     * if it did, the test would see a malformed line and fail loudly. */
    if (write(event_fd, line, pos) < 0) {
        _exit(90);
    }
    errno = saved_errno;
}

static void on_warn_signal(int sig) {
    (void)sig;
    append_event("warn");
}

static int report_error(const char *what, cs_error_t err) {
    char line[160];
    int len = snprintf(line, sizeof(line), "error what=%s err=%d pid=%d ms=%llu\n", what, (int)err, (int)getpid(),
                       (unsigned long long)realtime_ms());

    if (len > 0 && write(event_fd, line, (size_t)len) < 0) {
        perror("write");
    }
    fprintf(stderr, "sam-cluster-probe: %s failed: %d\n", what, (int)err);
    return 1;
}

int main(int argc, char **argv) {
    int interval_ms = 1000;
    struct sigaction sa;
    struct timespec pause;
    cs_error_t err;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s EVENT_FILE [INTERVAL_MS]\n", argv[0]);
        return 2;
    }
    if (argc == 3) {
        interval_ms = atoi(argv[2]);
        if (interval_ms < 4) {
            fprintf(stderr, "%s: INTERVAL_MS must be at least 4\n", argv[0]);
            return 2;
        }
    }
    event_fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (event_fd < 0) {
        perror(argv[1]);
        return 2;
    }

    err = sam_initialize(interval_ms, SAM_RECOVERY_POLICY_QUORUM_RESTART | SAM_RECOVERY_POLICY_CMAP);
    if (err != CS_OK) {
        return report_error("sam_initialize", err);
    }
    err = sam_register(&instance_id);
    if (err != CS_OK) {
        return report_error("sam_register", err);
    }

    /* From here on: an instance. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_warn_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);

    append_event("register");
    err = sam_start();
    if (err != CS_OK) {
        return report_error("sam_start", err);
    }
    append_event("start");

    pause.tv_sec = interval_ms / 4 / 1000;
    pause.tv_nsec = (long)(interval_ms / 4 % 1000) * 1000000L;
    for (;;) {
        err = sam_hc_send();
        if (err != CS_OK) {
            return report_error("sam_hc_send", err);
        }
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
        }
        pause.tv_sec = interval_ms / 4 / 1000;
        pause.tv_nsec = (long)(interval_ms / 4 % 1000) * 1000000L;
    }
}
