// SPDX-License-Identifier: BSD-3-Clause
// link_refresh.cpp - the last_updated rule of the link process.
#include "link_refresh.hpp"

#include <algorithm>

#include "common/clock.hpp"

namespace sam {

using linkwire::State;

uint64_t refresh_period_ns(uint64_t interval_ms) noexcept {
    if (interval_ms == 0)
        return kLivenessRefreshNs;
    return std::max(ms_to_ns(interval_ms) / 4, kMinRefreshNs);
}

bool RefreshSchedule::due(uint64_t now_ns) noexcept {
    if (next_ns != 0 && now_ns < next_ns)
        return false;
    const bool first = next_ns == 0;
    next_ns = now_ns + period_ns;
    return !first;
}

namespace {
// What last_updated should follow in this state, 0 when nothing.
uint64_t candidate(const RefreshInput &in) {
    const bool running = in.state == State::Running;
    if (running && in.healthy && in.interval_ms == 0)
        return in.now_ns; // only death is watched: alive is enough
    if (running && in.healthy) {
        // The newest sign of life; a beat from the future (a page scribbled
        // on) is not one.
        if (in.beat_ns > in.life_ns && in.beat_ns <= in.now_ns)
            return in.beat_ns;
        return in.life_ns;
    }
    if (in.state == State::WaitingForQuorum || (in.force && running))
        return in.now_ns;
    return 0;
}
} // namespace

std::optional<uint64_t> last_updated_stamp(const RefreshInput &in) noexcept {
    const uint64_t value = candidate(in);
    if (value == 0)
        return std::nullopt;
    if (!in.force)
        return value > in.published_ns ? std::optional<uint64_t>(value) : std::nullopt;
    // Forced: written even when unchanged, but never older than what the
    // watchdog has already seen.
    return value < in.published_ns ? in.now_ns : value;
}

} // namespace sam
