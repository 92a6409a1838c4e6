// SPDX-License-Identifier: BSD-3-Clause
// descriptor_sink.hpp - where the supervisor sends the descriptors it must not
// close itself.
//
// The last close() of a descriptor can take as long as whoever is behind it
// likes: a TCP socket with SO_LINGER waits for its FIN to leave, a FUSE file
// for its daemon to answer FLUSH, an NFS file for its server, a tty for its
// output to drain, and a unix socket closes whatever is queued in it along
// with itself. Signals do not cut that short in the supervisor, which blocks
// them. So a descriptor another process chose (anything an instance passed,
// except the sealed memfd the supervisor has mapped, which that mapping keeps
// open) is never closed on the loop's thread: it goes over a socket pair to a
// sink, a small process that closes it.
//
// The sink is forked at the first such descriptor, makes only system calls,
// keeps no other descriptor of ours, and dies with the supervisor
// (PR_SET_PDEATHSIG). It closes a descriptor only once the next message
// arrives, which the supervisor sends after closing its own copy: so the
// sink's close is always the last one, never ours. A sink stuck in a close
// stops draining; when its (deliberately small) socket buffer stays full for
// a few milliseconds it is killed and replaced, and the descriptors it still
// held are closed as it exits, in its own time.
#pragma once

#include <array>

#include <sys/types.h>

#include "fd.hpp"

namespace sam {

class DescriptorSink {
  public:
    DescriptorSink() = default;
    ~DescriptorSink();
    DescriptorSink(const DescriptorSink &) = delete;
    DescriptorSink &operator=(const DescriptorSink &) = delete;

    // Hands `fd` to the sink; never blocks. Returns false (errno set) if no
    // sink could take it: the descriptor is then left open for good rather
    // than closed here.
    bool dispose(UniqueFd fd) noexcept;

    // In a new instance: lets go of our end without touching the sink, which
    // belongs to the supervisor.
    void abandon_in_child() noexcept;

  private:
    bool spawn() noexcept;
    bool hand_over(int fd) noexcept;
    void retire() noexcept;
    void reap_retired() noexcept;

    UniqueFd sock_;
    pid_t pid_ = -1;
    // Sinks killed for not draining, not reaped yet (a close may still hold them).
    std::array<pid_t, 4> retired_{-1, -1, -1, -1};
};

} // namespace sam
