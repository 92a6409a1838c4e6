// check_health.cpp - tests of health.hpp: deadline arithmetic, the warn then
// kill escalation, clamping at the top of the clock, and a scribbled page.
#include <limits>

#include <CppUTest/TestHarness.h>

#include "health.hpp"

using namespace sam;

namespace {
constexpr uint64_t ms = 1000000ULL;
}

TEST_GROUP(Health){};

TEST(Health, NothingTimedBeforeStartOrWithZeroInterval) {
    HealthDeadline d(100);
    UNSIGNED_LONGS_EQUAL(0, d.next_deadline());
    CHECK(d.on_timer(1000 * ms, 0) == HealthVerdict::Wait);
    HealthDeadline none(0);
    none.start(5 * ms);
    CHECK_FALSE(none.timed());
    UNSIGNED_LONGS_EQUAL(0, none.next_deadline());
    CHECK(none.on_timer(100000 * ms, 0) == HealthVerdict::Wait);
}

TEST(Health, DeadlineFollowsTheLastSignOfLife) {
    HealthDeadline d(100);
    d.start(1000 * ms);
    UNSIGNED_LONGS_EQUAL(1100 * ms, d.next_deadline());
    CHECK(d.on_timer(1099 * ms, 1050 * ms) == HealthVerdict::Wait);
    UNSIGNED_LONGS_EQUAL(1150 * ms, d.next_deadline());
    d.life(1120 * ms);
    UNSIGNED_LONGS_EQUAL(1220 * ms, d.next_deadline());
    d.life(1000 * ms); // older news changes nothing
    UNSIGNED_LONGS_EQUAL(1220 * ms, d.next_deadline());
}

TEST(Health, WarnOnceThenKillAnIntervalLater) {
    HealthDeadline d(100);
    d.start(0);
    CHECK(d.on_timer(100 * ms, 0) == HealthVerdict::Warn);
    d.warned(100 * ms);
    UNSIGNED_LONGS_EQUAL(200 * ms, d.next_deadline());
    CHECK(d.on_timer(150 * ms, 0) == HealthVerdict::Wait);
    CHECK(d.on_timer(200 * ms, 0) == HealthVerdict::Kill);
}

TEST(Health, LifeAfterTheWarnPostponesTheKillButNeverWarnsTwice) {
    HealthDeadline d(100);
    d.start(0);
    d.warned(100 * ms);
    CHECK(d.on_timer(180 * ms, 170 * ms) == HealthVerdict::Wait);
    UNSIGNED_LONGS_EQUAL(270 * ms, d.next_deadline());
    CHECK(d.on_timer(270 * ms, 170 * ms) == HealthVerdict::Kill);
}

TEST(Health, StampFromTheFutureIsCorruption) {
    HealthDeadline d(100);
    d.start(0);
    CHECK(d.on_timer(50 * ms, 50 * ms + HealthDeadline::kFutureSlackNs) == HealthVerdict::Wait);
    CHECK(d.on_timer(60 * ms, 60 * ms + HealthDeadline::kFutureSlackNs + 1) == HealthVerdict::Corrupt);
    CHECK(d.on_timer(70 * ms, std::numeric_limits<uint64_t>::max()) == HealthVerdict::Corrupt);
}

TEST(Health, HugeIntervalClampsInsteadOfWrapping) {
    HealthDeadline d(static_cast<uint64_t>(std::numeric_limits<int>::max()));
    d.start(std::numeric_limits<uint64_t>::max() - 5);
    UNSIGNED_LONGS_EQUAL(std::numeric_limits<uint64_t>::max(), d.next_deadline());
    UNSIGNED_LONGS_EQUAL(std::numeric_limits<uint64_t>::max(), saturating_add(~0ULL, 1));
    UNSIGNED_LONGS_EQUAL(std::numeric_limits<uint64_t>::max(), ms_to_ns(~0ULL));
}

TEST(Health, StopDisarms) {
    HealthDeadline d(100);
    d.start(0);
    d.stop();
    UNSIGNED_LONGS_EQUAL(0, d.next_deadline());
    CHECK(d.on_timer(1000 * ms, 0) == HealthVerdict::Wait);
}

TEST(Health, PageBeatIsSeenBySupervisorSide) {
    auto page = HeartbeatPage::create();
    CHECK_TRUE(page.has_value());
    UNSIGNED_LONGS_EQUAL(0, page->last_beat());
    page->beat(42);
    UNSIGNED_LONGS_EQUAL(42, page->last_beat());
}
