// SPDX-License-Identifier: BSD-3-Clause
// health.hpp - the health-check fast path and the deadline logic.
//
// HeartbeatPage is one page of shared memory (a sealed memfd), created by
// the supervisor before each fork. sam_hc_send() in the instance only stores
// the current CLOCK_MONOTONIC time into it (no system call). The supervisor
// does not poll it: it sleeps on a timerfd until the deadline and reads the
// page then. The page also carries a robust mutex that the supervisor holds
// for as long as it watches the instance: when the supervisor dies the kernel
// marks that mutex's lock word, so sam_hc_send() learns of the death with one
// load. The link process maps the same page read-only (the memfd is passed
// to it) to keep `last_updated` in cmap fresh: it costs the instance nothing.
// The pages after the first hold the small-store slot (data_slot.hpp); the
// link process does not map them.
//
// HealthDeadline is the pure decision logic (no clock, no I/O) so it can be
// unit tested: given the last sign of life and whether the warn signal was
// already sent, when is the next deadline and what happens when it passes.
//
// A silent instance is not always a hung one: when the whole machine stalls
// (a virtual machine not scheduled by its host, realtime processes taking
// every CPU) the instance could not run either. Before each escalation step
// the supervisor therefore asks whether the silence was a stall: its own
// timer firing late, or the instance having waited for a CPU (the kernel's
// run_delay) for a large part of the silence. A stall buys one more interval,
// at most kMaxGraces times per step (a corosync restarting at realtime
// priority can take a small machine's CPUs for over a second), so nothing
// postpones a verdict for long.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>

#include <pthread.h>

#include "data_slot.hpp"
#include "fd.hpp"

namespace sam {

struct alignas(64) HeartbeatShared {
    std::atomic<uint64_t> last_beat_ns; // written by the instance, read by the supervisor
    // Robust and process-shared; locked by the supervisor (see hold()).
    pthread_mutex_t supervisor_alive;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "the heartbeat must be lock-free");

class HeartbeatPage {
  public:
    // Maps a fresh shared page (inherited by the instance over fork).
    [[nodiscard]] static std::optional<HeartbeatPage> create() noexcept;
    // Maps the page of `fd` read-only (the link process); nothing on failure.
    [[nodiscard]] static std::optional<HeartbeatPage> map_readonly(int fd) noexcept;

    HeartbeatPage() = default;
    HeartbeatPage(const HeartbeatPage &) = delete;
    HeartbeatPage &operator=(const HeartbeatPage &) = delete;
    HeartbeatPage(HeartbeatPage &&o) noexcept
        : map_(std::move(o.map_)), held_(std::exchange(o.held_, false)), fd_(std::move(o.fd_)),
          slot_(std::exchange(o.slot_, DataSlot())) {}
    HeartbeatPage &operator=(HeartbeatPage &&o) noexcept {
        if (this != &o) {
            let_go();
            map_ = std::move(o.map_);
            held_ = std::exchange(o.held_, false);
            fd_ = std::move(o.fd_);
            slot_ = std::exchange(o.slot_, DataSlot());
        }
        return *this;
    }
    ~HeartbeatPage() { let_go(); }

    [[nodiscard]] bool valid() const noexcept { return map_.get() != nullptr; }

    // Supervisor side, before the fork. The mutex goes on the calling
    // thread's robust list: when that thread ends (the supervisor dies, however)
    // the kernel sets FUTEX_OWNER_DIED in its lock word. A child inherits no
    // ownership (fork() gives it an empty robust list), so only the
    // supervisor's death marks the page.
    [[nodiscard]] bool hold() noexcept;
    // Unlocks, in the thread that called hold(): a mutex still on a robust
    // list must never be unmapped, since the list runs through it. Done by
    // the destructor too; call it explicitly where another thread may hold
    // the last reference.
    void let_go() noexcept;
    // In the new instance: its copy of held_ describes the supervisor.
    void disown_after_fork() noexcept { held_ = false; }

    // Instance side: one store, no system call.
    void beat(uint64_t now_ns) noexcept { shared()->last_beat_ns.store(now_ns, std::memory_order_release); }
    // Supervisor side: what the instance last wrote (0 = never).
    [[nodiscard]] uint64_t last_beat() const noexcept { return shared()->last_beat_ns.load(std::memory_order_acquire); }
    // Instance side: true once the supervisor died or let the page go. One
    // load of the mutex's lock word, no system call.
    [[nodiscard]] bool supervisor_gone() const noexcept;
    // The small-store slot after the heartbeat page (none when read-only).
    [[nodiscard]] DataSlot slot() const noexcept { return slot_; }
    // The memfd behind the page, to pass to the link (-1 once closed).
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    // The instance keeps the mapping only.
    void close_fd() noexcept { fd_.reset(); }

  private:
    HeartbeatPage(Mapping m, UniqueFd fd, DataSlot slot = DataSlot()) noexcept
        : map_(std::move(m)), fd_(std::move(fd)), slot_(slot) {}
    HeartbeatShared *shared() const noexcept { return static_cast<HeartbeatShared *>(map_.get()); }
    Mapping map_;
    bool held_ = false; // this thread holds supervisor_alive
    UniqueFd fd_;
    DataSlot slot_;
};

// What the supervisor must do when its health timer fires.
enum class HealthVerdict {
    Wait,    // nothing to do before next_deadline()
    Warn,    // send the warn signal
    Kill,    // send SIGKILL
    Corrupt, // the page holds nonsense: kill
    Stalled, // the deadline passed during a stall: one more interval (see above)
};

class HealthDeadline {
  public:
    // interval_ms == 0: nothing is ever timed.
    explicit HealthDeadline(uint64_t interval_ms) noexcept : interval_ns_(ms_to_ns(interval_ms)) {}

    [[nodiscard]] bool timed() const noexcept { return interval_ns_ != 0; }
    [[nodiscard]] uint64_t interval_ns() const noexcept { return interval_ns_; }

    // Health checking begins (sam_start): the start itself is a sign of life.
    void start(uint64_t now_ns) noexcept {
        running_ = true;
        last_life_ns_ = now_ns;
    }
    void stop() noexcept { running_ = false; }
    [[nodiscard]] bool running() const noexcept { return running_; }

    // Any message from the instance, or a newer heartbeat stamp.
    void life(uint64_t at_ns) noexcept {
        if (at_ns > last_life_ns_) {
            // A new silence may be excused again. grace_until_ns_ stays: a
            // stamp taken before the grace began must not pull the deadline
            // back (it never exceeds any later life + interval anyway).
            last_life_ns_ = at_ns;
            graces_ = 0;
        }
    }
    [[nodiscard]] uint64_t last_life() const noexcept { return last_life_ns_; }

    // The warn signal was sent at `now_ns` (once per instance).
    void warned(uint64_t now_ns) noexcept {
        warned_ = true;
        warned_at_ns_ = now_ns;
        grace_until_ns_ = 0;
        graces_ = 0; // the kill step may be excused by stalls too
    }
    [[nodiscard]] bool was_warned() const noexcept { return warned_; }

    // Absolute time of the next decision, or 0 when nothing is timed.
    [[nodiscard]] uint64_t next_deadline() const noexcept {
        if (!running_ || interval_ns_ == 0)
            return 0;
        uint64_t base = last_life_ns_;
        if (warned_ && warned_at_ns_ > base)
            base = warned_at_ns_;
        const uint64_t due = saturating_add(base, interval_ns_);
        return grace_until_ns_ > due ? grace_until_ns_ : due;
    }

    // A pause this long, of the supervisor's timer or of the instance waiting
    // for a CPU, counts as a stall of the machine: half the interval, and
    // never less than kStallMinNs so that ordinary scheduling noise on a busy
    // machine does not postpone a verdict.
    [[nodiscard]] uint64_t stall_threshold() const noexcept {
        const uint64_t half = interval_ns_ / 2;
        return half > kStallMinNs ? half : kStallMinNs;
    }

    // Called when the timer fires, with the heartbeat stamp read from the page
    // and how long the instance waited for a CPU since the supervisor last
    // looked (0 when unknown). A stamp from the future (beyond a small clock
    // slack) means the instance scribbled on the page: that is a failure,
    // never a reason to wait longer.
    [[nodiscard]] HealthVerdict on_timer(uint64_t now_ns, uint64_t page_stamp_ns, uint64_t starved_ns = 0) noexcept {
        if (page_stamp_ns > saturating_add(now_ns, kFutureSlackNs))
            return HealthVerdict::Corrupt;
        life(page_stamp_ns);
        const uint64_t deadline = next_deadline();
        if (deadline == 0 || now_ns < deadline)
            return HealthVerdict::Wait;
        const uint64_t timer_late_ns = now_ns - deadline;
        if (graces_ < kMaxGraces && (timer_late_ns >= stall_threshold() || starved_ns >= stall_threshold())) {
            ++graces_;
            grace_until_ns_ = saturating_add(now_ns, interval_ns_);
            return HealthVerdict::Stalled;
        }
        return warned_ ? HealthVerdict::Kill : HealthVerdict::Warn;
    }

    static constexpr uint64_t kFutureSlackNs = 1000000; // 1 ms
    static constexpr uint64_t kStallMinNs = 100000000;  // 100 ms
    static constexpr unsigned kMaxGraces = 3;           // per escalation step

  private:
    uint64_t interval_ns_;
    bool running_ = false;
    bool warned_ = false;
    uint64_t last_life_ns_ = 0;
    uint64_t warned_at_ns_ = 0;
    uint64_t grace_until_ns_ = 0; // a stall postponed the current step until then
    unsigned graces_ = 0;         // how often the current step was postponed
};

// What the kernel says of the instance's use of the CPU, read from
// /proc/PID/schedstat and /proc/PID/stat at each health decision.
struct CpuSample {
    bool known = false;
    bool runnable = false;     // state R: running, or waiting for a CPU
    uint64_t cpu_ns = 0;       // time spent on a CPU in its life
    uint64_t run_delay_ns = 0; // time spent waiting for one (counted when it gets one)
    uint64_t at_ns = 0;        // when this was read
};
[[nodiscard]] CpuSample read_cpu_sample(int schedstat_fd, int stat_fd, uint64_t now_ns) noexcept;

// How long the instance was kept off the CPU between two samples: waits that
// ended (run delay), plus, when it is runnable now and has had almost no CPU
// since `before`, the whole time since then (a wait still under way is not
// yet in the run delay).
[[nodiscard]] uint64_t starved_between(const CpuSample &before, const CpuSample &now) noexcept;

} // namespace sam
