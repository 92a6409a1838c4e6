/* SPDX-License-Identifier: BSD-3-Clause */
/* valgrind-supervisor.c - the program fault-valgrind.sh runs under
 * valgrind: this process is the supervisor (it calls sam_register() itself)
 * and goes through RESTARTS restarts, each instance storing data (inline and
 * memfd sizes alternately) and then failing. The instances exec /bin/false
 * or /bin/true, so that only the supervisor's own memory is judged.
 *
 * valgrind 3.19 (Debian 12) does not know pidfd_open() and fails it with
 * ENOSYS, which makes every sam_register() fail. Only then, this program
 * stands in for it: it defines syscall(), which the library's call resolves
 * to, and answers pidfd_open with a signalfd for SIGCHLD, which becomes
 * readable when the instance dies just as the pidfd would. The supervisor
 * only waits for readability and then reaps with waitid(), so everything else
 * it does runs unchanged under memcheck. Where pidfd_open works, the real
 * one is used.
 */
#define _GNU_SOURCE
#include <corosync/sam.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int emulated_pidfds;

static int pidfd_standin(pid_t pid) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    /* A SIGCHLD left pending by the previous instance must not wake us... */
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&chld, NULL, &zero) == SIGCHLD)
        ;
    const int fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    /* ...but a child that is already dead must: the new one, or another
     * whose SIGCHLD the loop above has just taken (an instance that died
     * while its successor, the standby, was being forked). */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (fd >= 0 && waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0)
        kill(getpid(), SIGCHLD);
    ++emulated_pidfds;
    return fd;
}

long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; ++i)
        a[i] = va_arg(ap, long);
    va_end(ap);
    static long (*real)(long, ...);
    if (real == NULL)
        real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    const long r = real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (number == SYS_pidfd_open && r < 0 && errno == ENOSYS)
        return pidfd_standin((pid_t)a[0]);
    return r;
}

int main(int argc, char **argv) {
    const unsigned restarts = argc > 1 ? (unsigned)atoi(argv[1]) : 100;
    setenv("SAM_RESTART_DELAY_MS", "0", 1);
    /* The stand-in's signalfd needs SIGCHLD blocked; harmless otherwise. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    if (sam_initialize(1000, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    static char data[64 * 1024];
    memset(data, 'd', sizeof data);
    if (sam_data_store(data, 100) != CS_OK)
        return 91;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 92; /* the supervisor only returns on an internal error */

    /* An instance. */
    if (iid > restarts) {
        if (emulated_pidfds > 0)
            fprintf(stderr,
                    "valgrind-supervisor: pidfd_open unavailable (ENOSYS); used the SIGCHLD stand-in %d times\n",
                    emulated_pidfds);
        execl("/bin/true", "true", (char *)NULL);
        _exit(93);
    }
    const size_t size = iid % 2 ? 1024 : sizeof data;
    if (sam_data_store(data, size) != CS_OK || sam_start() != CS_OK)
        _exit(94);
    sam_hc_send();
    execl("/bin/false", "false", (char *)NULL);
    _exit(95);
}
