// SPDX-License-Identifier: BSD-3-Clause
// signals.hpp - the signals a supervisor passes on to what it supervises,
// signal names both ways, and leaving the way a killed child left.
#pragma once

#include <csignal>
#include <cstddef>
#include <string>

namespace sam {

// What a supervisor forwards to its instance (libsam) or program (sam-run):
// the signals a service manager or a user at a terminal sends to stop,
// reload or poke a service.
constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
constexpr size_t kForwardedCount = sizeof(kForwardedSignals) / sizeof(kForwardedSignals[0]);

// "TERM" for SIGTERM, "RTMIN+2" for a real-time signal, else the number.
[[nodiscard]] std::string signal_name(int sig);

// Accepts "TERM", "SIGTERM", "sigterm", "RTMIN+2", "RTMAX-1" or a number;
// -1 if it names no signal.
[[nodiscard]] int parse_signal(const std::string &text);

// Ends the process by `sig` with its default action, as a child killed by
// it ended, so that whoever waits for us sees the same status. No core
// file of our own: a crash that was the child's is not ours. Falls back to
// exit status 128 + sig for a signal whose default does not end a process.
[[noreturn]] void die_by_signal(int sig) noexcept;

} // namespace sam
