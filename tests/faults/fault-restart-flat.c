/* SPDX-License-Identifier: BSD-3-Clause */
/* fault-restart-flat.c - 1,000 restarts (SAM_RESTART_DELAY_MS=0; each
 * instance exits 1 right after sam_start()): the supervisor's descriptor count
 * and resident memory must be the same at restart 1,000 as at restart 100
 * (descriptors equal, VmRSS growth under 1 MiB). FAULT_RESTARTS overrides the
 * count; FAULT_QUICK=1 (set in sanitizer builds) makes it 300 and drops the
 * RSS verdict there, since ASan's quarantine keeps freed memory resident.
 */
#define _GNU_SOURCE
#include <corosync/sam.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "faultlib.h"

enum { R_UP = 1 };

static int go_pipe[2];
static unsigned total = 1000;
static const unsigned first_sample = 100;

static int supervisor(void *unused) {
    (void)unused;
    setenv("SAM_RESTART_DELAY_MS", "0", 1);
    close(go_pipe[1]);
    /* An interval, so that every instance also arms and disarms the health timer. */
    if (sam_initialize(10000, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 91;
    fl_report(R_UP, iid, 0);
    if (iid == first_sample || iid == total) {
        char go;
        alarm(30);
        if (read(go_pipe[0], &go, 1) != 1)
            FL_FAIL("no go from the test");
    }
    if (iid == total)
        exit(0); /* not started: the supervisor exits with us */
    if (sam_start() != CS_OK)
        FL_FAIL("sam_start failed in instance %u", iid);
    exit(1);
}

/* The supervisor's descriptor count once it is idle. Right after a restart
 * it may briefly hold one more (the instance's end of the socket pair until
 * the fork is done, syslog's socket while it writes the restart's queued log
 * lines): the fewest seen over `settle_ms` is the count at rest, and the
 * sampling stops early once `want` (>= 0) is seen. A descriptor leaked for
 * good never goes away, so the verdict below still catches it. */
static int fds_at_rest(pid_t sup, int want, unsigned settle_ms) {
    const uint64_t end = tp_now_ms() + settle_ms;
    int fewest = tp_count_fds(sup);
    while (fewest != want && tp_now_ms() < end) {
        const struct timespec step = {0, 2 * 1000 * 1000};
        nanosleep(&step, NULL);
        const int n = tp_count_fds(sup);
        if (n >= 0 && (fewest < 0 || n < fewest))
            fewest = n;
    }
    return fewest;
}

int main(void) {
    /* Sanitizer builds: fewer restarts, and no RSS verdict, because ASan's
     * quarantine keeps freed memory resident on purpose (descriptors still count). */
    const int sanitized = getenv("FAULT_SANITIZER") != NULL && *getenv("FAULT_SANITIZER") != '\0';
    if (getenv("FAULT_QUICK") != NULL)
        total = 300;
    if (getenv("FAULT_RESTARTS") != NULL)
        total = (unsigned)atoi(getenv("FAULT_RESTARTS"));
    if (total <= first_sample)
        FL_FAIL("FAULT_RESTARTS must be above %u", first_sample);
    fl_reports_open();
    if (pipe(go_pipe) != 0)
        FL_FAIL("pipe: %m");
    const uint64_t t0 = tp_now_ms();
    pid_t sup = fl_fork(supervisor, NULL);
    int fds[2] = {0, 0};
    long rss[2] = {0, 0};
    for (unsigned expect = 1; expect <= total; ++expect) {
        struct fl_report r = fl_report_expect(R_UP, 20000);
        if (r.a != expect) {
            fl_reap(sup);
            FL_FAIL("instance %lld came up, expected %u", (long long)r.a, expect);
        }
        if (expect == first_sample || expect == total) {
            const int i = expect == total;
            fds[i] = i == 0 ? fds_at_rest(sup, -1, 100) : fds_at_rest(sup, fds[0], 2000);
            rss[i] = fl_rss_kib(sup);
            fl_note("restart %u: supervisor has %d descriptors, VmRSS %ld KiB", expect - 1, fds[i], rss[i]);
            if (write(go_pipe[1], "g", 1) != 1)
                FL_FAIL("write: %m");
        }
    }
    int status = 0;
    if (!fl_wait_child(sup, 20000, &status)) {
        fl_reap(sup);
        FL_FAIL("the supervisor did not exit");
    }
    FL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "supervisor status 0x%x", status);
    FL_CHECK(fds[0] > 0 && fds[1] == fds[0], "descriptors: %d at restart %u, %d at restart %u", fds[0],
             first_sample - 1, fds[1], total - 1);
    FL_CHECK(sanitized || rss[1] - rss[0] < 1024, "VmRSS grew by %ld KiB between restart %u and %u", rss[1] - rss[0],
             first_sample - 1, total - 1);
    fl_note("restart-flat: %u restarts in %llu ms; descriptors %d -> %d; VmRSS %ld -> %ld KiB (%+ld KiB)", total - 1,
            (unsigned long long)(tp_now_ms() - t0), fds[0], fds[1], rss[0], rss[1], rss[1] - rss[0]);
    return 0;
}
