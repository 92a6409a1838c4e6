/* SPDX-License-Identifier: BSD-3-Clause */
/* fault-store-kill.c - an instance SIGKILLed (by another process) while
 * sam_data_store() of 64 MiB runs: the next instance must find either the
 * previous data or the new data, whole and byte for byte, never a mix.
 *
 * The test kills each instance at a different delay after it announced the
 * store (0 ms up to past the end of the store), over several rounds, and
 * counts how often the old data survived and how often the store had
 * completed. Data stored before sam_register() is checked in instance 1.
 */
#define _GNU_SOURCE
#include <corosync/sam.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faultlib.h"

#define DATA_SIZE ((size_t)64 << 20)
#define ROUNDS 8
#define FIRST_SEED 1000

enum { R_VERIFIED = 1, R_STORING, R_STORED };

/* The last round kills only after the store has returned: the new data must then be whole. */
static const unsigned kill_delay_ms[ROUNDS] = {0, 2, 5, 10, 20, 40, 80, 0};

static int supervisor(void *unused) {
    (void)unused;
    setenv("SAM_RESTART_DELAY_MS", "0", 1);
    setenv("SAM_LOG_STDERR", "1", 1);
    if (sam_initialize(0, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    unsigned char *buf = malloc(DATA_SIZE);
    if (buf == NULL)
        return 91;
    fl_fill(buf, DATA_SIZE, FIRST_SEED);
    if (sam_data_store(buf, DATA_SIZE) != CS_OK)
        return 92;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 93;

    /* The instance. */
    size_t size = 0;
    if (sam_data_getsize(&size) != CS_OK || size != DATA_SIZE)
        FL_FAIL("instance %u: stored size %zu, expected %zu", iid, size, DATA_SIZE);
    memset(buf, 0, DATA_SIZE);
    if (sam_data_restore(buf, DATA_SIZE) != CS_OK)
        FL_FAIL("instance %u: sam_data_restore failed", iid);
    const uint32_t seed = (uint32_t)(((const uint64_t *)buf)[0] >> 32);
    fl_report(R_VERIFIED, seed, fl_is_pattern(buf, DATA_SIZE, seed));
    if (iid > ROUNDS)
        exit(0); /* not started: the supervisor exits with us */

    fl_fill(buf, DATA_SIZE, iid);
    if (sam_start() != CS_OK)
        FL_FAIL("instance %u: sam_start failed", iid);
    fl_report(R_STORING, iid, 0);
    const cs_error_t err = sam_data_store(buf, DATA_SIZE);
    fl_report(R_STORED, iid, err);
    for (;;)
        pause(); /* until the test kills us */
}

int main(void) {
    fl_reports_open();
    pid_t sup = fl_fork(supervisor, NULL);
    uint32_t committed = FIRST_SEED; /* whole in the supervisor for sure */
    uint32_t attempted = FIRST_SEED; /* the store that was cut off, maybe */
    int kept_old = 0, took_new = 0;

    for (unsigned round = 1; round <= ROUNDS + 1; ++round) {
        struct fl_report r;
        /* fl_report_expect() skips an R_STORED that came in before the kill. */
        r = fl_report_expect(R_VERIFIED, 30000);
        if (r.b != 1) {
            fl_reap(sup);
            FL_FAIL("round %u: restored data is not a whole pattern (first seed %lld)", round, (long long)r.a);
        }
        if ((uint32_t)r.a != committed && (uint32_t)r.a != attempted) {
            fl_reap(sup);
            FL_FAIL("round %u: restored seed %lld, expected %u (old) or %u (new)", round, (long long)r.a, committed,
                    attempted);
        }
        if (round > 1) {
            if ((uint32_t)r.a == attempted) {
                ++took_new;
                fl_note("round %u: killed %s: the new data is whole", round - 1,
                        round - 1 == ROUNDS ? "after the store returned" : "during or after the store");
            } else {
                ++kept_old;
                fl_note("round %u: killed %u ms into the store: the previous data is whole", round - 1,
                        kill_delay_ms[round - 2]);
            }
        }
        committed = (uint32_t)r.a;
        if (round > ROUNDS)
            break;

        struct fl_report storing = fl_report_expect(R_STORING, 30000);
        attempted = (uint32_t)storing.a;
        if (round == ROUNDS) {
            struct fl_report stored = fl_report_expect(R_STORED, 30000);
            FL_CHECK(stored.a == storing.a && stored.b == CS_OK, "store of instance %lld: %lld", (long long)stored.a,
                     (long long)stored.b);
            committed = attempted; /* complete: only the new data may come back */
        } else {
            const unsigned delay = kill_delay_ms[round - 1];
            struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
            nanosleep(&ts, NULL); /* the fault's timing, chosen per round */
        }
        if (kill(storing.pid, SIGKILL) != 0)
            FL_FAIL("kill instance %d: %m", storing.pid);
    }
    int status = 0;
    if (!fl_wait_child(sup, 30000, &status)) {
        fl_reap(sup);
        FL_FAIL("the supervisor did not exit after its last instance");
    }
    FL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "supervisor status 0x%x", status);
    fl_note("store-kill: %d rounds, previous data whole %d times, new data whole %d times, never torn", ROUNDS,
            kept_old, took_new);
    return 0;
}
