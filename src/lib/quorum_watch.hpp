// SPDX-License-Identifier: BSD-3-Clause
// quorum_watch.hpp - the connection to corosync's quorum service.
//
// Made by sam_initialize() (so it can report failure and learn the current
// state before returning) and finalized by sam_register() before anything
// is forked; the link process then makes its own, dispatches its
// notifications, answers the supervisor's questions with corosync's current
// answer, and reconnects it after corosync comes back.
#pragma once

#include <cstdint>
#include <memory>

#include <corosync/quorum.h>

namespace sam {

class QuorumWatch {
  public:
    // Connects, starts tracking changes and reads whether we are quorate now.
    static std::shared_ptr<QuorumWatch> create(cs_error_t &error);
    // Not connected yet: reconnect() connects.
    static std::shared_ptr<QuorumWatch> offline();
    ~QuorumWatch();
    QuorumWatch(const QuorumWatch &) = delete;
    QuorumWatch &operator=(const QuorumWatch &) = delete;

    [[nodiscard]] bool quorate() const noexcept { return quorate_; }
    [[nodiscard]] bool connected() const noexcept { return handle_ != 0; }
    [[nodiscard]] int fd() const noexcept { return fd_; }
    // Handles pending notifications. An error means the connection is lost.
    [[nodiscard]] cs_error_t dispatch();
    // Handles every queued notification, then asks corosync whether we are
    // quorate now: an answer no notification still in flight can contradict.
    [[nodiscard]] cs_error_t check();
    [[nodiscard]] cs_error_t reconnect();
    void disconnect() noexcept;

  private:
    QuorumWatch() = default;
    [[nodiscard]] cs_error_t connect();
    static void on_notify(quorum_handle_t handle, uint32_t quorate, uint64_t ring_seq, uint32_t view_entries,
                          uint32_t *view);

    quorum_handle_t handle_ = 0;
    int fd_ = -1;
    bool quorate_ = false;
};

} // namespace sam
