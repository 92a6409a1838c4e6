// SPDX-License-Identifier: BSD-3-Clause
// link_refresh.hpp - when the link writes last_updated, and which stamp.
//
// corosync's watchdog service judges a process by its last_updated key as
// soon as its state is no longer "stopped". The link keeps that key true to
// what it knows: the instance's heartbeats while it runs healthy, its own
// clock while the supervisor waits for quorum, nothing newer while the
// instance is unhealthy (so the key ages and the watchdog can act). The rule
// is pure (no clock, no system call): link_loop.cpp feeds it and writes what
// it decides.
#pragma once

#include <cstdint>
#include <optional>

#include "link_wire.hpp"

namespace sam {

// The periodic refresh never runs more often than this, whatever the
// interval.
inline constexpr uint64_t kMinRefreshNs = 10ULL * 1000000ULL;
// With no interval only death is watched, but last_updated still has to stay
// fresh for the watchdog service (whose own default period then applies).
inline constexpr uint64_t kLivenessRefreshNs = 1000ULL * 1000000ULL;

// How often the link looks for a newer stamp: a quarter of the poll period,
// so at most four periodic writes per period and the key never lags the
// instance by more than a quarter of it; kMinRefreshNs at least;
// kLivenessRefreshNs with no interval.
[[nodiscard]] uint64_t refresh_period_ns(uint64_t interval_ms) noexcept;

// The periodic refresh's timer.
struct RefreshSchedule {
    uint64_t period_ns = 0;
    uint64_t next_ns = 0; // 0: not armed yet
    // True when a periodic refresh is due at `now_ns`, and then the next one
    // is a period later. The first call only arms the timer: there is
    // nothing to refresh before the supervisor's first update.
    [[nodiscard]] bool due(uint64_t now_ns) noexcept;
};

struct RefreshInput {
    linkwire::State state = linkwire::State::None; // what cmap was last asked to show
    bool healthy = false;                          // the supervisor's last word on the instance
    uint64_t interval_ms = 0;                      // the poll period (0: none)
    uint64_t life_ns = 0;                          // the instance's last message to the supervisor
    uint64_t beat_ns = 0;                          // the heartbeat page's stamp (0: no page, or no beat)
    uint64_t published_ns = 0;                     // last stamp written on this connection (0: none)
    uint64_t now_ns = 0;
    // A state write or a reconnect: the key must be written now, even when
    // it would not move, because the watchdog reads it right after.
    bool force = false;
};

// The stamp to write to last_updated, or nothing to leave the key as it is.
[[nodiscard]] std::optional<uint64_t> last_updated_stamp(const RefreshInput &in) noexcept;

} // namespace sam
