// SPDX-License-Identifier: BSD-3-Clause
// check_backoff.cpp - tests of backoff.cpp: the restart schedule, its reset,
// its cap, and how the SAM_RESTART_* variables are read.
#include <map>
#include <string>

#include <CppUTest/TestHarness.h>

#include "backoff.hpp"

using namespace sam;

namespace {
std::map<std::string, std::string> fake_env;
const char *fake_getenv(const char *name) {
    auto it = fake_env.find(name);
    return it == fake_env.end() ? nullptr : it->second.c_str();
}
} // namespace

TEST_GROUP(Backoff){void teardown() override{fake_env.clear();
}
}
;

TEST(Backoff, DefaultScheduleBurstThenDoubling) {
    RestartBackoff b{BackoffConfig{}};
    const uint64_t expected[] = {0, 0, 0, 100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};
    for (uint64_t e : expected)
        UNSIGNED_LONGS_EQUAL(e, b.on_failure(5));
}

TEST(Backoff, LongRunResetsTheSeries) {
    RestartBackoff b{BackoffConfig{}};
    for (int i = 0; i < 6; ++i)
        (void)b.on_failure(1);
    UNSIGNED_LONGS_EQUAL(0, b.on_failure(10000)); // ran 10 s: first of a new series
    UNSIGNED_LONGS_EQUAL(1, b.quick_failures());
    UNSIGNED_LONGS_EQUAL(0, b.on_failure(9999));
}

TEST(Backoff, ZeroDelayTurnsItOff) {
    BackoffConfig c;
    c.delay_ms = 0;
    RestartBackoff b{c};
    for (int i = 0; i < 100; ++i)
        UNSIGNED_LONGS_EQUAL(0, b.on_failure(0));
}

TEST(Backoff, HugeCountsNeverOverflow) {
    BackoffConfig c;
    c.burst = 0;
    c.delay_ms = 1ULL << 52;
    c.delay_max_ms = 1ULL << 53;
    RestartBackoff b{c};
    for (int i = 0; i < 200; ++i)
        CHECK(b.on_failure(0) <= c.delay_max_ms);
    UNSIGNED_LONGS_EQUAL(c.delay_max_ms, b.on_failure(0));
}

TEST(Backoff, ReadsTheEnvironment) {
    fake_env = {{"SAM_RESTART_BURST", "1"},
                {"SAM_RESTART_DELAY_MS", "50"},
                {"SAM_RESTART_DELAY_MAX_MS", "120"},
                {"SAM_RESTART_RESET_MS", "700"}};
    std::vector<std::string> complaints;
    BackoffConfig c = read_backoff_config(&fake_getenv, complaints);
    CHECK_TRUE(complaints.empty());
    UNSIGNED_LONGS_EQUAL(1, c.burst);
    UNSIGNED_LONGS_EQUAL(50, c.delay_ms);
    UNSIGNED_LONGS_EQUAL(120, c.delay_max_ms);
    UNSIGNED_LONGS_EQUAL(700, c.reset_ms);
    RestartBackoff b{c};
    const uint64_t expected[] = {0, 50, 100, 120, 120};
    for (uint64_t e : expected)
        UNSIGNED_LONGS_EQUAL(e, b.on_failure(1));
}

TEST(Backoff, InvalidValuesAreIgnoredWithAComplaint) {
    fake_env = {{"SAM_RESTART_BURST", "-1"},
                {"SAM_RESTART_DELAY_MS", "abc"},
                {"SAM_RESTART_RESET_MS", "12x"},
                {"SAM_RESTART_DELAY_MAX_MS", "99999999999999999999"}};
    std::vector<std::string> complaints;
    BackoffConfig c = read_backoff_config(&fake_getenv, complaints);
    UNSIGNED_LONGS_EQUAL(4, complaints.size());
    BackoffConfig d;
    UNSIGNED_LONGS_EQUAL(d.burst, c.burst);
    UNSIGNED_LONGS_EQUAL(d.delay_ms, c.delay_ms);
    UNSIGNED_LONGS_EQUAL(d.delay_max_ms, c.delay_max_ms);
    UNSIGNED_LONGS_EQUAL(d.reset_ms, c.reset_ms);
}

TEST(Backoff, MaximumBelowDelayIsRaised) {
    fake_env = {{"SAM_RESTART_DELAY_MS", "500"}, {"SAM_RESTART_DELAY_MAX_MS", "100"}};
    std::vector<std::string> complaints;
    BackoffConfig c = read_backoff_config(&fake_getenv, complaints);
    UNSIGNED_LONGS_EQUAL(1, complaints.size());
    UNSIGNED_LONGS_EQUAL(500, c.delay_max_ms);
}

TEST(Backoff, ParseTunableEdges) {
    uint64_t v = 7;
    CHECK_TRUE(parse_tunable("0", v));
    UNSIGNED_LONGS_EQUAL(0, v);
    CHECK_TRUE(parse_tunable("9007199254740992", v)); // 2^53
    CHECK_FALSE(parse_tunable("9007199254740993", v));
    CHECK_FALSE(parse_tunable("", v));
    CHECK_FALSE(parse_tunable(" 5", v));
    CHECK_FALSE(parse_tunable("+5", v));
    CHECK_FALSE(parse_tunable(nullptr, v));
}
