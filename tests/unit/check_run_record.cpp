// SPDX-License-Identifier: BSD-3-Clause
// check_run_record.cpp - tests of sam-run's run record (src/tools/run_record.cpp)
// over an in-memory store that, like the supervisor's data store, outlives
// each instance: what the next instance learns about the previous one, the
// failure causes, and the --max-restarts count.
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <cstring>
#include <functional> // before CppUTest, whose operator new macro it cannot take
#include <string>

#include <CppUTest/TestHarness.h>

#include "run_record.hpp"

using namespace samrun;

namespace {

// What the supervisor keeps between instances.
struct MemoryStore {
    std::string bytes;
    int saves = 0;

    RecordStore store() {
        RecordStore s;
        s.load = [this](void *data, size_t size) {
            if (bytes.size() != size) {
                return false;
            }
            std::memcpy(data, bytes.data(), size);
            return true;
        };
        s.save = [this](const void *data, size_t size) {
            bytes.assign(static_cast<const char *>(data), size);
            ++saves;
        };
        return s;
    }
};

siginfo_t exited(int code) {
    siginfo_t info{};
    info.si_code = CLD_EXITED;
    info.si_status = code;
    return info;
}

siginfo_t killed(int sig) {
    siginfo_t info{};
    info.si_code = CLD_KILLED;
    info.si_status = sig;
    return info;
}

uint64_t realtime_ms() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

} // namespace

TEST_GROUP(RunRecord) { MemoryStore kept; };

TEST(RunRecord, TheFirstInstanceStartsAfreshAndIsStoredAtOnce) {
    RunRecord r(kept.store());
    r.begin_instance();
    CHECK_FALSE(r.restarted());
    LONGS_EQUAL(0, r.failures());
    LONGS_EQUAL(0, r.restarts());
    STRCMP_EQUAL("", r.previous_end().c_str());
    CHECK_FALSE(r.last_failure().has_value());
    LONGS_EQUAL(1, kept.saves);
}

TEST(RunRecord, TheNextInstanceLearnsHowThePreviousOneExited) {
    RunRecord first(kept.store());
    first.begin_instance();
    const uint64_t before = realtime_ms();
    first.record_end(exited(3), /* failed= */ true);
    const uint64_t after = realtime_ms();

    RunRecord second(kept.store());
    second.begin_instance();
    CHECK_TRUE(second.restarted());
    LONGS_EQUAL(1, second.failures());
    LONGS_EQUAL(1, second.restarts());
    STRCMP_EQUAL("exit 3", second.previous_end().c_str());
    STRCMP_EQUAL("exit 3", second.last_failure()->c_str());
    CHECK_TRUE(second.last_failure_ms() >= before && second.last_failure_ms() <= after);
}

TEST(RunRecord, ASignalIsNamed) {
    RunRecord first(kept.store());
    first.begin_instance();
    first.record_end(killed(SIGSEGV), /* failed= */ true);
    RunRecord second(kept.store());
    second.begin_instance();
    STRCMP_EQUAL("signal SEGV", second.previous_end().c_str());
    STRCMP_EQUAL("signal SEGV", second.last_failure()->c_str());
}

TEST(RunRecord, AnEndThatIsNoFailureIsNotCounted) {
    RunRecord first(kept.store());
    first.begin_instance();
    first.record_end(exited(0), /* failed= */ false);
    RunRecord second(kept.store());
    second.begin_instance();
    LONGS_EQUAL(0, second.failures());
    STRCMP_EQUAL("exit 0", second.previous_end().c_str());
    CHECK_FALSE(second.last_failure().has_value());
}

TEST(RunRecord, AGivenCauseWinsOverTheStatus) {
    RunRecord first(kept.store());
    first.begin_instance();
    first.record_end(killed(SIGTERM), /* failed= */ true, FailureCause::CheckFailed);
    RunRecord second(kept.store());
    second.begin_instance();
    STRCMP_EQUAL("signal TERM", second.previous_end().c_str());
    STRCMP_EQUAL("check failed", second.last_failure()->c_str());
}

TEST(RunRecord, ARelayKilledBeforeRecordingAnEndWasKilledByTheSupervisor) {
    RunRecord first(kept.store());
    first.begin_instance(); // and nothing more: SIGKILL
    RunRecord second(kept.store());
    second.begin_instance();
    LONGS_EQUAL(1, second.failures());
    STRCMP_EQUAL("killed by the supervisor", second.previous_end().c_str());
    STRCMP_EQUAL("missed deadline", second.last_failure()->c_str());
}

TEST(RunRecord, AWarningSaysWhyTheKilledRelayFailed) {
    RunRecord first(kept.store());
    first.begin_instance();
    first.record_warning(FailureCause::QuorumLoss);
    RunRecord second(kept.store());
    second.begin_instance();
    STRCMP_EQUAL("quorum loss", second.last_failure()->c_str());
    // The warning belonged to that instance only.
    RunRecord third(kept.store());
    third.begin_instance();
    STRCMP_EQUAL("missed deadline", third.last_failure()->c_str());
    LONGS_EQUAL(2, third.failures());
}

TEST(RunRecord, AProgramThatCouldNotRunLeavesItsShellStatus) {
    RunRecord first(kept.store());
    first.begin_instance();
    first.record_exit_status(127);
    RunRecord second(kept.store());
    second.begin_instance();
    STRCMP_EQUAL("exit 127", second.previous_end().c_str());
    STRCMP_EQUAL("exit 127", second.last_failure()->c_str());
}

TEST(RunRecord, ForeignOrMissingDataStartsAfresh) {
    kept.bytes = "something another libsam user stored";
    RunRecord r(kept.store());
    r.begin_instance();
    CHECK_FALSE(r.restarted());

    RunRecord first(kept.store());
    first.begin_instance();
    kept.bytes[0] ^= 1; // same size, another magic
    RunRecord second(kept.store());
    second.begin_instance();
    CHECK_FALSE(second.restarted());
    LONGS_EQUAL(0, second.restarts());
}

TEST(RunRecord, RestartsBeyondTheLimitAreRefusedAndNotCounted) {
    const unsigned long max_restarts = 2;
    RunRecord first(kept.store());
    first.begin_instance();
    CHECK_FALSE(first.over_restart_limit(max_restarts, /* window_ms= */ 0)); // not a restart
    for (int i = 1; i <= 2; ++i) {
        RunRecord next(kept.store());
        next.begin_instance();
        CHECK_FALSE(next.over_restart_limit(max_restarts, 0));
        LONGS_EQUAL(i, next.window_restarts());
    }
    RunRecord refused(kept.store());
    refused.begin_instance();
    CHECK_TRUE(refused.over_restart_limit(max_restarts, 0));
    LONGS_EQUAL(2, refused.restarts());
}

TEST(RunRecord, ANewWindowCountsAfresh) {
    RunRecord first(kept.store());
    first.begin_instance();
    RunRecord second(kept.store());
    second.begin_instance();
    CHECK_FALSE(second.over_restart_limit(1, /* window_ms= */ 1));
    timespec two_ms{0, 2000000};
    nanosleep(&two_ms, nullptr); // the 1 ms window has passed: that is what is tested
    RunRecord third(kept.store());
    third.begin_instance();
    CHECK_FALSE(third.over_restart_limit(1, 1));
    LONGS_EQUAL(1, third.window_restarts());
}

TEST_GROUP(DescribeCause){};

TEST(DescribeCause, EveryCause) {
    STRCMP_EQUAL("none", describe_cause(FailureCause::None, 0).c_str());
    STRCMP_EQUAL("exit 2", describe_cause(FailureCause::Exit, 2).c_str());
    STRCMP_EQUAL("signal KILL", describe_cause(FailureCause::Signal, SIGKILL).c_str());
    STRCMP_EQUAL("missed deadline", describe_cause(FailureCause::MissedDeadline, 0).c_str());
    STRCMP_EQUAL("quorum loss", describe_cause(FailureCause::QuorumLoss, 0).c_str());
    STRCMP_EQUAL("check failed", describe_cause(FailureCause::CheckFailed, 0).c_str());
    STRCMP_EQUAL("WATCHDOG=trigger", describe_cause(FailureCause::Triggered, 0).c_str());
    STRCMP_EQUAL("start timeout", describe_cause(FailureCause::NotReady, 0).c_str());
    STRCMP_EQUAL("unknown", describe_cause(static_cast<FailureCause>(99), 0).c_str());
}
