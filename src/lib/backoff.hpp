// SPDX-License-Identifier: BSD-3-Clause
// backoff.hpp - crash-loop back-off for the RESTART policy.
//
// The first `burst` quick failures restart at once; after that each restart
// waits `delay_ms`, doubling up to `delay_max_ms`. An instance that ran at
// least `reset_ms` before failing starts a new series. Pure logic, no clock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sam {

struct BackoffConfig {
    // Defaults, written once; sam_initialize() may override them from the
    // environment (see read_backoff_config()).
    uint64_t burst = 3;            // SAM_RESTART_BURST
    uint64_t delay_ms = 100;       // SAM_RESTART_DELAY_MS (0: no back-off at all)
    uint64_t delay_max_ms = 10000; // SAM_RESTART_DELAY_MAX_MS
    uint64_t reset_ms = 10000;     // SAM_RESTART_RESET_MS
};

// Reads the SAM_RESTART_* variables through `getenv_fn` (getenv in real use).
// Invalid values are ignored; a line saying so is appended to `complaints`.
BackoffConfig read_backoff_config(const char *(*getenv_fn)(const char *), std::vector<std::string> &complaints);

// Parses a decimal number of at most 2^53; false for anything else.
bool parse_tunable(const char *text, uint64_t &out) noexcept;

class RestartBackoff {
  public:
    explicit RestartBackoff(BackoffConfig config) noexcept : config_(config) {}

    // An instance failed after running `ran_for_ms`; returns how long to wait
    // before the next one is started.
    [[nodiscard]] uint64_t on_failure(uint64_t ran_for_ms) noexcept;

    [[nodiscard]] uint64_t quick_failures() const noexcept { return quick_failures_; }
    [[nodiscard]] const BackoffConfig &config() const noexcept { return config_; }

  private:
    BackoffConfig config_;
    uint64_t quick_failures_ = 0;
};

} // namespace sam
