// SPDX-License-Identifier: BSD-3-Clause
// fd_passing.cpp - see fd_passing.hpp.
#include "fd_passing.hpp"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>

namespace sam {

ssize_t send_with_fd(int sock, const iovec *iov, size_t count, int pass_fd, int flags) noexcept {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec *>(iov);
    msg.msg_iovlen = count;
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int))];
    if (pass_fd >= 0) {
        std::memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    for (;;) {
        const ssize_t n = ::sendmsg(sock, &msg, flags);
        if (n >= 0 || errno != EINTR) {
            return n;
        }
    }
}

} // namespace sam
