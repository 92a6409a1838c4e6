/* SPDX-License-Identifier: BSD-3-Clause */
/* fault-spawn.c - a restart that cannot be spawned at once.
 *
 * This program defines fork() and socketpair(): the dynamic linker binds
 * libsam's calls to them. In the supervisor they fail as many times as an
 * instance asked for (through a page shared by all processes), and pass the
 * call on otherwise.
 *
 * Transient: instance 1 makes the next two forks fail with EAGAIN, instance
 * 2 the next three socketpairs with EMFILE (one when its successor is
 * prepared at sam_start(), two at the restart). Each failed restart must be
 * logged and retried after a back-off, and the instances must come back:
 * sam_register() never returns a second time in the supervisor.
 *
 * Permanent: instance 1 makes every later fork fail with EPERM (what a
 * seccomp filter gives). That cannot pass: the supervisor logs it and exits
 * with status 71, as documented in sam_register(3).
 *
 * Both run with SAM_STANDBY=0, so that the restarts themselves fork. With
 * the standby (sam_overview(3)), the fork that fails is the standby's, inside
 * sam_start(): it is logged, sam_start() succeeds, and the restart forks.
 */
#define _GNU_SOURCE
#include <corosync/sam.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultlib.h"

#define EXIT_CANNOT_SPAWN 71 /* sam_register(3) */

enum { R_UP = 1 };

struct faults {
    atomic_int supervisor_pid; /* faults apply in this process only */
    atomic_int fork_failures;  /* how many forks still fail; -1: all of them */
    atomic_int fork_errno;
    atomic_int socketpair_failures;
};
static struct faults *faults;

static int take_failure(atomic_int *count) {
    if (getpid() != atomic_load(&faults->supervisor_pid))
        return 0;
    int n = atomic_load(count);
    while (n != 0) {
        if (n < 0)
            return 1;
        if (atomic_compare_exchange_weak(count, &n, n - 1))
            return 1;
    }
    return 0;
}

pid_t fork(void) {
    static pid_t (*next)(void);
    if (next == NULL)
        next = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
    if (faults != NULL && take_failure(&faults->fork_failures)) {
        errno = atomic_load(&faults->fork_errno);
        return -1;
    }
    return next();
}

int socketpair(int domain, int type, int protocol, int sv[2]) {
    static int (*next)(int, int, int, int[2]);
    if (next == NULL)
        next = (int (*)(int, int, int, int[2]))dlsym(RTLD_NEXT, "socketpair");
    if (faults != NULL && take_failure(&faults->socketpair_failures)) {
        errno = EMFILE;
        return -1;
    }
    return next(domain, type, protocol, sv);
}

static const char *log_path;

static int transient_supervisor(void *unused) {
    (void)unused;
    fl_stderr_to(log_path);
    atomic_store(&faults->supervisor_pid, getpid());
    if (sam_initialize(0, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 91; /* before the fix: the second return, after a failed restart */
    fl_report(R_UP, iid, 0);
    if (iid == 3)
        exit(0); /* not started: the supervisor exits with us */
    if (iid == 1) {
        atomic_store(&faults->fork_errno, EAGAIN);
        atomic_store(&faults->fork_failures, 2);
    } else {
        atomic_store(&faults->socketpair_failures, 3);
    }
    if (sam_start() != CS_OK)
        FL_FAIL("sam_start failed in instance %u", iid);
    exit(1);
}

static int permanent_supervisor(void *unused) {
    (void)unused;
    fl_stderr_to(log_path);
    atomic_store(&faults->supervisor_pid, getpid());
    if (sam_initialize(0, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 91;
    fl_report(R_UP, iid, 0);
    atomic_store(&faults->fork_errno, EPERM);
    atomic_store(&faults->fork_failures, -1);
    if (sam_start() != CS_OK)
        FL_FAIL("sam_start failed in instance %u", iid);
    exit(1);
}

static int standby_supervisor(void *unused) {
    (void)unused;
    fl_stderr_to(log_path);
    atomic_store(&faults->supervisor_pid, getpid());
    if (sam_initialize(0, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 91;
    fl_report(R_UP, iid, 0);
    if (iid == 2)
        exit(0); /* not started: the supervisor exits with us */
    atomic_store(&faults->fork_errno, EAGAIN);
    atomic_store(&faults->fork_failures, 1);
    if (sam_start() != CS_OK)
        FL_FAIL("sam_start failed in instance %u", iid);
    exit(1);
}

/* Under ThreadSanitizer its runtime's own thread runs in the supervisor,
 * which then makes no standby at all (it cannot tell that thread from the
 * application's): nothing to inject there. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static void standby_fork_fails(void) {
#ifdef UNDER_TSAN
    fl_note("spawn: standby fork failure skipped under ThreadSanitizer (no standby is made there)");
    return;
#endif
    log_path = "fault-spawn-standby.supervisor.log";
    atomic_store(&faults->fork_failures, 0);
    atomic_store(&faults->socketpair_failures, 0);
    pid_t sup = fl_fork(standby_supervisor, NULL);
    for (unsigned expect = 1; expect <= 2; ++expect) {
        struct fl_report r = fl_report_expect(R_UP, 10000);
        FL_CHECK(r.a == expect, "instance %lld came up, expected %u", (long long)r.a, expect);
    }
    int status = 0;
    if (!fl_wait_child(sup, 10000, &status)) {
        fl_reap(sup);
        FL_FAIL("the supervisor did not exit");
    }
    FL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "supervisor status 0x%x", status);
    FL_CHECK(fl_file_count(log_path, "cannot fork a standby instance") == 1, "the failed standby fork logged");
    FL_CHECK(fl_file_count(log_path, "instance 2 started as pid") == 1, "instance 2 started");
    FL_CHECK(fl_file_count(log_path, "becomes instance") == 0, "no standby used");
    FL_CHECK(atomic_load(&faults->fork_failures) == 0, "the injected failure was met");
    fl_note("spawn: a standby that cannot be forked leaves sam_start() and the restart (a fork) working");
}

static void transient(void) {
    log_path = "fault-spawn-transient.supervisor.log";
    pid_t sup = fl_fork(transient_supervisor, NULL);
    for (unsigned expect = 1; expect <= 3; ++expect) {
        struct fl_report r;
        if (!fl_report_wait(&r, 10000)) {
            int status = 0;
            const int ended = fl_wait_child(sup, 0, &status);
            fl_reap(sup);
            FL_FAIL("instance %u did not come up (supervisor %s, status 0x%x)", expect, ended ? "ended" : "running",
                    status);
        }
        FL_CHECK(r.kind == R_UP && r.a == expect, "instance %lld came up, expected %u", (long long)r.a, expect);
    }
    int status = 0;
    if (!fl_wait_child(sup, 10000, &status)) {
        fl_reap(sup);
        FL_FAIL("the supervisor did not exit");
    }
    FL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "supervisor status 0x%x", status);
    FL_CHECK(fl_file_count(log_path, "cannot fork instance 2") == 2, "two failed forks logged");
    FL_CHECK(fl_file_count(log_path, "cannot prepare instance 3") == 2, "two failed preparations logged");
    FL_CHECK(fl_file_count(log_path, "retrying in") == 4, "four retries logged");
    FL_CHECK(atomic_load(&faults->fork_failures) == 0 && atomic_load(&faults->socketpair_failures) == 0,
             "every injected failure was met");
    fl_note("spawn: 2 failed forks and 2 failed socket pairs at restarts retried; instances 2 and 3 came up");
}

static void permanent(void) {
    log_path = "fault-spawn-permanent.supervisor.log";
    atomic_store(&faults->fork_failures, 0);
    atomic_store(&faults->socketpair_failures, 0);
    pid_t sup = fl_fork(permanent_supervisor, NULL);
    struct fl_report r = fl_report_expect(R_UP, 10000);
    FL_CHECK(r.a == 1, "instance %lld came up first", (long long)r.a);
    int status = 0;
    if (!fl_wait_child(sup, 10000, &status)) {
        fl_reap(sup);
        FL_FAIL("the supervisor did not exit after a fork failure that cannot pass");
    }
    FL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_CANNOT_SPAWN, "supervisor status 0x%x, want exit %d",
             status, EXIT_CANNOT_SPAWN);
    FL_CHECK(fl_file_count(log_path, "cannot fork instance 2") == 1, "the final failure logged once");
    FL_CHECK(!fl_report_wait(&r, 0), "no other instance came up");
    fl_note("spawn: a permanent fork failure ends the supervisor with status %d", EXIT_CANNOT_SPAWN);
}

int main(void) {
    faults = mmap(NULL, sizeof *faults, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (faults == MAP_FAILED)
        FL_FAIL("mmap: %m");
    setenv("SAM_LOG_STDERR", "1", 1);
    fl_reports_open();
    standby_fork_fails();
    setenv("SAM_STANDBY", "0", 1);
    transient();
    permanent();
    return 0;
}
