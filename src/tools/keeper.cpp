// SPDX-License-Identifier: BSD-3-Clause
// keeper.cpp - see keeper.hpp.
#include "pidfd.hpp"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <system_error>
#include <vector>

#include "containment.hpp"
#include "event_hooks.hpp"
#include "history.hpp"
#include "keeper.hpp"
#include "log.hpp"
#include "process.hpp"

namespace samrun {

namespace {

// Lifelines one read of the channel may carry; relays send one each.
constexpr int kMaxLifelinesPerMessage = 8;
constexpr size_t kMaxMessage = 8192;
// How long a new relay waits for the keeper to end what an earlier instance
// left (a cgroup empties within milliseconds of cgroup.kill).
constexpr int kSyncTimeoutMs = 3000;

struct Lifeline {
    UniqueFd fd;
    unsigned instance = 0;
    pid_t pgid = 0;
    std::string cgroup;
};

void end_of(Lifeline &line, const char *why) {
    if (line.pgid <= 0 && line.cgroup.empty()) {
        return;
    }
    bool any = line.pgid > 0 && kill(-line.pgid, 0) == 0;
    end_program_group(line.pgid, line.cgroup);
    if (any || !line.cgroup.empty()) {
        log_line("ended what was left of instance %u's program (process group %d%s%s): %s", line.instance,
                 static_cast<int>(line.pgid), line.cgroup.empty() ? "" : ", cgroup ", line.cgroup.c_str(), why);
    }
    line.pgid = 0;
    line.cgroup.clear();
}

void take_lifelines(int channel, std::vector<Lifeline> &lines) {
    for (;;) {
        char byte;
        iovec iov{&byte, 1};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxLifelinesPerMessage)];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = recvmsg(channel, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n <= 0) {
            return;
        }
        for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
                continue;
            }
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; ++i) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                Lifeline line;
                line.fd.reset(fd);
                lines.push_back(std::move(line));
            }
        }
    }
}

// "event\nNAME=value\n...": the facts for the hook.
void run_hook(EventHooks *hooks, const char *message) {
    if (hooks == nullptr) {
        return;
    }
    std::vector<std::string> facts;
    std::string text(message + 6);
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) {
            end = text.size();
        }
        if (end > start) {
            facts.push_back(text.substr(start, end - start));
        }
        start = end + 1;
    }
    hooks->run(facts);
}

// false: the lifeline closed (its relay is gone).
bool read_lifeline(Lifeline &line, EventHooks *hooks) {
    for (;;) {
        char buf[kMaxMessage + 1];
        ssize_t n = recv(line.fd.get(), buf, kMaxMessage, MSG_DONTWAIT);
        if (n == 0) {
            return false;
        }
        if (n < 0) {
            return errno == EAGAIN || errno == EINTR;
        }
        buf[n] = '\0';
        unsigned instance = 0;
        int pgid = 0;
        int used = 0;
        if (strncmp(buf, "event\n", 6) == 0) {
            run_hook(hooks, buf);
        } else if (strcmp(buf, "sync") == 0) {
            // Lifelines are read in order of polling, so every relay that
            // ended before this one asked has been dealt with.
            (void)send(line.fd.get(), "done", 4, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else if (strcmp(buf, "clear") == 0) {
            line.pgid = 0;
            line.cgroup.clear();
        } else if (sscanf(buf, "%u %d %n", &instance, &pgid, &used) == 2 && pgid > 0) {
            line.instance = instance;
            line.pgid = pgid;
            line.cgroup = strcmp(buf + used, "-") == 0 ? "" : std::string(buf + used);
        }
    }
}

// Closes every descriptor above stderr except `a` and `b`.
void close_all_but(int a, int b) {
    int low = std::min(a, b), high = std::max(a, b);
    bool ok = (low <= 3 || syscall(SYS_close_range, 3u, static_cast<unsigned>(low) - 1u, 0u) == 0) &&
              (high <= low + 1 ||
               syscall(SYS_close_range, static_cast<unsigned>(low) + 1u, static_cast<unsigned>(high) - 1u, 0u) == 0) &&
              syscall(SYS_close_range, static_cast<unsigned>(high) + 1u, ~0u, 0u) == 0;
    if (ok) {
        return;
    }
    // No close_range(2) (before Linux 5.9, valgrind): one by one.
    rlimit limit{};
    int max = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                  ? static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 65536))
                  : 65536;
    for (int fd = 3; fd < max; ++fd) {
        if (fd != a && fd != b) {
            (void)close(fd);
        }
    }
}

[[noreturn]] void keeper_main(int channel, int supervisor, pid_t supervisor_pid, const KeeperSetup &setup) {
    // Only what we need stays open: stdio for the log, the channel and
    // the supervisor's pidfd (both numbered above stderr).
    close_all_but(channel, supervisor);
    // Stop signals are for the supervisor, which passes them on: the
    // keeper ends when the supervisor has, after cleaning up.
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU}) {
        signal(sig, SIG_IGN);
    }
    prctl(PR_SET_NAME, "sam-run-keeper");
    std::unique_ptr<EventHooks> hooks;
    if (setup.event_hook) {
        hooks = std::make_unique<EventHooks>(*setup.event_hook, setup.event_timeout_ms);
    }
    std::vector<Lifeline> lines;
    bool supervisor_gone = false;
    for (;;) {
        std::vector<pollfd> fds = {{supervisor_gone ? -1 : supervisor, POLLIN, 0},
                                   {supervisor_gone ? -1 : channel, POLLIN, 0}};
        for (const Lifeline &line : lines) {
            fds.push_back({line.fd.get(), POLLIN, 0});
        }
        size_t first_hook = fds.size();
        if (hooks) {
            hooks->add_pollfds(fds);
        }
        if (poll(fds.data(), fds.size(), hooks ? hooks->next_timeout_ms() : -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(1);
        }
        // Oldest first, and only those polled: an ended relay's group is
        // ended before a newer relay's "sync" is answered.
        const size_t polled = first_hook - 2;
        std::vector<bool> closed(polled, false);
        for (size_t i = 0; i < polled; ++i) {
            if (fds[i + 2].revents != 0 && !read_lifeline(lines[i], hooks.get())) {
                end_of(lines[i], "its relay ended without doing it");
                closed[i] = true;
            }
        }
        for (size_t i = polled; i-- > 0;) {
            if (closed[i]) {
                lines.erase(lines.begin() + static_cast<long>(i));
            }
        }
        if (fds[1].revents != 0) {
            take_lifelines(channel, lines);
        }
        if (hooks) {
            hooks->handle(fds, first_hook);
        }
        if (fds[0].revents != 0) {
            take_lifelines(channel, lines);
            for (Lifeline &line : lines) {
                (void)read_lifeline(line, hooks.get());
                end_of(line, "sam-run is ending");
            }
            lines.clear();
            if (setup.history) {
                remove_history(supervisor_pid);
            }
            for (const SocketFile &file : setup.socket_files) {
                remove_socket_file(file);
            }
            supervisor_gone = true;
        }
        // The last hooks (stopped, gave-up) may still run, each bounded
        // by its timeout.
        if (supervisor_gone && (!hooks || hooks->idle())) {
            _exit(0);
        }
    }
}

} // namespace

UniqueFd start_keeper(const KeeperSetup &setup) {
    const pid_t parent = getpid();
    return fork_helper(
        [parent, &setup](int channel, int supervisor) { keeper_main(channel, supervisor, parent, setup); });
}

bool KeeperLink::connect(int channel) {
    int pair[2];
    if (channel < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        return false;
    }
    UniqueFd kept(pair[0]), handed(pair[1]);
    char byte = 'L';
    const iovec iov{&byte, 1};
    if (send_with_fd(channel, &iov, 1, handed.get(), MSG_NOSIGNAL) != 1) {
        return false;
    }
    lifeline_ = std::move(kept);
    // The previous instance's relay is gone before libsam starts ours, so
    // its lifeline is closed already: once the keeper answers, whatever its
    // program left has been ended, and the new program starts alone.
    send_text("sync");
    pollfd answer{lifeline_.get(), POLLIN, 0};
    int ready;
    do {
        ready = poll(&answer, 1, kSyncTimeoutMs);
    } while (ready < 0 && errno == EINTR);
    char reply[8];
    return ready == 1 && recv(lifeline_.get(), reply, sizeof reply, MSG_DONTWAIT) == 4;
}

void KeeperLink::send_text(const std::string &text) {
    if (lifeline_.valid()) {
        (void)send(lifeline_.get(), text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
}

void KeeperLink::announce(unsigned instance, pid_t pgid, const std::string &cgroup) {
    send_text(std::to_string(instance) + " " + std::to_string(pgid) + " " + (cgroup.empty() ? "-" : cgroup));
}

void KeeperLink::clear() { send_text("clear"); }

void KeeperLink::event(const std::string &event, const std::vector<std::pair<std::string, std::string>> &facts) {
    std::string text = "event\nSAM_EVENT=" + event;
    for (const auto &[name, value] : facts) {
        std::string clean = value;
        std::replace(clean.begin(), clean.end(), '\n', ' ');
        text += "\n" + name + "=" + clean;
    }
    if (text.size() <= kMaxMessage) {
        send_text(text);
    }
}

} // namespace samrun
