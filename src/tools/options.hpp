// SPDX-License-Identifier: BSD-3-Clause
// options.hpp - sam-run's command line: what the user asked for, parsed and
// validated before anything is started. A parse error is reported once, with
// exit status 2, so scripts can tell "bad usage" from "the program failed".
#pragma once

#include <signal.h>

#include <optional>
#include <string>
#include <vector>

#include "base.hpp"
#include "listen.hpp"

namespace samrun {

constexpr int kExitUsage = 2;
constexpr int kExitCannotExecute = 126;
constexpr int kExitNotFound = 127;
// --max-restarts was exceeded: sam-run gave up. Above every 128+signal
// status (192 for SIGRTMAX), below systemd's own 200-243, outside
// sysexits.h's 64-78: a service manager can tell it from the program's
// failures and from sam-run's own 2/125/126/127.
constexpr int kExitGaveUp = 199;

// Most --listen sockets, and most --fdstore-max: every one is a descriptor
// of the program, within its RLIMIT_NOFILE (commonly 1024).
constexpr size_t kMaxListen = 64;
constexpr unsigned long kMaxFdStore = 1024;

enum class Policy { Restart, Quit };

struct Options {
    int interval_ms = 1000;
    Policy policy = Policy::Restart;
    bool quorum = false;
    bool cmap = false;
    int warn_signal = 0; // 0: the library's default (SIGTERM)
    // Back-off tunables, validated here, handed to the library as SAM_RESTART_*.
    std::optional<unsigned long> restart_burst;
    std::optional<unsigned long> restart_delay_ms;
    std::optional<unsigned long> restart_delay_max_ms;
    std::optional<unsigned long> restart_reset_ms;
    std::optional<unsigned long> max_restarts; // default: unlimited
    unsigned long restart_window_s = 0;        // 0: the whole run
    // --quorum-loss give-up: after the program was stopped for a quorum loss,
    // sam-run exits (kExitGaveUp) instead of waiting for quorum to start it
    // again, so that a cluster manager that moved it elsewhere meanwhile
    // never finds it started here again when the partition heals.
    bool quorum_loss_gives_up = false;
    // Default: none. With --check the first check must then pass within the
    // interval; with --notify nothing is timed before READY=1.
    std::optional<int> start_timeout_ms;
    std::optional<std::string> on_event; // --on-event: sh -c CMD per state change
    int event_timeout_ms = 10000;        // a hook still running then is killed
    std::optional<std::string> check_command;
    std::optional<int> check_timeout_ms; // default: half the interval, at least 1 ms
    bool notify = false;
    std::optional<std::string> notify_socket; // default: a path in a private directory
    std::vector<ListenAddress> listen;        // --listen, in the order given
    unsigned long fdstore_max = 64;           // FDSTORE=1 descriptors kept at most
    bool status = false;
    bool json = false;
    std::vector<std::string> command;

    // The signal that warns an unhealthy program: the one asked for, or the
    // library's default.
    [[nodiscard]] int warn_signal_or_default() const { return warn_signal != 0 ? warn_signal : SIGTERM; }
};

enum class ParseOutcome { Run, Status, Help, Version, Error };

struct ParseResult {
    ParseOutcome outcome = ParseOutcome::Error;
    Options options;
    std::string error; // set when outcome == Error
};

[[nodiscard]] ParseResult parse_options(int argc, char **argv);

void print_usage(FILE *out);

} // namespace samrun
