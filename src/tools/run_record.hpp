// SPDX-License-Identifier: BSD-3-Clause
// run_record.hpp - what sam-run keeps in libsam's data store: how many
// instances failed and were restarted, how the previous one ended, why the
// last failure happened and when, and the restarts counted against
// --max-restarts. The data lives in the supervisor, so it survives every
// restart; each instance reads it at start and hands it to the program
// (SAM_RUN_FAILURES, SAM_RUN_PREVIOUS_END) and to --status (cmap).
#pragma once

#include <signal.h>
#include <stdint.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace samrun {

// Why an instance failed, as far as the relay can tell.
enum class FailureCause : int32_t {
    None = 0,
    Exit = 1,           // non-zero exit status (value: the code)
    Signal = 2,         // killed by a signal (value: the signal)
    MissedDeadline = 3, // no health signal in time: warned, then killed
    QuorumLoss = 4,     // the cluster lost quorum
    CheckFailed = 5,    // --check failed
    Triggered = 6,      // WATCHDOG=trigger
    NotReady = 7,       // no first health signal within --start-timeout
};

// "exit 3", "signal SEGV", "missed deadline", "check failed", ...
[[nodiscard]] std::string describe_cause(FailureCause cause, int32_t value);

// Where the record is kept between instances.
struct RecordStore {
    // Fills `size` bytes at `data`; false when nothing of that size is kept.
    std::function<bool(void *data, size_t size)> load;
    // Keeps `size` bytes; a failure is the store's to report.
    std::function<void(const void *data, size_t size)> save;
};

// libsam's data store (run_record_store.cpp): the supervisor keeps it across
// restarts, which is what makes the record outlive each instance.
[[nodiscard]] RecordStore libsam_record_store();

class RunRecord {
  public:
    RunRecord() : RunRecord(libsam_record_store()) {}
    explicit RunRecord(RecordStore store) : store_(std::move(store)) {}

    // Restores the record (a missing or foreign one starts afresh) and marks
    // this instance as running: if it never records an end, the next
    // instance knows that it was killed (and why, if it was warned).
    void begin_instance();
    // How the program of this instance ended; `failed` counts it, with its
    // cause (None: the exit status or signal itself).
    void record_end(const siginfo_t &info, bool failed, FailureCause cause = FailureCause::None);
    // The program could not be executed: the exit status given instead.
    void record_exit_status(int status);
    // The supervisor warned us for this reason: what the next instance
    // reports if this relay is then killed without recording an end.
    void record_warning(FailureCause cause);

    // Counts this instance, if it is a restart, against at most
    // `max_restarts` in `window_ms` (0: ever); true when it would exceed
    // the limit (then it is not counted as a restart).
    [[nodiscard]] bool over_restart_limit(unsigned long max_restarts, uint64_t window_ms);

    [[nodiscard]] uint32_t failures() const { return data_.failures; }
    // The cause of the last failure (None before the first).
    [[nodiscard]] FailureCause last_cause() const { return static_cast<FailureCause>(data_.cause); }
    // Did an instance run before this one (is this a restart)?
    [[nodiscard]] bool restarted() const { return restarted_; }
    [[nodiscard]] uint32_t restarts() const { return data_.restarts; }
    // Restarts counted in the current window (--max-restarts).
    [[nodiscard]] uint32_t window_restarts() const { return data_.window_restarts; }
    // "exit 3", "signal SEGV", "killed by the supervisor", or empty.
    [[nodiscard]] const std::string &previous_end() const { return previous_end_; }
    // The last failure: cause text and wall-clock time in ms since the
    // epoch; nothing before the first failure.
    [[nodiscard]] std::optional<std::string> last_failure() const;
    [[nodiscard]] uint64_t last_failure_ms() const { return data_.failed_at_ms; }

  private:
    // The stored layout, versioned by its magic.
    struct Data {
        char magic[8];
        uint32_t failures;
        int32_t last_kind;
        int32_t last_value;
        uint32_t restarts;
        uint32_t window_restarts;
        uint32_t reserved;
        uint64_t window_start_ms; // CLOCK_MONOTONIC
        int32_t cause;            // FailureCause of the last failure
        int32_t cause_value;
        uint64_t failed_at_ms; // CLOCK_REALTIME
        int32_t warned_cause;  // set by a warning, for a relay then killed
        uint32_t reserved2;
    };
    enum Kind : int32_t {
        kNone = 0,
        kRunning = 1, // never updated: the relay was killed
        kExited = 2,
        kSignaled = 3,
    };

    void note_failure(FailureCause cause, int32_t value);
    void save();

    RecordStore store_;
    Data data_{};
    bool restarted_ = false; // a previous instance ran
    std::string previous_end_;
};

} // namespace samrun
