// SPDX-License-Identifier: BSD-3-Clause
// relay.hpp - the SAM instance of sam-run. libsam's sam_register() forks; the
// child runs this relay, which starts the user's program, forwards signals to
// it, turns what it sees (the program alive, notify messages, check results)
// into sam_start/sam_hc_send/sam_stop, and finally leaves exactly the way the
// program left, so the supervisor's policy acts on the program's status.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "listen.hpp"
#include "notify.hpp"
#include "options.hpp"

namespace samrun {

struct RelaySetup {
    const Options *options = nullptr;
    std::string program_path;
    unsigned int instance_id = 0;
    pid_t supervisor_pid = 0;
    const UpstreamNotifier *upstream = nullptr;
    NotifyServer *notify = nullptr;           // only with --notify
    int keeper_channel = -1;                  // where the lifeline goes (keeper.hpp)
    std::optional<std::string> cgroup_parent; // where program cgroups go, if anywhere
    const ListenSockets *listen = nullptr;    // --listen, passed to every program
    int fdstore_channel = -1;                 // --notify: the fd store (fdstore.hpp)
};

[[noreturn]] void run_relay(const RelaySetup &setup);

} // namespace samrun
