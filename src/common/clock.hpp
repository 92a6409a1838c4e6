// SPDX-License-Identifier: BSD-3-Clause
// clock.hpp - reading clocks in whole nanoseconds or milliseconds, and the
// saturating arithmetic that deadlines computed from them need.
#pragma once

#include <cstdint>
#include <ctime>
#include <limits>

namespace sam {

// `id` (CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME) in nanoseconds.
// Served by the vDSO: no system call.
inline uint64_t clock_ns(clockid_t id) noexcept {
    timespec ts{};
    ::clock_gettime(id, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t clock_ms(clockid_t id) noexcept { return clock_ns(id) / 1000000ULL; }

// CLOCK_MONOTONIC: the clock corosync's cs_timestamp_get() reads, so values
// can be published in cmap as they are.
inline uint64_t monotonic_ns() noexcept { return clock_ns(CLOCK_MONOTONIC); }
inline uint64_t monotonic_ms() noexcept { return clock_ms(CLOCK_MONOTONIC); }

// a + b, clamped at the largest value instead of wrapping.
constexpr uint64_t saturating_add(uint64_t a, uint64_t b) noexcept {
    return (a > std::numeric_limits<uint64_t>::max() - b) ? std::numeric_limits<uint64_t>::max() : a + b;
}

// The earlier of two deadlines, 0 standing for "none".
constexpr uint64_t earlier_deadline(uint64_t a, uint64_t b) noexcept {
    if (a == 0)
        return b;
    return (b == 0 || a < b) ? a : b;
}

constexpr uint64_t ms_to_ns(uint64_t ms) noexcept {
    return (ms > std::numeric_limits<uint64_t>::max() / 1000000ULL) ? std::numeric_limits<uint64_t>::max()
                                                                    : ms * 1000000ULL;
}

} // namespace sam
