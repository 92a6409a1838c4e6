// SPDX-License-Identifier: BSD-3-Clause
/*
 * run_record.hpp - what sam-run keeps in libsam's data store: how many
 * instances failed and how the previous one ended. The data lives in the
 * supervisor, so it survives every restart; each instance reads it at start
 * and hands it to the program (SAM_RUN_FAILURES, SAM_RUN_PREVIOUS_END).
 */
#ifndef SAMRUN_RUN_RECORD_HPP
#define SAMRUN_RUN_RECORD_HPP

#include <signal.h>
#include <stdint.h>

#include <string>

namespace samrun {

class RunRecord {
  public:
    /* Restores the record (a missing or foreign one starts afresh) and marks
     * this instance as running: if it never records an end, the next
     * instance knows that it was killed. */
    void begin_instance();
    /* How the program of this instance ended; `failed` counts it. */
    void record_end(const siginfo_t &info, bool failed);
    /* The program could not be executed: the exit status given instead. */
    void record_exit_status(int status);

    [[nodiscard]] uint32_t failures() const { return data_.failures; }
    /* "exit 3", "signal SEGV", "killed by the supervisor", or empty. */
    [[nodiscard]] const std::string &previous_end() const { return previous_end_; }

  private:
    /* The stored layout, versioned by its magic. */
    struct Data {
        char magic[8];
        uint32_t failures;
        int32_t last_kind;
        int32_t last_value;
        uint32_t reserved;
    };
    enum Kind : int32_t {
        kNone = 0,
        kRunning = 1, /* never updated: the relay was killed */
        kExited = 2,
        kSignaled = 3,
    };

    void save();

    Data data_{};
    std::string previous_end_;
};

} // namespace samrun

#endif
