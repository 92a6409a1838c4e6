// SPDX-License-Identifier: BSD-3-Clause
// log_ring.hpp - the supervisor's pending log lines: a fixed number of
// fixed-size slots, so queueing a line never allocates and the queue cannot
// grow while its reader (a syslog daemon, whoever reads stderr) is stuck.
//
// A line that finds every slot taken is dropped and counted. As soon as a
// slot is free again, a line "N log lines dropped" takes it, so the count
// appears where the lines went missing: after the older lines, before the
// newer ones.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>

namespace sam {

class LogRing {
  public:
    static constexpr size_t kSlots = 32;
    static constexpr size_t kTextMax = 256; // longer texts are cut

    struct Line {
        int priority;
        char text[kTextMax];
    };

    LogRing() = default;
    LogRing(const LogRing &) = delete;
    LogRing &operator=(const LogRing &) = delete;

    // False when the line was dropped (and counted).
    bool push(int priority, const char *format, ...) noexcept __attribute__((format(printf, 3, 4)));
    bool vpush(int priority, const char *format, va_list ap) noexcept __attribute__((format(printf, 3, 0)));

    [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
    [[nodiscard]] size_t size() const noexcept { return count_; }
    // The oldest line; only when !empty().
    [[nodiscard]] const Line &front() const noexcept { return slots_[head_]; }
    void pop() noexcept;

    // Dropped since the last notice was queued.
    [[nodiscard]] uint64_t dropped() const noexcept { return dropped_; }
    // Dropped in all (for tests and the curious).
    [[nodiscard]] uint64_t dropped_total() const noexcept { return dropped_total_; }

  private:
    Line &append() noexcept;
    void note_drops() noexcept;

    Line slots_[kSlots];
    size_t head_ = 0;
    size_t count_ = 0;
    uint64_t dropped_ = 0;
    uint64_t dropped_total_ = 0;
};

} // namespace sam
