// SPDX-License-Identifier: BSD-3-Clause
// sam-run.cpp - entry point: parse the command line, then either print the
// cluster's view (--status) or put COMMAND under libsam supervision. After
// sam_register() this process is libsam's supervisor and never returns here;
// the child continues in the relay (relay.cpp).
#include <corosync/sam.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "config.h"
#include "containment.hpp"
#include "fdstore.hpp"
#include "keeper.hpp"
#include "listen.hpp"
#include "log.hpp"
#include "notify.hpp"
#include "options.hpp"
#include "private_dir.hpp"
#include "process.hpp"
#include "relay.hpp"
#include "status.hpp"

using namespace samrun;

namespace {

constexpr int kExitInternal = 125;

void export_number(const char *name, const std::optional<unsigned long> &value) {
    if (value) {
        setenv(name, std::to_string(*value).c_str(), 1);
    }
}

int policy_bits(const Options &opts) {
    int bits = opts.policy == Policy::Quit ? SAM_RECOVERY_POLICY_QUIT : SAM_RECOVERY_POLICY_RESTART;
    if (opts.quorum) {
        bits |= SAM_RECOVERY_POLICY_QUORUM;
    }
    if (opts.cmap) {
        bits |= SAM_RECOVERY_POLICY_CMAP;
    }
    return bits;
}

int supervise(const Options &opts) {
    std::string path, error;
    int resolved = resolve_command(opts.command.front(), path, error);
    if (resolved != 0) {
        fprintf(stderr, "sam-run: %s\n", error.c_str());
        return resolved;
    }
    log_set_pid(getpid());

    // Before anything runs: an address that cannot be had is the user's
    // to fix (exit 2), and no program should start without its sockets.
    ListenSockets listening;
    if (std::string why; !listening.open(opts.listen, why)) {
        fprintf(stderr, "sam-run: %s\n", why.c_str());
        return kExitUsage;
    }

    // Our own service manager's socket is for us (the relay reports to it);
    // the program gets ours with --notify, or none.
    auto upstream = std::make_unique<UpstreamNotifier>(UpstreamNotifier::from_environment());
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");

    // The library reads its back-off tunables at sam_initialize.
    export_number("SAM_RESTART_BURST", opts.restart_burst);
    export_number("SAM_RESTART_DELAY_MS", opts.restart_delay_ms);
    export_number("SAM_RESTART_DELAY_MAX_MS", opts.restart_delay_max_ms);
    export_number("SAM_RESTART_RESET_MS", opts.restart_reset_ms);
    // A command-line tool reports on stderr (the journal under systemd),
    // unless the user chose otherwise.
    setenv("SAM_LOG_STDERR", "1", 0);

    // A reader that went away must not kill us in the middle of a log line.
    signal(SIGPIPE, SIG_IGN);

    // Forked now, while this is the only thread, and before anything it
    // should not hold is opened.
    UniqueFd keeper;
    try {
        KeeperSetup keeper_setup;
        keeper_setup.history = opts.cmap;
        keeper_setup.event_hook = opts.on_event;
        keeper_setup.event_timeout_ms = opts.event_timeout_ms;
        keeper_setup.socket_files = listening.files();
        keeper = start_keeper(keeper_setup);
    } catch (const std::system_error &e) {
        fprintf(stderr, "sam-run: cannot start the keeper: %s\n", e.what());
        return kExitInternal;
    }
    listening.hand_over_files();
    UniqueFd fdstore;
    if (opts.notify && opts.fdstore_max > 0) {
        try {
            fdstore = start_fd_store(opts.fdstore_max);
        } catch (const std::system_error &e) {
            fprintf(stderr, "sam-run: cannot start the file descriptor store: %s\n", e.what());
            return kExitInternal;
        }
    }
    std::optional<std::string> cgroup_parent = manageable_cgroup();

    std::unique_ptr<NotifyServer> notify;
    std::optional<PrivateSocketDir> private_dir;
    if (opts.notify) {
        try {
            if (!opts.notify_socket) {
                private_dir = PrivateSocketDir::create();
            }
            notify = std::make_unique<NotifyServer>(opts.notify_socket.value_or(private_dir->socket_path()));
        } catch (const std::system_error &e) {
            fprintf(stderr, "sam-run: %s\n", e.what());
            return kExitInternal;
        }
        if (private_dir) {
            // Now, while this is the only thread of the process.
            private_dir->start_janitor();
        }
    }

    cs_error_t err = sam_initialize(opts.interval_ms, static_cast<sam_recovery_policy_t>(policy_bits(opts)));
    if (err != CS_OK) {
        fprintf(stderr, "sam-run: sam_initialize failed (error %d)%s\n", static_cast<int>(err),
                opts.quorum || opts.cmap ? ": is corosync running?" : "");
        return kExitInternal;
    }
    if (opts.warn_signal != 0) {
        err = sam_warn_signal_set(opts.warn_signal);
        if (err != CS_OK) {
            fprintf(stderr, "sam-run: sam_warn_signal_set failed (error %d)\n", static_cast<int>(err));
            return kExitInternal;
        }
    }
    pid_t supervisor = getpid();
    unsigned int instance_id = 0;
    err = sam_register(&instance_id);
    if (err != CS_OK) {
        fprintf(stderr, "sam-run: sam_register failed (error %d)\n", static_cast<int>(err));
        return kExitInternal;
    }
    // From here on we are the instance.
    RelaySetup setup;
    setup.options = &opts;
    setup.program_path = path;
    setup.instance_id = instance_id;
    setup.supervisor_pid = supervisor;
    setup.upstream = upstream.get();
    setup.notify = notify.get();
    setup.keeper_channel = keeper.get();
    setup.cgroup_parent = cgroup_parent;
    setup.listen = &listening;
    setup.fdstore_channel = fdstore.get();
    run_relay(setup);
}

} // namespace

int main(int argc, char **argv) {
    ParseResult parsed = parse_options(argc, argv);
    switch (parsed.outcome) {
    case ParseOutcome::Help:
        print_usage(stdout);
        return 0;
    case ParseOutcome::Version:
        printf("sam-run (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
        return 0;
    case ParseOutcome::Error:
        fprintf(stderr, "sam-run: %s\nTry 'sam-run --help' for more information.\n", parsed.error.c_str());
        return kExitUsage;
    case ParseOutcome::Status:
        return print_status(parsed.options.json);
    case ParseOutcome::Run:
        break;
    }
    try {
        return supervise(parsed.options);
    } catch (const std::exception &e) {
        fprintf(stderr, "sam-run: %s\n", e.what());
        return kExitInternal;
    }
}
