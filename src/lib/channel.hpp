// SPDX-License-Identifier: BSD-3-Clause
// channel.hpp - the socket between one instance and its supervisor.
//
// A SOCK_SEQPACKET pair created before fork. The instance end sends requests
// and blocks for the reply; the supervisor end receives whole datagrams
// (header, inline data, at most one descriptor) and answers. Every send uses
// MSG_NOSIGNAL: a peer that has gone away must never kill us with SIGPIPE.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include <corosync/corotypes.h>

#include "fd.hpp"
#include "wire.hpp"

namespace sam {

struct ChannelPair {
    UniqueFd instance_end;
    UniqueFd supervisor_end;
};

// Creates the pair (close-on-exec both ends). Returns false with errno set.
[[nodiscard]] bool make_channel_pair(ChannelPair &out) noexcept;

// Instance side: one request, then wait for its reply. Returns the status the
// supervisor answered, or CS_ERR_LIBRARY if the channel is broken.
[[nodiscard]] cs_error_t channel_call(int fd, const wire::RequestHeader &header, const void *data, size_t data_len,
                                      int pass_fd) noexcept;

// The most descriptors one datagram can carry (the kernel's SCM_MAX_FD).
// The receive buffer has room for all of them: any that did not fit would be
// closed by the kernel inside our recvmsg(), on the supervisor's thread, and
// that close may block (see descriptor_sink.hpp).
inline constexpr size_t kMaxPassedFds = 253;

// Supervisor side: one received datagram.
struct Received {
    enum class Kind { Message, Closed, Nothing, Error } kind = Kind::Nothing;
    size_t len = 0; // bytes of the datagram now in the caller's buffer
    // The descriptors passed with it, fds[0, fd_count). Never closed here:
    // the caller decides where each one may be closed.
    std::array<UniqueFd, kMaxPassedFds> fds;
    size_t fd_count = 0;
    bool truncated = false; // datagram or control data did not fit
};

// Non-blocking receive of one datagram on the supervisor end into buf[0, cap):
// the caller owns the buffer and reuses it, so receiving allocates nothing.
[[nodiscard]] Received channel_receive(int fd, unsigned char *buf, size_t cap);

// Supervisor side: answer the pending request. Returns false if the instance
// end is gone (it then dies or has died; the pidfd tells).
bool channel_reply(int fd, cs_error_t status) noexcept;

} // namespace sam
