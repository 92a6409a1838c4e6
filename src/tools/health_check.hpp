// SPDX-License-Identifier: BSD-3-Clause
// health_check.hpp - `--check CMD`: the command run through libsam's
// event-driven health-check callback. The library calls the callback from its
// own thread about once per interval; we run `sh -c CMD`, give it a bounded
// time, and answer healthy (0) only for exit status 0.
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <atomic>

#include <memory>
#include <mutex>
#include <string>

#include "base.hpp"
#include "notify.hpp"
#include "process.hpp"

namespace samrun {

class HealthCheck {
  public:
    HealthCheck(std::string command, int timeout_ms, const UpstreamNotifier &upstream);

    // Called once the program runs: the check sees SAM_RUN_PID=<its pid>.
    void set_program(pid_t pid);

    // --start-timeout: until the first check passes, failures within
    // `grace_ms` from now are not reported to libsam.
    void start_grace(int grace_ms);

    // 0 = healthy. Runs in libsam's callback thread.
    [[nodiscard]] int run();

    // Did the last check fail? (read from the relay's thread)
    [[nodiscard]] bool unhealthy() const { return failures_in_a_row_.load() != 0; }

    // Registers with sam_hc_callback_register; one check per process.
    [[nodiscard]] static int register_callback(HealthCheck *check);

  private:
    static int callback();
    [[nodiscard]] int run_once();

    std::string command_;
    int timeout_ms_;
    const UpstreamNotifier &upstream_;
    UniqueFd dev_null_;
    std::unique_ptr<ExecVector> argv_;
    std::mutex mutex_;                 // guards envp_
    std::shared_ptr<ExecVector> envp_; // null until the program runs
    std::atomic<unsigned> failures_in_a_row_{0};
    std::atomic<uint64_t> grace_until_ms_{0}; // CLOCK_MONOTONIC; 0: none
    bool passed_once_ = false;                // callback thread only
};

} // namespace samrun
