// SPDX-License-Identifier: BSD-3-Clause
// descriptor_sink.cpp - the process that closes descriptors for the supervisor.
#include "descriptor_sink.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>

#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fd_passing.hpp"

namespace sam {

namespace {

// How long a full sink socket may take to drain before the sink counts as
// stuck: long enough for a sink that is merely behind (a burst of
// descriptors) to be scheduled and catch up.
constexpr int kDrainWaitMs = 10;

// A descriptor's last close without lingering, where that can be asked for:
// a socket resets its connection instead of waiting for unsent data.
void close_now(int fd) noexcept {
    const linger abort_on_close{1, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    (void)::close(fd);
}

// The sink's whole life. It was forked from a supervisor that may have had a
// reader thread, so it makes system calls only: no allocation, no locks.
[[noreturn]] void run_sink(int sock, pid_t parent) noexcept {
    (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
        ::_exit(0);
    // Nothing of the supervisor's stays open here: an instance's channel
    // must see its supervisor's end close when the supervisor closes it.
    const bool closed_below = sock == 0 || ::syscall(SYS_close_range, 0U, static_cast<unsigned>(sock - 1), 0U) == 0;
    const bool closed_above = ::syscall(SYS_close_range, static_cast<unsigned>(sock + 1), ~0U, 0U) == 0;
    if (!closed_below || !closed_above) { // a kernel before close_range(2)
        const long open_max = ::sysconf(_SC_OPEN_MAX);
        for (long fd = 0; fd < open_max; ++fd) {
            if (fd != sock)
                (void)::close(static_cast<int>(fd));
        }
    }
    // Stop signals sent to the process group are for the supervisor, which
    // gets them itself; the handler inherited from it would pass them on twice.
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2})
        (void)::signal(sig, SIG_IGN);

    int held = -1; // received, closed once the next message shows the supervisor closed its copy
    for (;;) {
        char byte;
        iovec iov{&byte, sizeof byte};
        alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (held >= 0)
            close_now(held);
        held = -1;
        if (n <= 0)
            ::_exit(0); // the supervisor is gone or let us go
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (c != nullptr && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len >= CMSG_LEN(sizeof(int)))
            std::memcpy(&held, CMSG_DATA(c), sizeof held);
    }
}

bool send_message(int sock, int fd) noexcept {
    char byte = 0;
    const iovec iov{&byte, sizeof byte};
    return send_with_fd(sock, &iov, 1, fd, MSG_NOSIGNAL | MSG_DONTWAIT) == 1;
}

} // namespace

DescriptorSink::~DescriptorSink() {
    retire();
    reap_retired();
}

bool DescriptorSink::spawn() noexcept {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    UniqueFd ours(sv[0]), theirs(sv[1]);
    // The smallest send buffer: a sink that stops draining fills it after a
    // handful of messages, and that is how we notice (the kernel raises
    // this to its minimum).
    const int smallest = 1;
    (void)::setsockopt(ours.get(), SOL_SOCKET, SO_SNDBUF, &smallest, sizeof smallest);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0)
        return false;
    if (pid == 0)
        run_sink(theirs.get(), parent);
    sock_ = std::move(ours);
    pid_ = pid;
    return true;
}

bool DescriptorSink::hand_over(int fd) noexcept {
    if (!sock_ && !spawn())
        return false;
    return send_message(sock_.get(), fd);
}

bool DescriptorSink::dispose(UniqueFd fd) noexcept {
    if (!fd)
        return true;
    reap_retired();
    bool sent = hand_over(fd.get());
    if (!sent &&
        (errno == EAGAIN || errno == EWOULDBLOCK || errno == EPIPE || errno == ECONNREFUSED || errno == ECONNRESET)) {
        // Full (stuck in a close) or gone: a new sink takes over.
        retire();
        sent = hand_over(fd.get());
    }
    if (!sent) {
        const int saved = errno;
        (void)fd.release(); // never closed here: it may be the last reference
        errno = saved;
        return false;
    }
    // The sink holds its copy unclosed until our next message, so this close
    // is never the last one.
    fd.reset();
    (void)send_message(sock_.get(), -1);
    return true;
}

void DescriptorSink::retire() noexcept {
    sock_.reset();
    if (pid_ <= 0)
        return;
    // Not reaped yet, so the pid is still this sink's.
    (void)::kill(pid_, SIGKILL);
    for (pid_t &slot : retired_) {
        if (slot <= 0) {
            slot = pid_;
            break;
        }
    }
    pid_ = -1;
}

void DescriptorSink::reap_retired() noexcept {
    for (pid_t &slot : retired_) {
        if (slot <= 0)
            continue;
        siginfo_t si{};
        if (::waitid(P_PID, static_cast<id_t>(slot), &si, WEXITED | WNOHANG) != 0 || si.si_pid != 0)
            slot = -1;
    }
}

void DescriptorSink::abandon_in_child() noexcept {
    sock_.reset();
    pid_ = -1;
    retired_.fill(-1);
}

} // namespace sam
