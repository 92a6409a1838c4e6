// SPDX-License-Identifier: BSD-3-Clause
// instance.hpp - what sam_* calls do inside an instance: requests to the
// supervisor over the channel, and the health-callback thread.
//
// The functions here are called by api.cpp with Library::mu held and the
// state already checked.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include <corosync/sam.h>

#include "state.hpp"

namespace sam {

[[nodiscard]] cs_error_t instance_start(Library &lib);
[[nodiscard]] cs_error_t instance_stop(Library &lib);
[[nodiscard]] cs_error_t instance_data_store(Library &lib, const void *data, size_t size);
[[nodiscard]] cs_error_t instance_warn_signal_set(Library &lib, int sig);
[[nodiscard]] cs_error_t instance_mark_failed(Library &lib);

// The heartbeat itself: lock-free, no system call. CS_ERR_BAD_HANDLE when the
// instance is not started, CS_ERR_LIBRARY once its supervisor is gone (the
// beat is still written: nobody reads it).
[[nodiscard]] cs_error_t instance_beat(Library &lib) noexcept;

// Library thread behind sam_hc_callback_register(): while the instance is
// started it beats every interval/4 and calls the callback every interval. It
// sleeps on a condition variable while stopped: no polling, no wake-ups.
//
// The callback may call sam_finalize(), which destroys this object while the
// thread is still inside the callback: what the thread touches afterwards
// lives in a Shared block that the thread co-owns, so it outlives us.
class HcCallbackThread {
  public:
    HcCallbackThread(Library &lib, uint64_t interval_ms, sam_hc_callback_t cb);
    ~HcCallbackThread();
    HcCallbackThread(const HcCallbackThread &) = delete;
    HcCallbackThread &operator=(const HcCallbackThread &) = delete;

    void replace_callback(sam_hc_callback_t cb);
    void set_started(bool started);
    // Ends the thread (joins it, or detaches when called from the callback).
    void shutdown();

  private:
    struct Shared {
        Shared(Library &l, uint64_t tick, sam_hc_callback_t c) : lib(l), tick_ms(tick), cb(c) {}
        Library &lib;
        const uint64_t tick_ms;
        std::mutex m;
        std::condition_variable cv;
        sam_hc_callback_t cb;
        bool started = false;
        bool unhealthy = false; // the callback said so: no beats until the next start
        bool stopping = false;
    };
    static void run(const std::shared_ptr<Shared> &s);

    std::shared_ptr<Shared> shared_;
    std::thread thread_;
};

} // namespace sam
