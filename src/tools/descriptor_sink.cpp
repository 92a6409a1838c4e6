// SPDX-License-Identifier: BSD-3-Clause
// descriptor_sink.cpp - see descriptor_sink.hpp.
//
// The protocol between relay and sink, over a SOCK_SEQPACKET pair:
//   'B' + SCM_RIGHTS  a batch: the sink holds these descriptors
//   'R'               release: the relay has dropped its own copies, so the
//                     sink's close() is the last one; it closes the batch
//   end of file       the relay is gone or gave up on this sink: close what
//                     is held and exit
// Without 'R' the sink could close a batch before the relay dropped its
// copies, and the relay's close() would be the last after all.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "descriptor_sink.hpp"
#include "log.hpp"

namespace samrun {

namespace {

// Sinks alive at once: each busy one is held by a file that will not close.
// Beyond this, descriptors wait in the relay (parked) for one to finish.
constexpr size_t kMaxSinks = 8;

constexpr char kBatch = 'B';
constexpr char kRelease = 'R';

// Child side, right after fork() in a process that has threads: only
// async-signal-safe calls, nothing allocated.
[[noreturn]] void run_sink(int channel, int max_fd) {
    // Hold nothing of the relay's: the notify socket, libsam's channel and
    // the output pipes must end when the relay does, not when we do.
    if (syscall(SYS_close_range, 0u, static_cast<unsigned>(channel) - 1u, 0u) != 0 ||
        syscall(SYS_close_range, static_cast<unsigned>(channel) + 1u, ~0u, 0u) != 0) {
        for (int fd = 0; fd < max_fd; ++fd) {
            if (fd != channel) {
                close(fd);
            }
        }
    }
    int held[kMaxPassedFds];
    size_t count = 0;
    for (;;) {
        char tag = 0;
        iovec iov{&tag, 1};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = recvmsg(channel, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
                continue;
            }
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; ++i) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (count == kMaxPassedFds) {
                    close(fd); // not our protocol: the relay sends one batch at a time
                } else {
                    held[count++] = fd;
                }
            }
        }
        if (tag == kRelease) {
            while (count > 0) {
                close(held[--count]);
            }
        }
    }
    _exit(0); // the kernel closes whatever is still held
}

} // namespace

bool DescriptorSink::start() {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        return false;
    }
    UniqueFd ours(pair[0]);
    UniqueFd theirs(pair[1]);
    int max_fd = static_cast<int>(std::min(sysconf(_SC_OPEN_MAX), 1L << 20));
    pid_t pid = fork();
    if (pid < 0) {
        return false;
    }
    if (pid == 0) {
        run_sink(theirs.get(), max_fd);
    }
    channel_ = std::move(ours);
    pid_ = pid;
    return true;
}

// The sink keeps what it got and exits once it is done with it.
void DescriptorSink::retire() {
    channel_.reset();
    if (pid_ > 0) {
        retired_.push_back(pid_);
    }
    pid_ = -1;
}

void DescriptorSink::reap_retired() {
    retired_.erase(
        std::remove_if(retired_.begin(), retired_.end(), [](pid_t pid) { return waitpid(pid, nullptr, WNOHANG) != 0; }),
        retired_.end());
}

bool DescriptorSink::hand_over(const std::vector<int> &fds) {
    if (!channel_.valid() && (retired_.size() + 1 > kMaxSinks || !start())) {
        return false;
    }
    char tag = kBatch;
    const iovec iov{&tag, 1};
    // MSG_DONTWAIT: a sink whose queue is full is stuck on some file; it
    // is replaced rather than waited for.
    if (send_with_fds(channel_.get(), &iov, 1, fds.data(), fds.size(), MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
        retire();
        return false;
    }
    // The batch in flight holds its own references: none of these closes
    // is the last.
    for (int fd : fds) {
        close(fd);
    }
    tag = kRelease;
    if (send(channel_.get(), &tag, 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
        retire(); // it closes the batch when it sees the end of file
    }
    return true;
}

void DescriptorSink::dispose(const std::vector<int> &fds, bool stranger) {
    if (stranger) {
        // Fails with ENOTSOCK on anything else, without touching it.
        linger abort_on_close{1, 0};
        for (int fd : fds) {
            (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
        }
    }
    reap_retired();
    parked_.insert(parked_.end(), fds.begin(), fds.end());
    while (!parked_.empty()) {
        size_t n = std::min(parked_.size(), static_cast<size_t>(kMaxPassedFds));
        std::vector<int> batch(parked_.begin(), parked_.begin() + static_cast<long>(n));
        // A busy sink gets one successor per call, so a flood cannot fork
        // more than one process per datagram, and never more than the cap.
        if (!hand_over(batch) && !hand_over(batch)) {
            if (!parked_logged_) {
                log_line("%zu passed descriptors wait for a sink: every sink is busy closing", parked_.size());
                parked_logged_ = true;
            }
            return;
        }
        parked_.erase(parked_.begin(), parked_.begin() + static_cast<long>(n));
    }
    parked_logged_ = false;
}

} // namespace samrun
