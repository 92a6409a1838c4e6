// SPDX-License-Identifier: BSD-3-Clause
// keeper.hpp - ends what a relay cannot. libsam's supervisor kills a hung
// instance (the relay) with SIGKILL; the program dies with it (parent-death
// signal), but the rest of its process group and cgroup would live on with
// nobody to end them. So before libsam starts, sam-run forks a small keeper.
// Each relay hands it a lifeline (one end of a socket pair) and announces
// each program's group on it; when a lifeline closes, however its relay
// ended, the keeper ends the group that was last announced and not cleared.
// When the supervisor is gone, the keeper ends whatever is left, removes the
// --listen socket files, and exits.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base.hpp"
#include "listen.hpp"

namespace samrun {

struct KeeperSetup {
    bool history = false;                  // remove samrun.<pid>.* at the end
    std::optional<std::string> event_hook; // --on-event (event_hooks.hpp)
    int event_timeout_ms = 0;
    std::vector<SocketFile> socket_files; // --listen unix sockets, removed at the end
};

// Forks the keeper (call while this process has a single thread) and
// returns the channel relays hand their lifelines to. Throws
// std::system_error.
[[nodiscard]] UniqueFd start_keeper(const KeeperSetup &setup);

// The relay's end of its lifeline.
class KeeperLink {
  public:
    KeeperLink() = default;
    // Hands a new lifeline to the keeper over `channel`; false on failure
    // (the relay then cleans up only what it outlives).
    [[nodiscard]] bool connect(int channel);
    // The program of `instance` runs in this group (and cgroup, if any).
    void announce(unsigned instance, pid_t pgid, const std::string &cgroup);
    // The relay ended the group itself: nothing for the keeper to do.
    void clear();
    // A state change for --on-event: SAM_EVENT=`event` and the facts as
    // (NAME, value). Never blocks: dropped if the keeper lags far behind.
    void event(const std::string &event, const std::vector<std::pair<std::string, std::string>> &facts);

  private:
    void send_text(const std::string &text);
    UniqueFd lifeline_;
};

} // namespace samrun
