// SPDX-License-Identifier: BSD-3-Clause
// log_outbox.cpp - non-blocking writes of the supervisor's queued log lines.
#include "log_outbox.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "log.hpp"

namespace sam {

namespace {

constexpr const char *kSyslogPath = "/dev/log";

// A write to a pipe nobody reads any more failed with EPIPE while SIGPIPE was
// blocked: the signal now waits on this thread. Taken away, so that it does
// not strike when the application's signal mask comes back.
void discard_pending_sigpipe() noexcept {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    const timespec now{0, 0};
    (void)::sigtimedwait(&pipe_only, nullptr, &now);
}

} // namespace

void LogOutbox::open() noexcept {
    pid_ = ::getpid();
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    (void)::pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
    syslog_ = !log_to_stderr();
    if (syslog_)
        open_syslog();
    else
        open_stderr();
    open_ = true;
}

void LogOutbox::open_stderr() noexcept {
    target_ = Target::Drop;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0)
        return;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
        // Writes to files do not wait for a reader; sharing the description
        // keeps one offset, so our lines never overwrite the instance's.
        fd_.reset(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3));
        if (fd_)
            target_ = Target::Write;
        return;
    }
    if (S_ISSOCK(st.st_mode)) {
        // A socket cannot be reopened; MSG_DONTWAIT makes one call
        // non-blocking without touching the shared description's flags.
        fd_.reset(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3));
        if (fd_)
            target_ = Target::Send;
        return;
    }
    // Pipe, FIFO, tty, character device: a description of our own.
    // O_NOCTTY: a supervisor without a controlling terminal must not get one.
    fd_.reset(::open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (fd_)
        target_ = Target::Write;
}

void LogOutbox::open_syslog() noexcept {
    target_ = Target::Drop;
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_)
        return;
    target_ = Target::Send;
    connected_ = connect_syslog();
}

// Also after the syslog daemon restarted (its socket is a new one).
bool LogOutbox::connect_syslog() noexcept {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", kSyslogPath);
    return ::connect(fd_.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) == 0;
}

void LogOutbox::close() noexcept {
    fd_.reset();
    open_ = false;
    blocked_ = false;
    connected_ = false;
    sent_ = 0;
}

void LogOutbox::vadd(int priority, const char *format, va_list ap) noexcept {
    if (!open_) {
        vlog_line(priority, format, ap);
        return;
    }
    (void)ring_.vpush(priority, format, ap);
}

void LogOutbox::drain() noexcept {
    if (!open_)
        return;
    blocked_ = false;
    while (!ring_.empty()) {
        switch (send_front()) {
        case Sent::Partly:
            continue;
        case Sent::Blocked:
            blocked_ = true;
            return;
        case Sent::All:
        case Sent::Failed: // lost as syslog() loses it: counting would only make more lines to lose
            sent_ = 0;
            ring_.pop();
            continue;
        }
    }
}

void LogOutbox::drain_before_exit(int timeout_ms) noexcept {
    const uint64_t until = saturating_add(monotonic_ns(), ms_to_ns(static_cast<uint64_t>(timeout_ms)));
    for (;;) {
        drain();
        const uint64_t now = monotonic_ns();
        if (!blocked_ || now >= until)
            return;
        pollfd p{fd_.get(), POLLOUT, 0};
        (void)::poll(&p, 1, static_cast<int>((until - now) / 1000000ULL) + 1);
    }
}

LogOutbox::Sent LogOutbox::send_front() noexcept {
    const LogRing::Line &line = ring_.front();
    char buf[LogRing::kTextMax + 64];
    const long pid = static_cast<long>(pid_);
    // The same "libsam[pid]: " before the text in both forms; for syslog it
    // is also the tag (identifier and pid) that syslog daemons parse.
    const int n =
        syslog_ ? std::snprintf(buf, sizeof buf, "<%d>libsam[%ld]: %s", LOG_DAEMON | line.priority, pid, line.text)
                : std::snprintf(buf, sizeof buf, "libsam[%ld]: %s\n", pid, line.text);
    if (n <= 0)
        return Sent::Failed;
    const size_t len = static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1;
    if (sent_ >= len)
        return Sent::All;
    return transmit(buf + sent_, len - sent_);
}

LogOutbox::Sent LogOutbox::transmit(const char *data, size_t len) noexcept {
    if (target_ == Target::Drop)
        return Sent::Failed;
    if (syslog_ && !connected_ && !(connected_ = connect_syslog()))
        return Sent::Failed;
    for (int attempt = 0;; ++attempt) {
        const ssize_t n = retry_eintr([&] {
            return target_ == Target::Write ? ::write(fd_.get(), data, len)
                                            : ::send(fd_.get(), data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        });
        if (n == 0)
            return Sent::Failed; // takes nothing, says no error: never spin on it
        if (n > 0) {
            sent_ += static_cast<size_t>(n);
            return static_cast<size_t>(n) == len ? Sent::All : Sent::Partly;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return Sent::Blocked;
        if (errno == EPIPE)
            discard_pending_sigpipe();
        // The syslog daemon restarted: its new socket, once.
        if (syslog_ && attempt == 0 && (errno == ECONNREFUSED || errno == ENOTCONN) && connect_syslog())
            continue;
        if (syslog_)
            connected_ = false;
        return Sent::Failed;
    }
}

} // namespace sam
