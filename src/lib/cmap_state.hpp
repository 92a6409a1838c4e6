// SPDX-License-Identifier: BSD-3-Clause
// cmap_state.hpp - the supervisor's keys in corosync's cmap.
//
// Keys live under resources.process.<supervisor pid>.: recovery (string),
// poll_period (u64 ms), last_updated (u64, CLOCK_MONOTONIC ns as
// cs_timestamp_get() gives), state (string). This class remembers what it
// published so that everything can be written again after a reconnect.
// Calls block on corosync's IPC: only the link process uses it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <corosync/cmap.h>

namespace sam {

class CmapState {
  public:
    // Connects and creates `recovery` and `poll_period`. Returns nullptr with
    // `error` set when corosync cannot be reached or the keys cannot be written.
    static std::unique_ptr<CmapState> create(long supervisor_pid, const char *recovery, uint64_t poll_period_ms,
                                             cs_error_t &error);
    // The same keys, not connected yet: reconnect() creates them.
    static std::unique_ptr<CmapState> offline(long supervisor_pid, const char *recovery, uint64_t poll_period_ms);
    ~CmapState();
    CmapState(const CmapState &) = delete;
    CmapState &operator=(const CmapState &) = delete;

    [[nodiscard]] cs_error_t set_state(const char *state);
    [[nodiscard]] cs_error_t set_last_updated(uint64_t stamp_ns);
    [[nodiscard]] cs_error_t delete_keys();
    // Drops the connection and makes a new one, then writes every key again.
    [[nodiscard]] cs_error_t reconnect();
    [[nodiscard]] bool connected() const noexcept { return handle_ != 0; }
    // The connection's descriptor (-1 when not connected): it becomes readable
    // when corosync goes away, and dispatch() then reports the error.
    [[nodiscard]] int fd() const noexcept;
    [[nodiscard]] cs_error_t dispatch();
    [[nodiscard]] const std::string &prefix() const noexcept { return prefix_; }
    void disconnect() noexcept;

  private:
    CmapState() = default;
    [[nodiscard]] cs_error_t connect();
    [[nodiscard]] cs_error_t write_all();
    // The full key names, made once.
    struct Keys {
        std::string recovery, poll_period, last_updated, state;
    };

    cmap_handle_t handle_ = 0;
    std::string prefix_;
    Keys keys_;
    std::string recovery_;
    uint64_t poll_period_ms_ = 0;
    std::string state_;         // last state written (empty: none yet)
    uint64_t last_updated_ = 0; // last stamp written (0: none yet)
};

} // namespace sam
