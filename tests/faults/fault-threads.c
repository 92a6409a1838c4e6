/* SPDX-License-Identifier: BSD-3-Clause */
/* fault-threads.c - calls from many threads of an instance at once:
 * sam_hc_send(), sam_data_store() (inline and memfd sizes, and deletes),
 * sam_data_restore(), sam_warn_signal_set(), while another thread cycles
 * sam_stop()/sam_start(). Nothing may deadlock (the test's deadline), every
 * call returns a status allowed in the state it could have met, and no
 * restore ever sees a torn value: each store writes a self-describing block
 * (seed and size in a header, a pattern derived from them after it). The last
 * value stored is checked again by the next instance, from the supervisor's
 * copy. Meant to run under ThreadSanitizer too (--enable-tsan).
 */
#define _GNU_SOURCE
#include <corosync/sam.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultlib.h"

#define MAX_BLOCK (48 * 1024) /* above the inline limit (32 KiB): memfd path */
#define STORE_THREADS 2
#define HC_THREADS 2
#define FINAL_SEED 0x0f17a1u

enum { R_DONE = 1, R_BAD, R_FINAL };

struct block_header {
    uint32_t magic;
    uint32_t seed;
    uint64_t size;
};
#define BLOCK_MAGIC 0x424c4f4bu

static atomic_int stop_flag;
static atomic_long stores, restores, beats, warns, cycles, empty_restores;
static unsigned cycles_wanted = 300;

static void bad(const char *what, int err) {
    fl_report(R_BAD, err, 0);
    FL_FAIL("%s returned %d", what, err);
}

static size_t make_block(unsigned char *buf, uint32_t seed, size_t size) {
    struct block_header h = {BLOCK_MAGIC, seed, size};
    memcpy(buf, &h, sizeof h);
    fl_fill(buf + sizeof h, size - sizeof h, seed);
    return size;
}

/* 1: a whole block, 0: nothing stored, -1: torn. */
static int check_block(const unsigned char *buf, size_t cap, uint32_t *seed_out) {
    struct block_header h;
    memcpy(&h, buf, sizeof h);
    if (h.magic == 0 && h.size == 0)
        return 0;
    if (h.magic != BLOCK_MAGIC || h.size < sizeof h || h.size > cap)
        return -1;
    if (seed_out != NULL)
        *seed_out = h.seed;
    return fl_is_pattern(buf + sizeof h, h.size - sizeof h, h.seed) ? 1 : -1;
}

static void *store_thread(void *p) {
    const uint32_t id = (uint32_t)(uintptr_t)p;
    unsigned char *buf = malloc(MAX_BLOCK);
    for (uint32_t n = 1; !atomic_load(&stop_flag); ++n) {
        cs_error_t err;
        if (n % 17 == 0) {
            err = sam_data_store(NULL, 0); /* delete */
        } else {
            const size_t size = (n % 2) ? 512 + n % 1024 : MAX_BLOCK - n % 1024;
            err = sam_data_store(buf, make_block(buf, (id << 24) | n, size));
        }
        if (err != CS_OK)
            bad("sam_data_store", err);
        atomic_fetch_add(&stores, 1);
    }
    free(buf);
    return NULL;
}

static void *restore_thread(void *unused) {
    (void)unused;
    unsigned char *buf = malloc(MAX_BLOCK);
    while (!atomic_load(&stop_flag)) {
        memset(buf, 0, sizeof(struct block_header));
        const cs_error_t err = sam_data_restore(buf, MAX_BLOCK);
        if (err != CS_OK)
            bad("sam_data_restore", err);
        const int r = check_block(buf, MAX_BLOCK, NULL);
        if (r < 0) {
            fl_report(R_BAD, -1, 0);
            FL_FAIL("sam_data_restore returned a torn block");
        }
        atomic_fetch_add(r == 0 ? &empty_restores : &restores, 1);
        size_t size;
        if (sam_data_getsize(&size) != CS_OK || size > MAX_BLOCK)
            bad("sam_data_getsize", (int)size);
    }
    free(buf);
    return NULL;
}

static void *hc_thread(void *unused) {
    (void)unused;
    while (!atomic_load(&stop_flag)) {
        const cs_error_t err = sam_hc_send();
        if (err != CS_OK && err != CS_ERR_BAD_HANDLE) /* BAD_HANDLE: caught between stop and start */
            bad("sam_hc_send", err);
        atomic_fetch_add(&beats, 1);
    }
    return NULL;
}

static void *warn_thread(void *unused) {
    (void)unused;
    for (int n = 0; !atomic_load(&stop_flag); ++n) {
        const cs_error_t err = sam_warn_signal_set(n % 2 ? SIGUSR2 : SIGTERM);
        if (err != CS_OK)
            bad("sam_warn_signal_set", err);
        atomic_fetch_add(&warns, 1);
    }
    return NULL;
}

static void instance_one(void) {
    pthread_t t[STORE_THREADS + HC_THREADS + 2];
    int n = 0;
    for (int i = 0; i < STORE_THREADS; ++i)
        pthread_create(&t[n++], NULL, store_thread, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < HC_THREADS; ++i)
        pthread_create(&t[n++], NULL, hc_thread, NULL);
    pthread_create(&t[n++], NULL, restore_thread, NULL);
    pthread_create(&t[n++], NULL, warn_thread, NULL);

    /* The cycles go on until the other threads have really run beside them
     * (a mutex is not fair: on a loaded machine the cycling thread can take it
     * back again and again), but not past 30 s: the counts then tell. */
    const uint64_t give_up = tp_now_ms() + 30000;
    for (unsigned i = 0; i < cycles_wanted || atomic_load(&stores) < 20 || atomic_load(&restores) < 20; ++i) {
        if (tp_now_ms() > give_up)
            break;
        cs_error_t err = sam_start();
        if (err != CS_OK)
            bad("sam_start", err);
        err = sam_stop();
        if (err != CS_OK)
            bad("sam_stop", err);
        atomic_fetch_add(&cycles, 1);
        sched_yield();
    }
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < n; ++i)
        pthread_join(t[i], NULL);

    unsigned char *buf = malloc(MAX_BLOCK);
    if (sam_data_store(buf, make_block(buf, FINAL_SEED, MAX_BLOCK)) != CS_OK)
        bad("final sam_data_store", 0);
    fl_report(R_DONE, atomic_load(&stores), atomic_load(&restores));
    fl_note("threads: %ld stores, %ld restores (%ld empty), %ld beats, %ld warn-signal sets, %ld stop/start cycles",
            (long)stores, (long)restores, (long)empty_restores, (long)beats, (long)warns, (long)cycles);
    if (sam_start() != CS_OK)
        bad("last sam_start", 0);
    exit(1); /* a failure: instance 2 checks the supervisor's copy */
}

static int supervisor(void *unused) {
    (void)unused;
    setenv("SAM_RESTART_DELAY_MS", "0", 1);
    /* A long interval: health checks are not what is tested here. */
    if (sam_initialize(10000, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 91;
    if (iid == 1)
        instance_one();
    unsigned char *buf = calloc(1, MAX_BLOCK);
    uint32_t seed = 0;
    const int ok = sam_data_restore(buf, MAX_BLOCK) == CS_OK && check_block(buf, MAX_BLOCK, &seed) == 1;
    fl_report(R_FINAL, ok, seed);
    exit(0);
}

int main(void) {
    if (getenv("FAULT_QUICK") != NULL)
        cycles_wanted = 100;
    /* Six threads that never sleep: at the default priority they took most
     * of both CPUs from the tests running beside this one under `make -j2
     * check` (TSan CI: back-off gaps 180 ms late). Nothing here is timed
     * but the 60 s deadlock deadline, so this test yields to the others. */
    if (setpriority(PRIO_PROCESS, 0, 10) != 0)
        fl_note("setpriority: %m (running at the default priority)");
    fl_reports_open();
    pid_t sup = fl_fork(supervisor, NULL);
    struct fl_report r;
    if (!fl_report_wait(&r, 60000)) {
        fl_reap(sup);
        FL_FAIL("no progress within 60 s: deadlock in the instance");
    }
    if (r.kind != R_DONE) {
        fl_reap(sup);
        FL_FAIL("a call failed in the instance (report %d, status %lld)", r.kind, (long long)r.a);
    }
    FL_CHECK(r.a > 0 && r.b > 0, "%lld stores, %lld restores: the threads did not overlap", (long long)r.a,
             (long long)r.b);
    r = fl_report_expect(R_FINAL, 30000);
    FL_CHECK(r.a == 1 && r.b == FINAL_SEED, "instance 2 restored a %s block (seed 0x%llx)", r.a ? "whole" : "torn",
             (unsigned long long)r.b);
    int status = 0;
    if (!fl_wait_child(sup, 20000, &status)) {
        fl_reap(sup);
        FL_FAIL("the supervisor did not exit");
    }
    FL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "supervisor status 0x%x", status);
    fl_note("threads: no deadlock, no torn data, the last value whole in the next instance");
    return 0;
}
