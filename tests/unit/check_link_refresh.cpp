// SPDX-License-Identifier: BSD-3-Clause
// check_link_refresh.cpp - tests of link_refresh.cpp: how often the link
// refreshes last_updated, and which stamp it writes in each state.
#include <string>

#include <CppUTest/TestHarness.h>

#include "common/clock.hpp"
#include "link_refresh.hpp"

using namespace sam;
using linkwire::State;

namespace {
constexpr uint64_t kMs = 1000000ULL;
constexpr uint64_t kNow = 50000 * kMs;

// A healthy running instance with a 1 s poll period, last heard of 300 ms
// ago, nothing published yet; each test changes what it is about.
RefreshInput running() {
    RefreshInput in;
    in.state = State::Running;
    in.healthy = true;
    in.interval_ms = 1000;
    in.life_ns = kNow - 300 * kMs;
    in.now_ns = kNow;
    return in;
}

void check_writes(uint64_t expected, const RefreshInput &in) {
    const std::optional<uint64_t> stamp = last_updated_stamp(in);
    CHECK_TRUE_TEXT(stamp.has_value(), "expected a write, the rule decided none");
    UNSIGNED_LONGS_EQUAL(expected, *stamp);
}

void check_leaves(const RefreshInput &in) {
    const std::optional<uint64_t> stamp = last_updated_stamp(in);
    if (stamp)
        FAIL(("expected no write, the rule decided " + std::to_string(*stamp)).c_str());
}
} // namespace

TEST_GROUP(RefreshPeriod){};

TEST(RefreshPeriod, QuarterOfTheInterval) {
    UNSIGNED_LONGS_EQUAL(250 * kMs, refresh_period_ns(1000));
    UNSIGNED_LONGS_EQUAL(10 * kMs + 250000, refresh_period_ns(41));
}

TEST(RefreshPeriod, NeverBelowTheMinimum) {
    UNSIGNED_LONGS_EQUAL(kMinRefreshNs, refresh_period_ns(40)); // a quarter is exactly the minimum
    UNSIGNED_LONGS_EQUAL(kMinRefreshNs, refresh_period_ns(39));
    UNSIGNED_LONGS_EQUAL(kMinRefreshNs, refresh_period_ns(1));
}

TEST(RefreshPeriod, OnceASecondWithoutInterval) {
    UNSIGNED_LONGS_EQUAL(kLivenessRefreshNs, refresh_period_ns(0));
    UNSIGNED_LONGS_EQUAL(1000 * kMs, kLivenessRefreshNs);
}

TEST(RefreshPeriod, HugeIntervalDoesNotWrap) { CHECK_TRUE(refresh_period_ns(UINT64_MAX) >= UINT64_MAX / 4); }

TEST_GROUP(RefreshSchedule){};

TEST(RefreshSchedule, FirstCallOnlyArms) {
    RefreshSchedule s{250 * kMs};
    CHECK_FALSE(s.due(kNow));
    UNSIGNED_LONGS_EQUAL(kNow + 250 * kMs, s.next_ns);
}

TEST(RefreshSchedule, DueExactlyAtTheNextTimeNotBefore) {
    RefreshSchedule s{250 * kMs};
    (void)s.due(kNow);
    CHECK_FALSE(s.due(kNow + 250 * kMs - 1));
    UNSIGNED_LONGS_EQUAL(kNow + 250 * kMs, s.next_ns); // a wake-up that is not due keeps the time
    CHECK_TRUE(s.due(kNow + 250 * kMs));
    UNSIGNED_LONGS_EQUAL(kNow + 500 * kMs, s.next_ns);
}

TEST(RefreshSchedule, LateWakeUpCountsFromItself) {
    RefreshSchedule s{250 * kMs};
    (void)s.due(kNow);
    CHECK_TRUE(s.due(kNow + 900 * kMs));
    UNSIGNED_LONGS_EQUAL(kNow + 1150 * kMs, s.next_ns); // one write for the missed ones
}

TEST(RefreshSchedule, AtMostFourPerPollPeriod) {
    RefreshSchedule s{refresh_period_ns(1000)};
    (void)s.due(kNow);
    int writes = 0;
    for (uint64_t t = kNow; t <= kNow + 1000 * kMs; t += kMs)
        writes += s.due(t) ? 1 : 0;
    LONGS_EQUAL(4, writes);
}

TEST_GROUP(LastUpdated){};

TEST(LastUpdated, HealthyFollowsTheLastMessage) { check_writes(kNow - 300 * kMs, running()); }

TEST(LastUpdated, HealthyFollowsANewerBeat) {
    RefreshInput in = running();
    in.beat_ns = kNow - 100 * kMs;
    check_writes(kNow - 100 * kMs, in);
}

TEST(LastUpdated, BeatOfNowCounts) {
    RefreshInput in = running();
    in.beat_ns = kNow;
    check_writes(kNow, in);
}

TEST(LastUpdated, BeatFromTheFutureIsIgnored) {
    RefreshInput in = running();
    in.beat_ns = kNow + 1;
    check_writes(in.life_ns, in);
}

TEST(LastUpdated, BeatNoNewerThanTheMessageIsIgnored) {
    RefreshInput in = running();
    in.beat_ns = in.life_ns;
    check_writes(in.life_ns, in);
    in.beat_ns = in.life_ns - 1;
    check_writes(in.life_ns, in);
}

TEST(LastUpdated, HealthyWithoutIntervalIsNow) {
    RefreshInput in = running();
    in.interval_ms = 0;
    in.life_ns = kNow - 5000 * kMs;
    in.beat_ns = kNow - 10 * kMs; // not used: only death is watched
    check_writes(kNow, in);
}

TEST(LastUpdated, NothingNewIsNotWrittenAgain) {
    RefreshInput in = running();
    in.published_ns = in.life_ns;
    check_leaves(in);
    in.published_ns = in.life_ns + 1;
    check_leaves(in);
    in.published_ns = in.life_ns - 1;
    check_writes(in.life_ns, in);
}

TEST(LastUpdated, NoSignOfLifeYetIsNotWritten) {
    RefreshInput in = running();
    in.life_ns = 0;
    check_leaves(in);
    in.force = true;
    check_leaves(in);
}

TEST(LastUpdated, UnhealthyLetsTheKeyAge) {
    RefreshInput in = running();
    in.healthy = false;
    in.beat_ns = kNow;
    check_leaves(in);
}

TEST(LastUpdated, UnhealthyStateWriteIsNow) {
    // The write that turns the state to "running" comes before the
    // instance is healthy: the watchdog must find a fresh stamp.
    RefreshInput in = running();
    in.healthy = false;
    in.force = true;
    in.published_ns = kNow - 2000 * kMs;
    check_writes(kNow, in);
}

TEST(LastUpdated, WaitingForQuorumFollowsTheClock) {
    RefreshInput in = running();
    in.state = State::WaitingForQuorum;
    in.published_ns = kNow - 250 * kMs;
    check_writes(kNow, in);
    in.healthy = false;
    check_writes(kNow, in);
    in.published_ns = kNow;
    check_leaves(in);
}

TEST(LastUpdated, StoppedFailedAndNoStateLeaveTheKey) {
    for (State s : {State::Stopped, State::Failed, State::None}) {
        RefreshInput in = running();
        in.state = s;
        check_leaves(in);
        in.force = true;
        check_leaves(in);
    }
}

TEST(LastUpdated, ForcedRewritesAnUnchangedStamp) {
    RefreshInput in = running();
    in.force = true;
    in.published_ns = in.life_ns;
    check_writes(in.life_ns, in);
}

TEST(LastUpdated, ForcedNeverGoesBackwards) {
    // After a wait for quorum published the clock, an older sign of life
    // would make the key jump back: the clock is written instead.
    RefreshInput in = running();
    in.force = true;
    in.published_ns = in.life_ns + 1;
    check_writes(kNow, in);
}

TEST(LastUpdated, AfterAReconnectEverythingIsNew) {
    RefreshInput in = running();
    in.force = true;
    in.published_ns = 0;
    check_writes(in.life_ns, in);
}

// The link's poll timeout is the earliest of its timers, 0 meaning "none"
// (earlier_deadline(), from src/common/clock.hpp).
TEST_GROUP(EarlierDeadline){};

TEST(EarlierDeadline, ZeroIsNone) {
    UNSIGNED_LONGS_EQUAL(0, earlier_deadline(0, 0));
    UNSIGNED_LONGS_EQUAL(7, earlier_deadline(0, 7));
    UNSIGNED_LONGS_EQUAL(7, earlier_deadline(7, 0));
}

TEST(EarlierDeadline, TheEarlierWins) {
    UNSIGNED_LONGS_EQUAL(3, earlier_deadline(3, 7));
    UNSIGNED_LONGS_EQUAL(3, earlier_deadline(7, 3));
    UNSIGNED_LONGS_EQUAL(5, earlier_deadline(5, 5));
}
