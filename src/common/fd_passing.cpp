// SPDX-License-Identifier: BSD-3-Clause
// fd_passing.cpp - see fd_passing.hpp.
#include "fd_passing.hpp"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>

namespace sam {

ssize_t send_with_fds(int sock, const iovec *iov, size_t count, const int *fds, size_t nfds, int flags) noexcept {
    if (nfds > kMaxFdsPerMessage) {
        errno = EINVAL;
        return -1;
    }
    msghdr msg{};
    msg.msg_iov = const_cast<iovec *>(iov);
    msg.msg_iovlen = count;
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
    if (nfds > 0) {
        std::memset(control, 0, CMSG_SPACE(sizeof(int) * nfds));
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        const ssize_t n = ::sendmsg(sock, &msg, flags);
        if (n >= 0 || errno != EINTR) {
            return n;
        }
    }
}

} // namespace sam
