// SPDX-License-Identifier: BSD-3-Clause
// history.hpp - what `sam-run --status` shows about each supervised program
// beyond libsam's own keys: restarts so far, the last failure's cause and
// time, since when the current instance runs, and what holds the program
// (cgroup or process group). Published with --cmap under sam-run's own
// prefix, samrun.<supervisor pid>.*: libsam's resources.process.<pid>.* is
// watched by corosync's watchdog service, which must only see its keys.
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

namespace samrun {

// Where sam-run's keys live in cmap.
constexpr const char *kHistoryPrefix = "samrun.";

struct History {
    unsigned instance = 0;
    uint32_t restarts = 0;
    std::string containment;                 // "cgroup" or "process group"
    uint64_t instance_started_ns = 0;        // CLOCK_MONOTONIC
    std::optional<std::string> last_failure; // cause, e.g. "exit 3"
    uint64_t last_failure_ns = 0;            // CLOCK_REALTIME, ns since the epoch
    std::optional<std::string> state;        // "failed": --max-restarts gave up
};

// The relay's writer; silent when corosync cannot be reached (libsam
// reports that already).
class HistoryPublisher {
  public:
    explicit HistoryPublisher(pid_t supervisor);
    ~HistoryPublisher();
    HistoryPublisher(const HistoryPublisher &) = delete;
    HistoryPublisher &operator=(const HistoryPublisher &) = delete;

    void publish(const History &history);

  private:
    struct Connection;
    std::string prefix_;
    std::unique_ptr<Connection> cmap_;
};

// Deletes samrun.<supervisor>.* unless sam-run gave up (our state "failed")
// or libsam left its keys behind (its state "failed"): then the history
// explains the failure. For the keeper, at the end.
void remove_history(pid_t supervisor);

} // namespace samrun
