// SPDX-License-Identifier: BSD-3-Clause
// standby.cpp - the next instance, forked ahead of time (see standby.hpp).
#include "standby.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "state.hpp"
#include "wire.hpp"

namespace sam {

namespace {

// The one message a standby ever receives. Sent only by its supervisor over
// a socket pair nobody else holds, yet checked like any message: a standby
// that cannot make sense of it exits rather than run as a wrong instance.
struct WakeHeader {
    uint32_t magic;
    uint32_t instance_id;
    int32_t warn_signal;
    uint32_t carries_data; // one of the values below
    uint64_t size;         // of the data carried (0: none is stored)
};
constexpr uint32_t kKeepData = 0;   // unchanged since the standby's fork
constexpr uint32_t kInlineData = 1; // the bytes follow the header
constexpr uint32_t kMemfdData = 2;  // in the sealed memfd passed along

// Changed data up to this size goes along in a sealed memfd written at the
// restart. Writing 256 KiB into a memfd costs about 100 us on the machines
// measured, less than killing the standby and forking; above that a fork is
// cheaper.
constexpr size_t kMemfdDataMax = 256 * 1024;
constexpr uint32_t kWakeMagic = 0x53424b57; // "WKBS"

constexpr const char *kStandbyName = "sam-standby";

int wait_for(int pidfd, pid_t pid, siginfo_t *si, int options) noexcept {
    int rc = retry_eintr([&] { return ::waitid(P_PIDFD, static_cast<id_t>(pidfd), si, options); });
    // No waitid() by pidfd (kernel before 5.4, valgrind): by pid, which is
    // ours until reaped.
    if (rc != 0 && (errno == EINVAL || errno == EBADF))
        rc = retry_eintr([&] { return ::waitid(P_PID, static_cast<id_t>(pid), si, options); });
    return rc;
}

} // namespace

bool standby_enabled_by_env() noexcept {
    const char *v = std::getenv("SAM_STANDBY");
    return v == nullptr || std::strcmp(v, "0") != 0;
}

bool only_thread_in_process() noexcept {
    UniqueFd fd(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
    if (!fd)
        return false;
    char buf[4096];
    const ssize_t n = retry_eintr([&] { return ::read(fd.get(), buf, sizeof buf - 1); });
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *line = std::strstr(buf, "\nThreads:");
    if (line == nullptr)
        return false;
    char *end = nullptr;
    const long threads = std::strtol(line + 9, &end, 10);
    return end != line + 9 && threads == 1;
}

bool Standby::adopt(pid_t pid, int epoll_fd, uint64_t tag, uint64_t data_generation) noexcept {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (!pidfd || ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, pidfd.get(), &ev) != 0) {
        const int err = errno;
        // Ours and not reaped yet: the pid still names it.
        (void)::kill(pid, SIGKILL);
        (void)retry_eintr([&] { return ::waitpid(pid, nullptr, 0); });
        errno = err;
        return false;
    }
    pidfd_ = std::move(pidfd);
    pid_ = pid;
    data_generation_ = data_generation;
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%d/schedstat", static_cast<int>(pid));
    schedstat_.reset(::open(path, O_RDONLY | O_CLOEXEC));
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    stat_.reset(::open(path, O_RDONLY | O_CLOEXEC));
    return true;
}

bool Standby::can_carry(const DataStore &data) const noexcept {
    return data.generation() == data_generation_ || data.size() <= kMemfdDataMax;
}

bool Standby::wake(int channel_fd, unsigned instance_id, int warn_signal, const DataStore &data) noexcept {
    if (!waiting() || !can_carry(data)) {
        errno = EINVAL;
        return false;
    }
    WakeHeader h{};
    h.magic = kWakeMagic;
    h.instance_id = instance_id;
    h.warn_signal = warn_signal;
    h.size = data.generation() != data_generation_ ? data.size() : 0;
    h.carries_data = data.generation() == data_generation_ ? kKeepData
                     : h.size <= wire::kInlineDataMax      ? kInlineData
                                                           : kMemfdData;
    const size_t inline_size = h.carries_data == kInlineData ? static_cast<size_t>(h.size) : 0;
    UniqueFd memfd;
    if (h.carries_data == kMemfdData) {
        cs_error_t err = CS_OK;
        memfd = make_sealed_memfd(data.bytes(), static_cast<size_t>(h.size), err);
        if (!memfd)
            return false; // errno from the failed step
    }
    iovec iov[2];
    iov[0].iov_base = &h;
    iov[0].iov_len = sizeof h;
    iov[1].iov_base = const_cast<unsigned char *>(data.bytes());
    iov[1].iov_len = inline_size;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = inline_size > 0 ? 2 : 1;
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int))] = {};
    if (memfd) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        const int fd = memfd.get();
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    // The socket buffer is empty (nothing else was ever sent on it) and
    // larger than one message: a send that would block means something is
    // wrong, not that the standby is slow.
    const ssize_t n = retry_eintr([&] { return ::sendmsg(channel_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT); });
    if (n < 0)
        return false;
    if (static_cast<size_t>(n) != sizeof h + inline_size) {
        errno = EMSGSIZE;
        return false;
    }
    return true;
}

Standby::Handover Standby::release(int epoll_fd, uint64_t instance_tag) noexcept {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = instance_tag;
    // Cannot fail for a descriptor that is registered (ENOMEM aside): then
    // the caller watches it anew.
    const bool watched = ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, pidfd_.get(), &ev) == 0;
    if (!watched)
        (void)::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, pidfd_.get(), nullptr);
    pid_ = -1;
    return Handover{std::move(pidfd_), std::move(schedstat_), std::move(stat_), watched};
}

void Standby::reap_retired(int epoll_fd, int options) noexcept {
    if (!retired_pidfd_)
        return;
    siginfo_t si{};
    const int rc = wait_for(retired_pidfd_.get(), retired_pid_, &si, WEXITED | options);
    if (rc == 0 && si.si_pid == 0)
        return; // still dying
    if (epoll_fd >= 0)
        (void)::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, retired_pidfd_.get(), nullptr);
    retired_pidfd_.reset();
    retired_pid_ = -1;
}

void Standby::retire(int epoll_fd) noexcept {
    if (!waiting())
        return;
    reap_retired(epoll_fd, 0); // at most one in retirement: an earlier one is surely dead by now
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0) != 0)
        (void)::kill(pid_, SIGKILL);
    retired_pidfd_ = std::move(pidfd_);
    retired_pid_ = pid_;
    schedstat_.reset();
    stat_.reset();
    pid_ = -1;
}

bool Standby::reap_ended(int epoll_fd, char *how, size_t how_size) noexcept {
    reap_retired(epoll_fd, WNOHANG);
    if (!waiting())
        return false;
    siginfo_t si{};
    const int rc = wait_for(pidfd_.get(), pid_, &si, WEXITED | WNOHANG);
    const bool reaped_elsewhere = rc != 0 && errno == ECHILD;
    if (!reaped_elsewhere && (rc != 0 || si.si_pid == 0))
        return false;
    if (reaped_elsewhere)
        std::snprintf(how, how_size, "reaped elsewhere in this process");
    else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
        std::snprintf(how, how_size, "killed by SIG%s",
                      ::sigabbrev_np(si.si_status) ? ::sigabbrev_np(si.si_status) : "?");
    else
        std::snprintf(how, how_size, "exited with status %d", si.si_status);
    forget(epoll_fd);
    return true;
}

void Standby::discard(int epoll_fd) noexcept {
    reap_retired(epoll_fd, 0);
    if (!waiting())
        return;
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0) != 0)
        (void)::kill(pid_, SIGKILL); // no pidfd_send_signal: by pid, ours until reaped
    siginfo_t si{};
    (void)wait_for(pidfd_.get(), pid_, &si, WEXITED);
    forget(epoll_fd);
}

void Standby::forget(int epoll_fd) noexcept {
    if (epoll_fd >= 0 && pidfd_)
        (void)::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, pidfd_.get(), nullptr);
    pidfd_.reset();
    schedstat_.reset();
    stat_.reset();
    pid_ = -1;
}

void Standby::abandon_in_child() noexcept {
    retired_pidfd_.reset();
    retired_pid_ = -1;
    pidfd_.reset();
    schedstat_.reset();
    stat_.reset();
    pid_ = -1;
}

bool standby_wait(int channel_fd, Library &lib) noexcept {
    // On the stack, not the heap: freeing a heap buffer this size after the
    // wake-up may shrink the heap, a system call on the restart path.
    alignas(WakeHeader) unsigned char buf[sizeof(WakeHeader) + wire::kInlineDataMax];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = retry_eintr([&] { return ::recvmsg(channel_fd, &msg, MSG_CMSG_CLOEXEC); });
    UniqueFd memfd;
    for (cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr; c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
            memfd.reset(fd);
        }
    }
    if (n < static_cast<ssize_t>(sizeof(WakeHeader)) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)
        return false; // hang-up (the supervisor is gone or let us go), or not a wake message
    WakeHeader h;
    std::memcpy(&h, buf, sizeof h);
    const size_t len = static_cast<size_t>(n);
    const bool shape_ok =
        (h.carries_data == kKeepData && h.size == 0 && len == sizeof h && !memfd) ||
        (h.carries_data == kInlineData && h.size <= wire::kInlineDataMax &&
         len == sizeof h + static_cast<size_t>(h.size) && !memfd) ||
        (h.carries_data == kMemfdData && h.size > 0 && h.size <= kMemfdDataMax && len == sizeof h && memfd);
    if (h.magic != kWakeMagic || h.instance_id == 0 || h.warn_signal < 1 || h.warn_signal >= NSIG || !shape_ok)
        return false;
    if (h.carries_data == kMemfdData) {
        cs_error_t err = CS_OK;
        auto blob = DataBlob::from_sealed_memfd(memfd.get(), static_cast<size_t>(h.size), err);
        if (!blob)
            return false;
        lib.data.replace(std::move(blob)); // the mapping keeps the memfd: the descriptor goes
    } else if (h.carries_data == kInlineData && h.size == 0) {
        lib.data.clear();
    } else if (h.carries_data == kInlineData) {
        try {
            lib.data.replace(DataBlob::copy_of(buf + sizeof h, static_cast<size_t>(h.size)));
        } catch (const std::bad_alloc &) {
            return false;
        }
    }
    lib.last_instance_id = h.instance_id;
    lib.warn_signal.store(h.warn_signal);
    return true;
}

void own_pages(const void *addr, size_t len) noexcept {
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto to = reinterpret_cast<uintptr_t>(addr) + len;
    // The first byte of the range on each page: never a byte outside it.
    for (uintptr_t a = reinterpret_cast<uintptr_t>(addr); a < to; a = (a & ~(page - 1)) + page) {
        volatile unsigned char *p = reinterpret_cast<volatile unsigned char *>(a);
        *p = *p;
    }
}

void StandbyName::enter() noexcept {
    if (::prctl(PR_GET_NAME, saved_) != 0)
        return;
    changed_ = ::prctl(PR_SET_NAME, kStandbyName) == 0;
}

void StandbyName::leave() noexcept {
    if (changed_)
        (void)::prctl(PR_SET_NAME, saved_);
    changed_ = false;
}

} // namespace sam
