// SPDX-License-Identifier: BSD-3-Clause
// descriptor_sink.hpp - getting rid of descriptors that other processes chose
// (SCM_RIGHTS on the notify socket) without ever closing them in the relay.
//
// The last close() of a file runs its release in the closing process: a TCP
// socket with SO_LINGER waits for its FIN, a FUSE or NFS file is flushed, a
// terminal drains its output. Any of these can take seconds, or as long as
// the sender likes; a relay stuck there sends no health check and its
// healthy program is killed. So descriptors go to a sink, a small child
// process that does nothing but close them; the relay only drops references
// that are never the last one. A sink that blocks is replaced, so one
// hanging file cannot stop the next ones from going away.
#pragma once

#include <sys/types.h>

#include <vector>

#include "base.hpp"

namespace samrun {

// Most descriptors one datagram can carry (the kernel's SCM_MAX_FD).
constexpr int kMaxPassedFds = static_cast<int>(sam::kMaxFdsPerMessage);

class DescriptorSink {
  public:
    DescriptorSink() = default;
    DescriptorSink(const DescriptorSink &) = delete;
    DescriptorSink &operator=(const DescriptorSink &) = delete;
    DescriptorSink(DescriptorSink &&) = default;
    DescriptorSink &operator=(DescriptorSink &&) = default;

    // Takes the descriptors just received (at most kMaxPassedFds) and makes
    // them go away without a blocking close() in this process. `stranger`:
    // they come from a sender that may not send; their sockets are reset
    // first (SO_LINGER {1,0}: close() aborts the connection at once), so
    // that a flood of lingering sockets keeps no sink busy either.
    void dispose(const std::vector<int> &fds, bool stranger);

  private:
    [[nodiscard]] bool start();
    void retire();
    void reap_retired();
    [[nodiscard]] bool hand_over(const std::vector<int> &fds);

    UniqueFd channel_; // our end of the sink's SOCK_SEQPACKET pair
    pid_t pid_ = -1;
    std::vector<pid_t> retired_; // sinks still busy with what they got
    // Descriptors no sink could take (every sink busy, or fork failed).
    // Kept open, never closed here, handed over at the next dispose(); if
    // the relay ends first, the kernel closes them as it exits, which is the
    // one place left where they can hold it up. Reaching that takes a sender
    // allowed on the socket with as many files that never close as there
    // may be sinks at once (8).
    std::vector<int> parked_;
    bool parked_logged_ = false; // said once per episode, not per datagram
};

} // namespace samrun
