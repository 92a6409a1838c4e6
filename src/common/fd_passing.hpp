// SPDX-License-Identifier: BSD-3-Clause
// fd_passing.hpp - sending a message with one descriptor attached
// (SCM_RIGHTS) on a unix socket: the channel, the link process, the
// descriptor sink and sam-run's keeper all do it.
#pragma once

#include <cstddef>

#include <sys/types.h>
#include <sys/uio.h>

namespace sam {

// Sends the `count` buffers of `iov` as one message on `sock`, with
// `pass_fd` attached unless it is negative; `flags` as for sendmsg() (pass
// MSG_NOSIGNAL: a peer that is gone must not kill us). Retries on EINTR and
// returns what sendmsg() returned (-1 with errno set on failure).
[[nodiscard]] ssize_t send_with_fd(int sock, const iovec *iov, size_t count, int pass_fd, int flags) noexcept;

} // namespace sam
