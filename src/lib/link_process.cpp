// SPDX-License-Identifier: BSD-3-Clause
// link_process.cpp - the link process's start: what it keeps of the
// supervisor it was forked from (one socket), its signals and its parent
// death; then its loop (link_loop.hpp).
#include "link_process.hpp"

#include <csignal>
#include <cstdlib>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "link_loop.hpp"
#include "log.hpp"

namespace sam {

namespace {

pid_t g_supervisor_pid = 0;

// PR_SET_PDEATHSIG's signal (SIGHUP may also come from a terminal: only
// the supervisor's death counts).
void on_parent_death(int) {
    if (::getppid() != g_supervisor_pid)
        ::alarm(LinkLoop::kFinishAlarmS);
}

// Everything else the process inherited is the application's or the
// supervisor's (instance channels, listening sockets, pipes): holding it
// would keep it open behind their back.
void close_other_descriptors(int keep) noexcept {
#ifdef SYS_close_range
    const bool low_ok = keep <= 3 || ::syscall(SYS_close_range, 3U, static_cast<unsigned>(keep - 1), 0U) == 0;
    if (low_ok && ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0U, 0U) == 0)
        return;
#endif
    DIR *d = ::opendir("/proc/self/fd");
    if (d == nullptr)
        return;
    std::vector<int> fds;
    while (dirent *e = ::readdir(d)) {
        const int fd = std::atoi(e->d_name);
        if (e->d_name[0] != '.' && fd > 2 && fd != keep && fd != ::dirfd(d))
            fds.push_back(fd);
    }
    ::closedir(d);
    for (int fd : fds)
        ::close(fd);
}

} // namespace

void run_link_process(int sock, const LinkConfig &cfg) noexcept {
    // Stop signals meant for the supervised program (a terminal's ^C goes to
    // the whole process group) are the supervisor's business: the link
    // stays until it is told to finish. SIGALRM bounds the final write.
    for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE})
        (void)::signal(sig, SIG_IGN);
    for (int sig : {SIGALRM, SIGCHLD})
        (void)::signal(sig, SIG_DFL);
    // Dies with the supervisor, which forked us from the thread it runs on
    // (that thread lives as long as the supervisor does): SIGHUP when it
    // dies, and then at most LinkLoop::kFinishAlarmS more seconds, time
    // enough to read a Finish the supervisor sent before exiting while we
    // were blocked on corosync. The socket's hang-up ends us at once
    // otherwise.
    g_supervisor_pid = static_cast<pid_t>(cfg.supervisor_pid);
    struct sigaction hup {};
    hup.sa_handler = on_parent_death;
    hup.sa_flags = SA_RESTART;
    sigemptyset(&hup.sa_mask);
    (void)::sigaction(SIGHUP, &hup, nullptr);
    (void)::prctl(PR_SET_PDEATHSIG, SIGHUP);
    if (::getppid() != g_supervisor_pid)
        ::_exit(0);
    (void)::prctl(PR_SET_NAME, "sam-link");
    sigset_t none;
    sigemptyset(&none);
    (void)::sigprocmask(SIG_SETMASK, &none, nullptr);

    // syslog's descriptor is closed below: forget it first, or a later
    // syslog() would write into whatever socket reuses its number.
    ::closelog();
    if (sock <= 2) {
        const int moved = ::fcntl(sock, F_DUPFD_CLOEXEC, 3);
        if (moved < 0)
            ::_exit(1);
        sock = moved;
    }
    close_other_descriptors(sock);
    try {
        LinkLoop(sock, cfg).run();
    } catch (...) {
        log_line(LOG_ERR, "corosync link: out of memory");
    }
    ::_exit(1);
}

} // namespace sam
