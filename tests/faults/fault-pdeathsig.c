/* SPDX-License-Identifier: BSD-3-Clause */
/* fault-pdeathsig.c - the supervisor is SIGKILLed: its instance must not run
 * on unsupervised. The test makes itself a child subreaper, so the orphaned
 * instance becomes its child and its end can be waited for and timed. It
 * must be gone within 1 s, killed by the warn signal (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <corosync/sam.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultlib.h"

enum { R_READY = 1 };

struct variant {
    const char *name;
    int interval_ms;
    int start;       /* sam_start() before the kill */
    int callback;    /* a health-callback thread is running */
    int warn_signal; /* set with sam_warn_signal_set() in the instance; 0 = default */
    int expected_signal;
};

static const struct variant variants[] = {
    {"registered, not started", 0, 0, 0, 0, SIGTERM},
    {"started, health checks from a thread", 1000, 1, 1, 0, SIGTERM},
    {"started, warn signal SIGUSR1", 1000, 1, 0, SIGUSR1, SIGUSR1},
    {"registered, warn signal SIGKILL", 0, 0, 0, SIGKILL, SIGKILL},
};

static int healthy(void) { return 0; }

static int supervisor(void *p) {
    const struct variant *v = p;
    if (sam_initialize(v->interval_ms, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 91;
    if (v->callback && sam_hc_callback_register(healthy) != CS_OK)
        FL_FAIL("sam_hc_callback_register failed");
    if (v->warn_signal != 0 && sam_warn_signal_set(v->warn_signal) != CS_OK)
        FL_FAIL("sam_warn_signal_set failed");
    if (v->start && sam_start() != CS_OK)
        FL_FAIL("sam_start failed");
    fl_report(R_READY, iid, 0);
    for (;;) {
        if (v->start && !v->callback)
            sam_hc_send();
        usleep(10000); /* a busy, healthy instance */
    }
}

int main(void) {
    fl_reports_open();
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        FL_FAIL("PR_SET_CHILD_SUBREAPER: %m");
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; ++i) {
        const struct variant *v = &variants[i];
        pid_t sup = fl_fork(supervisor, (void *)v);
        struct fl_report r = fl_report_expect(R_READY, 20000);
        const pid_t instance = r.pid;
        if (kill(sup, SIGKILL) != 0)
            FL_FAIL("kill supervisor: %m");
        const uint64_t t0 = tp_now_ms();
        int status = 0;
        if (!fl_wait_child(sup, 5000, &status))
            FL_FAIL("the SIGKILLed supervisor is not reaped");
        const int ended = fl_wait_child(instance, 1000, &status);
        const uint64_t took = tp_now_ms() - t0;
        if (!ended) {
            fl_reap(instance);
            FL_FAIL("%s: the instance still runs 1 s after its supervisor was SIGKILLed", v->name);
        }
        FL_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == v->expected_signal,
                 "%s: instance status 0x%x, expected death by signal %d", v->name, status, v->expected_signal);
        fl_note("%s: instance ended by %s %llu ms after the supervisor was SIGKILLed", v->name,
                strsignal(WTERMSIG(status)), (unsigned long long)took);
    }
    return 0;
}
