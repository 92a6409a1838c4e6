// SPDX-License-Identifier: BSD-3-Clause
// check_health.cpp - tests of health.hpp: deadline arithmetic, the warn then
// kill escalation, clamping at the top of the clock, a scribbled page, and
// the supervisor's death as the page shows it.
#include <limits>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

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

// A deadline that passes while the machine stalls buys one more interval, at
// most three times per step: our timer fired late, or the instance waited
// for a CPU.
TEST(Health, LateTimerIsAStallAtMostThreeTimesThenWarn) {
    HealthDeadline d(1000);
    d.start(0);
    UNSIGNED_LONGS_EQUAL(500 * ms, d.stall_threshold());
    // On time: an ordinary silence is a warning.
    HealthDeadline on_time(1000);
    on_time.start(0);
    CHECK(on_time.on_timer(1000 * ms + 499 * ms, 0) == HealthVerdict::Warn);
    // 500 ms late: a stall, one interval from the late wake-up.
    CHECK(d.on_timer(1500 * ms, 0) == HealthVerdict::Stalled);
    UNSIGNED_LONGS_EQUAL(2500 * ms, d.next_deadline());
    CHECK(d.on_timer(2400 * ms, 0) == HealthVerdict::Wait);
    // Late again within the same step: excused twice more, then no longer.
    CHECK(d.on_timer(3000 * ms, 0) == HealthVerdict::Stalled);
    CHECK(d.on_timer(4500 * ms, 0) == HealthVerdict::Stalled);
    UNSIGNED_LONGS_EQUAL(5500 * ms, d.next_deadline());
    CHECK(d.on_timer(6000 * ms, 0) == HealthVerdict::Warn);
}

TEST(Health, StarvedInstanceIsAStall) {
    HealthDeadline d(1000);
    d.start(0);
    CHECK(d.on_timer(1000 * ms, 0, 499 * ms) == HealthVerdict::Warn);
    HealthDeadline s(1000);
    s.start(0);
    CHECK(s.on_timer(1000 * ms, 0, 500 * ms) == HealthVerdict::Stalled);
    // It ran again and beat: the excuse is spent on that silence only.
    CHECK(s.on_timer(1900 * ms, 1800 * ms) == HealthVerdict::Wait);
    UNSIGNED_LONGS_EQUAL(2800 * ms, s.next_deadline());
    CHECK(s.on_timer(2800 * ms, 1800 * ms, 600 * ms) == HealthVerdict::Stalled);
}

TEST(Health, EachStepMayBeExcusedThreeTimes) {
    HealthDeadline d(200);
    d.start(0);
    for (uint64_t t = 200; t <= 600; t += 200)
        CHECK(d.on_timer(t * ms, 0, 150 * ms) == HealthVerdict::Stalled);
    CHECK(d.on_timer(800 * ms, 0, 150 * ms) == HealthVerdict::Warn);
    d.warned(800 * ms);
    for (uint64_t t = 1000; t <= 1400; t += 200)
        CHECK(d.on_timer(t * ms, 0, 150 * ms) == HealthVerdict::Stalled);
    CHECK(d.on_timer(1600 * ms, 0, 150 * ms) == HealthVerdict::Kill);
}

TEST(Health, SmallIntervalsKeepTheMinimumStallThreshold) {
    HealthDeadline d(20);
    UNSIGNED_LONGS_EQUAL(HealthDeadline::kStallMinNs, d.stall_threshold());
    d.start(0);
    CHECK(d.on_timer(20 * ms + 99 * ms, 0, 99 * ms) == HealthVerdict::Warn);
}

TEST(Health, CpuSampleOfThisProcess) {
    CHECK_FALSE(read_cpu_sample(-1, -1, 5).known);
    const int sched = ::open("/proc/self/schedstat", O_RDONLY | O_CLOEXEC);
    const int stat = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (sched >= 0 && stat >= 0) {
        const CpuSample s = read_cpu_sample(sched, stat, 7);
        CHECK_TRUE(s.known);
        CHECK_TRUE(s.runnable); // reading it, we are running
        UNSIGNED_LONGS_EQUAL(7, s.at_ns);
    }
    if (sched >= 0)
        ::close(sched);
    if (stat >= 0)
        ::close(stat);
}

namespace {
CpuSample sample(bool runnable, uint64_t cpu, uint64_t delay, uint64_t at) {
    CpuSample s;
    s.known = true;
    s.runnable = runnable;
    s.cpu_ns = cpu;
    s.run_delay_ns = delay;
    s.at_ns = at;
    return s;
}
} // namespace

TEST(Health, StarvationIsWaitsThatEndedPlusOneUnderWay) {
    // Unknown on either side: nothing can be said.
    UNSIGNED_LONGS_EQUAL(0, starved_between(CpuSample{}, sample(true, 0, 0, 100 * ms)));
    // Waits that ended count as they are.
    UNSIGNED_LONGS_EQUAL(40 * ms,
                         starved_between(sample(false, 0, 10 * ms, 0), sample(false, 5 * ms, 50 * ms, 300 * ms)));
    // Runnable now with almost no CPU since: the wait under way counts whole.
    UNSIGNED_LONGS_EQUAL(300 * ms, starved_between(sample(false, 0, 0, 0), sample(true, 29 * ms, 0, 300 * ms)));
    // Runnable and it did run (a busy loop): not starved.
    UNSIGNED_LONGS_EQUAL(0, starved_between(sample(true, 0, 0, 0), sample(true, 30 * ms, 0, 300 * ms)));
    // Asleep (a hang, not a stall): only what ended counts.
    UNSIGNED_LONGS_EQUAL(2 * ms, starved_between(sample(false, 0, 0, 0), sample(false, 0, 2 * ms, 300 * ms)));
    // Samples out of order count for nothing.
    UNSIGNED_LONGS_EQUAL(0, starved_between(sample(true, 0, 0, 9 * ms), sample(true, 0, 0, 1 * ms)));
}

#if defined(__GLIBC__)
TEST(Health, PageShowsTheSupervisorOnlyWhileHeld) {
    auto page = HeartbeatPage::create();
    CHECK_TRUE(page.has_value());
    CHECK_TRUE(page->supervisor_gone()); // nobody holds it yet
    CHECK_TRUE(page->hold());
    CHECK_FALSE(page->supervisor_gone());
    page->let_go();
    CHECK_TRUE(page->supervisor_gone());
    CHECK_TRUE(page->hold()); // held again: the destructor lets it go
    CHECK_FALSE(page->supervisor_gone());
}

// A child inherits the page but not the ownership: it sees its holder alive.
TEST(Health, ForkedChildSeesTheHolderAlive) {
    auto page = HeartbeatPage::create();
    CHECK_TRUE(page.has_value() && page->hold());
    const pid_t pid = ::fork();
    if (pid == 0) {
        page->disown_after_fork();
        ::_exit(page->supervisor_gone() ? 1 : 0);
    }
    CHECK(pid > 0);
    int status = 0;
    CHECK(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_FALSE(page->supervisor_gone());
}

// The holder ends without unlocking: the kernel marks the lock word.
TEST(Health, HolderDeathMarksThePage) {
    auto page = HeartbeatPage::create();
    CHECK_TRUE(page.has_value());
    int held[2], go[2];
    CHECK(::pipe(held) == 0 && ::pipe(go) == 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(held[0]);
        ::close(go[1]); // so that the parent's close is our end of file
        char c = 0;
        if (!page->hold() || ::write(held[1], &c, 1) != 1 || ::read(go[0], &c, 1) < 0)
            ::_exit(1);
        ::_exit(0); // still holding it
    }
    CHECK(pid > 0);
    ::close(held[1]);
    ::close(go[0]);
    char c = 0;
    CHECK(::read(held[0], &c, 1) == 1);
    CHECK_FALSE(page->supervisor_gone());
    ::close(go[1]);
    int status = 0;
    CHECK(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_TRUE(page->supervisor_gone());
    ::close(held[0]);
}
#endif
