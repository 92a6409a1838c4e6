// SPDX-License-Identifier: BSD-3-Clause
// backoff.cpp - restart delay schedule and its tunables.
#include "backoff.hpp"

#include "common/parse.hpp"

namespace sam {

bool parse_tunable(const char *text, uint64_t &out) noexcept {
    const std::optional<uint64_t> v = parse_decimal(text, uint64_t{1} << 53);
    if (!v)
        return false;
    out = *v;
    return true;
}

BackoffConfig read_backoff_config(const char *(*getenv_fn)(const char *), std::vector<std::string> &complaints) {
    BackoffConfig c;
    struct Knob {
        const char *name;
        uint64_t *field;
    } knobs[] = {
        {"SAM_RESTART_BURST", &c.burst},
        {"SAM_RESTART_DELAY_MS", &c.delay_ms},
        {"SAM_RESTART_DELAY_MAX_MS", &c.delay_max_ms},
        {"SAM_RESTART_RESET_MS", &c.reset_ms},
    };
    for (const Knob &k : knobs) {
        const char *text = getenv_fn(k.name);
        if (text == nullptr)
            continue;
        uint64_t v;
        if (parse_tunable(text, v))
            *k.field = v;
        else
            complaints.push_back(std::string("ignoring invalid ") + k.name + "=\"" + text + "\"");
    }
    if (c.delay_max_ms < c.delay_ms) {
        complaints.push_back("SAM_RESTART_DELAY_MAX_MS is below SAM_RESTART_DELAY_MS; using the delay as maximum");
        c.delay_max_ms = c.delay_ms;
    }
    return c;
}

uint64_t RestartBackoff::on_failure(uint64_t ran_for_ms) noexcept {
    if (ran_for_ms >= config_.reset_ms)
        quick_failures_ = 0;
    ++quick_failures_;
    if (config_.delay_ms == 0 || quick_failures_ <= config_.burst)
        return 0;
    // Doubling from delay_ms; stop shifting once the cap is reached so the
    // arithmetic can never overflow.
    uint64_t delay = config_.delay_ms;
    for (uint64_t step = quick_failures_ - config_.burst - 1; step > 0 && delay < config_.delay_max_ms; --step)
        delay *= 2;
    return delay < config_.delay_max_ms ? delay : config_.delay_max_ms;
}

} // namespace sam
