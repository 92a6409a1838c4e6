// SPDX-License-Identifier: BSD-3-Clause
// state.hpp - the one process-wide state object of the library.
//
// Owned in one place (Library::get()), guarded by one mutex. The part used
// in an instance (channel to the supervisor, heartbeat page, callback thread)
// is kept apart from what the supervisor-to-be sets up (policy, interval,
// quorum connection). `state` is also mirrored in an atomic so that
// sam_hc_send() can check it without taking the lock.
#pragma once

#include <atomic>
#include <csignal>
#include <cstdint>
#include <memory>
#include <mutex>

#include <corosync/sam.h>

#include "backoff.hpp"
#include "datastore.hpp"
#include "fd.hpp"
#include "health.hpp"

namespace sam {

enum class ApiState : int {
    NotInitialized,
    Initialized,
    Registered,
    Started,
    Finalized,
    Supervising, // this process is a supervisor: sam_register() never returned here
};

class HcCallbackThread; // instance.hpp
class QuorumWatch;      // quorum_watch.hpp

struct Policy {
    unsigned raw = 0;
    [[nodiscard]] bool quit() const noexcept { return (raw & 0x07U) == SAM_RECOVERY_POLICY_QUIT; }
    [[nodiscard]] bool restart() const noexcept { return (raw & 0x07U) == SAM_RECOVERY_POLICY_RESTART; }
    [[nodiscard]] bool quorum() const noexcept { return (raw & SAM_RECOVERY_POLICY_QUORUM) != 0; }
    [[nodiscard]] bool cmap() const noexcept { return (raw & SAM_RECOVERY_POLICY_CMAP) != 0; }
};

// What an instance needs to talk to its supervisor.
struct InstanceSide {
    UniqueFd channel;
    // Shared with the supervisor; never unmapped while the process lives, so a
    // beat racing with sam_finalize() cannot touch freed memory.
    std::shared_ptr<HeartbeatPage> page;
    unsigned instance_id = 0;
    std::shared_ptr<HcCallbackThread> callback_thread;
    // Medium stores are read by the supervisor out of our memory until it
    // answers that it may not (ptrace rules, seccomp): then memfds.
    bool remote_store = true;
    // The page's data slot: the last sequence number written into it, and
    // whether this process may check its own memory (see fill_slot()).
    uint64_t slot_seq = 0;
    bool slot_usable = true;
    // Pages an earlier store read without a fault, copied without a check.
    struct PageRange {
        uintptr_t first = 0, last = 0;
    };
    static constexpr unsigned kReadableRanges = 4;
    PageRange readable[kReadableRanges];
    unsigned readable_next = 0;
};

struct Library {
    static Library &get() noexcept;

    void set_state(ApiState s) noexcept {
        state = s;
        hot_state.store(s, std::memory_order_release);
    }

    std::mutex mu;
    ApiState state = ApiState::NotInitialized;
    std::atomic<ApiState> hot_state{ApiState::NotInitialized};

    // Set by sam_initialize().
    Policy policy;
    int interval_ms = 0;
    BackoffConfig backoff;
    std::atomic<int> warn_signal{SIGTERM};
    std::shared_ptr<QuorumWatch> quorum; // QUORUM policy: connected before register

    // The stored data (this process's copy; the supervisor's is authoritative).
    DataStore data;

    // Instance count so far (ids start at 1).
    unsigned last_instance_id = 0;

    InstanceSide instance;
};

} // namespace sam
