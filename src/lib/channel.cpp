// SPDX-License-Identifier: BSD-3-Clause
// channel.cpp - datagram transport between an instance and its supervisor.
#include "channel.hpp"

#include <algorithm>
#include <cstring>

#include <sys/socket.h>

#include "common/fd_passing.hpp"

namespace sam {

bool make_channel_pair(ChannelPair &out) noexcept {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    out.instance_end.reset(sv[0]);
    out.supervisor_end.reset(sv[1]);
    return true;
}

cs_error_t channel_call(int fd, const wire::RequestHeader &header, const void *data, size_t data_len,
                        int pass_fd) noexcept {
    iovec iov[2];
    iov[0].iov_base = const_cast<wire::RequestHeader *>(&header);
    iov[0].iov_len = sizeof header;
    iov[1].iov_base = const_cast<void *>(data);
    iov[1].iov_len = data_len;

    const ssize_t want = static_cast<ssize_t>(sizeof header + data_len);
    if (send_with_fd(fd, iov, data_len > 0 ? 2 : 1, pass_fd, MSG_NOSIGNAL) != want)
        return CS_ERR_LIBRARY;

    wire::Reply reply{};
    const ssize_t n = retry_eintr([&] { return ::recv(fd, &reply, sizeof reply, 0); });
    if (n <= 0)
        return CS_ERR_LIBRARY;
    auto status = wire::decode_reply(&reply, static_cast<size_t>(n));
    return status ? static_cast<cs_error_t>(*status) : CS_ERR_LIBRARY;
}

Received channel_receive(int fd, unsigned char *buf, size_t cap) {
    Received r;
    iovec iov{buf, cap};
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(kMaxPassedFds * sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;

    const ssize_t n = retry_eintr([&] { return ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC); });
    if (n < 0) {
        r.kind = (errno == EAGAIN || errno == EWOULDBLOCK) ? Received::Kind::Nothing : Received::Kind::Error;
        return r;
    }
    // Take ownership of every descriptor first, so none leaks whatever happens.
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count && r.fd_count < kMaxPassedFds; ++i) {
            int passed;
            std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
            r.fds[r.fd_count++].reset(passed);
        }
    }
    if (n == 0 && r.fd_count == 0) {
        r.kind = Received::Kind::Closed;
        return r;
    }
    r.truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || static_cast<size_t>(n) > cap;
    r.len = std::min(static_cast<size_t>(n), cap);
    r.kind = Received::Kind::Message;
    return r;
}

bool channel_reply(int fd, cs_error_t status) noexcept {
    wire::Reply reply{wire::kReplyMagic, static_cast<int32_t>(status)};
    return retry_eintr([&] { return ::send(fd, &reply, sizeof reply, MSG_NOSIGNAL | MSG_DONTWAIT); }) ==
           static_cast<ssize_t>(sizeof reply);
}

} // namespace sam
