// SPDX-License-Identifier: BSD-3-Clause
// event_hooks.hpp - `--on-event CMD`: `sh -c CMD` on each state change of
// the supervised program, with the facts in its environment (SAM_EVENT,
// SAM_PID, SAM_INSTANCE, SAM_REASON, SAM_EXIT_CODE or SAM_SIGNAL,
// SAM_RESTARTS). Hooks run in the keeper, never in the relay or the
// supervisor: a slow or stuck hook cannot delay supervision. Each runs in a
// process group of its own, is killed with it after the event timeout, and
// its failure is only logged.
#pragma once

#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "base.hpp"

namespace samrun {

class EventHooks {
  public:
    EventHooks(std::string command, int timeout_ms) : command_(std::move(command)), timeout_ms_(timeout_ms) {}

    // Starts the hook with these extra "NAME=value" entries (first
    // SAM_EVENT=...). Logs and gives up when it cannot be started.
    void run(const std::vector<std::string> &facts);

    // For the keeper's poll(): one entry per running hook, appended.
    void add_pollfds(std::vector<pollfd> &fds) const;
    // After poll(): reaps the hooks that ended and kills the late ones;
    // `fds` from `first` on are those add_pollfds() added.
    void handle(const std::vector<pollfd> &fds, size_t first);
    // Milliseconds until the next hook is due to be killed, -1 if none.
    [[nodiscard]] int next_timeout_ms() const;
    [[nodiscard]] bool idle() const { return running_.empty(); }

  private:
    struct Running {
        pid_t pid = 0;
        UniqueFd pidfd;
        uint64_t deadline_ms = 0;
        std::string event;
    };

    std::string command_;
    int timeout_ms_;
    std::vector<Running> running_;
};

} // namespace samrun
