// SPDX-License-Identifier: BSD-3-Clause
// fd_passing.hpp - sending a message with descriptors attached (SCM_RIGHTS)
// on a unix socket: the channel, the link process, both descriptor sinks,
// sam-run's keeper and its descriptor store all do it.
#pragma once

#include <cstddef>

#include <sys/types.h>
#include <sys/uio.h>

namespace sam {

// Most descriptors one message can carry (the kernel's SCM_MAX_FD).
constexpr size_t kMaxFdsPerMessage = 253;

// Sends the `count` buffers of `iov` as one message on `sock`, with the
// `nfds` descriptors of `fds` attached; `flags` as for sendmsg() (pass
// MSG_NOSIGNAL: a peer that is gone must not kill us). Retries on EINTR and
// returns what sendmsg() returned (-1 with errno set on failure; EINVAL for
// more than kMaxFdsPerMessage descriptors).
[[nodiscard]] ssize_t send_with_fds(int sock, const iovec *iov, size_t count, const int *fds, size_t nfds,
                                    int flags) noexcept;

// The same with one descriptor, or none when `pass_fd` is negative.
[[nodiscard]] inline ssize_t send_with_fd(int sock, const iovec *iov, size_t count, int pass_fd, int flags) noexcept {
    return send_with_fds(sock, iov, count, &pass_fd, pass_fd >= 0 ? 1 : 0, flags);
}

} // namespace sam
