// SPDX-License-Identifier: BSD-3-Clause
// test_health.cpp - the health-check deadline, what is (not) timed before
// sam_start and after sam_stop, the event-driven callback, thread safety.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"
#include "fixture.hpp"

namespace {

constexpr int kT = 200; // ms

} // namespace

namespace {
int always_healthy() { return 0; }
} // namespace

PROGRAM_GROUP(HealthDeadline){};

// A started instance that stops calling sam_hc_send() gets its warn signal
// (set from the instance) T after its last health check, SIGKILL T later,
// and a new instance replaces it (RESTART).
TEST(HealthDeadline, WarnThenKillThenRestart) {
    prog.start([] {
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid >= 2)
            return 0; // exits before start: the supervisor exits 0
        it::catch_signal(SIGUSR1);
        if (sam_warn_signal_set(SIGUSR1) != CS_OK || sam_start() != CS_OK)
            return 92;
        for (int i = 0; i < 5; ++i) {
            (void)sam_hc_send();
            it::idle_ms(kT / 4);
        }
        const uint64_t before = it::now_ns();
        const cs_error_t err = sam_hc_send();
        const uint64_t after = it::now_ns();
        it::emit("ev=last_hc before=%llu after=%llu err=%d", static_cast<unsigned long long>(before),
                 static_cast<unsigned long long>(after), static_cast<int>(err));
        for (;;)
            it::idle_ms(1000); // silent until killed
    });
    it::Event last, warn, reg2;
    REQUIRE(prog.wait_event("last_hc", 3000, &last));
    REQUIRE(last.num("err") == CS_OK);
    REQUIRE(prog.wait_event("signal", 3 * kT + 500, &warn));
    REQUIRE(warn.num("sig") == SIGUSR1 && warn.num("iid") == 1);
    const long long before = last.num("before"), after = last.num("after");
    const long long warn_t = static_cast<long long>(warn.t);
    REQUIRE_MSG(warn_t >= before + static_cast<long long>(it::ms(kT)),
                "warned " + std::to_string((warn_t - before) / 1000000) + " ms after the last hc");
    REQUIRE_MSG(warn_t <= after + static_cast<long long>(it::ms(kT + 50)),
                "warned " + std::to_string((warn_t - after) / 1000000) + " ms after the last hc");
    REQUIRE(prog.wait_event([](const it::Event &e) { return e.is("reg") && e.num("iid") == 2; }, 3 * kT + 1000, &reg2));
    // SIGKILL came T after the warning; the new instance follows at once.
    const long long gap = static_cast<long long>(reg2.t) - warn_t;
    REQUIRE_MSG(gap >= static_cast<long long>(it::ms(kT - 5)) && gap <= static_cast<long long>(it::ms(kT + 100)),
                "instance 2 appeared " + std::to_string(gap / 1000000) + " ms after the warn signal");
    REQUIRE(it::process_gone(last.pid));
    REQUIRE(prog.wait_log("sending SIGKILL", 1000));
    REQUIRE_EXIT(prog.wait_exit(3000), 0);
    REQUIRE(prog.events_of("signal").size() == 1); // warned once
}

namespace {
// Makes stderr a pipe that nobody reads.
bool stderr_into_unread_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return false;
    // fds[0] stays open and unread: once full, writes wait instead of failing.
    return ::dup2(fds[1], STDERR_FILENO) == STDERR_FILENO;
}

// Fills stderr as an instance's output would, through a description of its
// own so that fd 2 stays as blocking as it was.
bool fill_stderr() {
    const int filler = ::open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (filler < 0)
        return false;
    const std::string chunk(4096, '.');
    while (::write(filler, chunk.data(), chunk.size()) > 0) {
    }
    const bool full = errno == EAGAIN;
    ::close(filler);
    return full;
}
} // namespace

// The supervisor logs to a stderr it shares with the instance (SAM_LOG_STDERR=1),
// and the instance's output has filled that pipe: the supervisor's log lines
// must not hold it. The hung instance gets the warn signal T after the start
// and SIGKILL T later.
TEST(HealthDeadline, FullStderrPipeDelaysNothing) {
    prog.start([] {
        if (!stderr_into_unread_pipe())
            return 80;
        if (sam_initialize(kT, SAM_RECOVERY_POLICY_QUIT) != CS_OK)
            return 90;
        if (sam_register(nullptr) != CS_OK)
            return 91;
        it::catch_signal(SIGTERM);
        if (sam_start() != CS_OK)
            return 92;
        if (!fill_stderr())
            return 93;
        it::emit("ev=started");
        for (;;)
            it::idle_ms(1000); // hung: no health checks
    });
    it::Event started, warn;
    REQUIRE_MSG(prog.wait_event("started", 3000, &started), prog.transcript());
    REQUIRE_MSG(prog.wait_event("signal", 2 * kT + 1000, &warn), "no warn signal\n" + prog.transcript());
    REQUIRE(warn.num("sig") == SIGTERM);
    const long long warned_ms = it::ms_between(started.t, warn.t);
    REQUIRE_MSG(warned_ms <= kT + 300, "warned " + std::to_string(warned_ms) + " ms after start");
    const it::Exit x = prog.wait_exit(2 * kT + 2000);
    const long long ended_ms = it::ms_since(started.t);
    REQUIRE_KILLED(x, SIGKILL);
    REQUIRE(it::process_gone(started.pid));
    // SIGKILL at 2T; the supervisor then waits a moment for its last lines.
    REQUIRE_MSG(ended_ms <= 2 * kT + 1000, "supervisor ended " + std::to_string(ended_ms) + " ms after start");
}

// Every call from the instance to the supervisor is a sign of life: an
// instance that never calls sam_hc_send() but stores data every T/2 lives
// on for 5*T.
TEST(HealthDeadline, AnyCallIsASignOfLife) {
    prog.start([] {
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid >= 2)
            return 0;
        it::catch_signal(SIGUSR1);
        if (sam_warn_signal_set(SIGUSR1) != CS_OK || sam_start() != CS_OK)
            return 92;
        for (int i = 0; i < 10; ++i) {
            it::idle_ms(kT / 2);
            if (sam_data_store(&i, sizeof i) != CS_OK)
                return 93;
        }
        it::emit("ev=alive iid=%u", iid);
        return sam_stop() == CS_OK ? 0 : 94;
    });
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    REQUIRE(prog.events_of("alive").size() == 1);
    REQUIRE(prog.events_of("signal").empty());
    REQUIRE(prog.events_of("reg").size() == 1);
}

namespace {
volatile sig_atomic_t g_warned = 0;
void note_warned(int sig) {
    g_warned = 1;
    it::emit_signal(sig, it::instance_id());
}
} // namespace

// The warn signal is a warning: an instance that resumes its health checks
// after it is not killed (and is warned only once).
TEST(HealthDeadline, WarnedInstanceThatResumesLivesOn) {
    prog.start([] {
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid >= 2)
            return 0;
        struct sigaction sa {};
        sa.sa_handler = note_warned;
        sigemptyset(&sa.sa_mask);
        (void)::sigaction(SIGUSR1, &sa, nullptr);
        if (sam_warn_signal_set(SIGUSR1) != CS_OK || sam_start() != CS_OK)
            return 92;
        const uint64_t give_up = it::now_ns() + it::ms(5 * kT);
        while (!g_warned && it::now_ns() < give_up)
            it::idle_ms(5); // silent until warned
        if (!g_warned)
            return 93;
        for (int i = 0; i < 20; ++i) { // 5 T of health checks
            (void)sam_hc_send();
            it::idle_ms(kT / 4);
        }
        it::emit("ev=alive iid=%u", iid);
        return sam_stop() == CS_OK ? 0 : 94;
    });
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    REQUIRE(prog.events_of("alive").size() == 1);
    REQUIRE(prog.events_of("signal").size() == 1);
    REQUIRE(prog.events_of("reg").size() == 1);
}

PROGRAM_GROUP(BeforeStart){};

// Nothing is timed before sam_start: 3*T without a health check is fine.
// Exiting before start ends the supervisor with the same code, no restart.
TEST(BeforeStart, NotTimedAndExitCodeMirrored) {
    prog.start([] {
        // the default warn signal
        const it::Registration reg = it::register_instance(kT / 2, SAM_RECOVERY_POLICY_RESTART, {SIGTERM});
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        it::idle_ms(3 * kT / 2);
        it::emit("ev=alive iid=%u", iid);
        return 7;
    });
    const it::Exit x = prog.wait_exit(3000);
    REQUIRE_EXIT(x, 7);
    REQUIRE(prog.events_of("alive").size() == 1);
    REQUIRE(prog.events_of("reg").size() == 1);
    REQUIRE(prog.events_of("signal").empty());
}

// After sam_stop the same: not timed, exit mirrored, no restart.
TEST(BeforeStart, AfterStopNotTimedAndExitCodeMirrored) {
    prog.start([] {
        const it::Registration reg = it::register_instance(kT / 2, SAM_RECOVERY_POLICY_RESTART, {SIGTERM});
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (sam_start() != CS_OK || sam_hc_send() != CS_OK || sam_stop() != CS_OK)
            return 92;
        it::idle_ms(3 * kT / 2);
        it::emit("ev=alive iid=%u", iid);
        return 7;
    });
    const it::Exit x = prog.wait_exit(3000);
    REQUIRE_EXIT(x, 7);
    REQUIRE(prog.events_of("alive").size() == 1);
    REQUIRE(prog.events_of("reg").size() == 1);
    REQUIRE(prog.events_of("signal").empty());
}

// An instance killed from outside before sam_start: not a failure, no
// restart; the supervisor dies by the same signal.
TEST(BeforeStart, KilledBeforeStartMirrored) {
    prog.start([] {
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        for (;;)
            it::idle_ms(1000);
    });
    it::Event reg;
    REQUIRE(prog.wait_event("reg", 3000, &reg));
    ::kill(reg.pid, SIGKILL);
    const it::Exit x = prog.wait_exit(3000);
    REQUIRE_KILLED(x, SIGKILL);
    REQUIRE(prog.events_of("reg").size() == 1);
}

// The warn signal set by an instance stays set in the supervisor for the
// next instances.
TEST(HealthDeadline, WarnSignalSetByInstanceOutlivesIt) {
    prog.start([] {
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART, {SIGUSR2});
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid == 1) {
            if (sam_warn_signal_set(SIGUSR2) != CS_OK || sam_start() != CS_OK)
                return 92;
            ::_exit(1); // a failure: restart
        }
        if (iid >= 3)
            return 0;
        if (sam_start() != CS_OK)
            return 93;
        for (;;)
            it::idle_ms(1000); // silent: warned with SIGUSR2, then killed
    });
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    const auto sigs = prog.events_of("signal");
    REQUIRE(sigs.size() == 1);
    REQUIRE(sigs[0].num("sig") == SIGUSR2 && sigs[0].num("iid") == 2);
    REQUIRE(prog.events_of("reg").size() == 3);
}

namespace {
// What the first signals brought, in order of arrival.
volatile sig_atomic_t g_info_code[4];
volatile sig_atomic_t g_info_pid[4];
volatile sig_atomic_t g_info_count = 0;
void record_siginfo(int, siginfo_t *info, void *) {
    const int n = g_info_count;
    if (n >= 4)
        return;
    g_info_code[n] = info->si_code;
    g_info_pid[n] = info->si_pid;
    g_info_count = n + 1;
}
} // namespace

// The warn signal comes from the supervisor as sigqueue() would send it
// (si_code SI_QUEUE), so an instance can tell it from a stop signal that the
// supervisor forwards (SI_USER, as kill() sends it); both carry the
// supervisor's pid.
TEST(HealthDeadline, WarnSignalIsQueuedForwardedSignalIsNot) {
    prog.start([] {
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid >= 2)
            return 0;
        struct sigaction sa {};
        sa.sa_sigaction = record_siginfo;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (::sigaction(SIGUSR1, &sa, nullptr) != 0 || ::sigaction(SIGUSR2, &sa, nullptr) != 0 ||
            sam_warn_signal_set(SIGUSR1) != CS_OK || sam_start() != CS_OK)
            return 92;
        it::emit("ev=started");
        int reported = 0;
        for (;;) { // no health checks: the warn signal comes after T
            (void)it::command(10);
            const int seen = g_info_count;
            for (; reported < seen; ++reported) {
                it::emit("ev=siginfo code=%d from=%d", static_cast<int>(g_info_code[reported]),
                         static_cast<int>(g_info_pid[reported]));
                if (reported == 0)
                    ::kill(it::program_pid(), SIGUSR2); // forwarded back to us
            }
        }
    });
    it::Event warn, forwarded;
    REQUIRE(prog.wait_event("siginfo", 2 * kT + 1000, &warn));
    REQUIRE(warn.num("code") == SI_QUEUE);
    REQUIRE(warn.num("from") == prog.pid());
    REQUIRE(prog.wait_event("siginfo", kT, &forwarded));
    REQUIRE(forwarded.num("code") == SI_USER);
    REQUIRE(forwarded.num("from") == prog.pid());
}

// An application that ignores SIGCHLD still gets its instance's exit
// status mirrored (the kernel must not reap the instance behind our back).
TEST(BeforeStart, SigchldIgnoredByApplication) {
    prog.start([] {
        ::signal(SIGCHLD, SIG_IGN);
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        return 7;
    });
    REQUIRE_EXIT(prog.wait_exit(3000), 7);
    REQUIRE(prog.events_of("reg").size() == 1);
}

// Under RESTART any end after sam_start is a failure, exit 0 included.
TEST(HealthDeadline, ExitZeroAfterStartIsAFailure) {
    prog.start([] {
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid >= 2)
            return 4;
        if (sam_start() != CS_OK)
            return 92;
        return 0;
    });
    REQUIRE_EXIT(prog.wait_exit(3000), 4);
    REQUIRE(prog.events_of("reg").size() == 2);
}

// The largest interval is clamped, not overflowed: a started instance with
// T = INT_MAX is not killed at once.
TEST(HealthDeadline, HugeIntervalDoesNotOverflow) {
    prog.start([] {
        const it::Registration reg = it::register_instance(0x7fffffff, SAM_RECOVERY_POLICY_RESTART, {SIGTERM});
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid >= 2)
            return 0;
        if (sam_hc_callback_register(always_healthy) != CS_OK || sam_start() != CS_OK)
            return 92;
        it::idle_ms(300);
        (void)sam_hc_send();
        it::emit("ev=alive iid=%u", iid);
        return sam_stop() == CS_OK ? 0 : 93;
    });
    REQUIRE_EXIT(prog.wait_exit(3000), 0);
    REQUIRE(prog.events_of("alive").size() == 1);
    REQUIRE(prog.events_of("signal").empty());
    REQUIRE(prog.events_of("reg").size() == 1);
}

PROGRAM_GROUP(HcCallback){};

namespace {
std::atomic<int> g_cb_calls{0};
std::atomic<int> g_cb_fail_after{1 << 30};
int counting_cb() {
    const int n = ++g_cb_calls;
    it::emit("ev=cb n=%d", n);
    return n > g_cb_fail_after.load() ? 1 : 0;
}

int unhealthy_cb() {
    it::emit("ev=bad_cb");
    return 1;
}

// replacement: 0 keeps the first callback, 1 replaces it with a healthy
// one, 2 replaces it with NULL.
int callback_program(int fail_after, int replacement = 0) {
    g_cb_fail_after = fail_after;
    const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
    if (!reg)
        return reg.exit_status;
    const unsigned iid = reg.iid;
    if (iid >= 2)
        return 0;
    it::catch_signal(SIGUSR1);
    sam_hc_callback_t first = replacement == 0 ? counting_cb : unhealthy_cb;
    if (sam_warn_signal_set(SIGUSR1) != CS_OK || sam_hc_callback_register(first) != CS_OK)
        return 92;
    if (replacement != 0 && sam_hc_callback_register(replacement == 1 ? counting_cb : nullptr) != CS_OK)
        return 94;
    if (sam_start() != CS_OK)
        return 92;
    it::idle_ms(5 * kT); // no sam_hc_send() from here
    it::emit("ev=alive iid=%u", iid);
    if (sam_stop() != CS_OK)
        return 93;
    return 0;
}
} // namespace

// A healthy callback keeps a started instance alive for 5*T without any
// sam_hc_send(); it is called about every T.
TEST(HcCallback, HealthyCallbackKeepsInstanceAlive) {
    prog.start([] { return callback_program(1 << 30); });
    const it::Exit x = prog.wait_exit(5000);
    REQUIRE_EXIT(x, 0);
    REQUIRE(prog.events_of("alive").size() == 1);
    REQUIRE(prog.events_of("signal").empty());
    REQUIRE(prog.events_of("reg").size() == 1);
    const size_t calls = prog.events_of("cb").size();
    REQUIRE_MSG(calls >= 3 && calls <= 7, std::to_string(calls) + " callback calls in 5 T");
}

// A callback that answers "unhealthy" stops the health checks: the
// instance is warned, killed, and replaced.
TEST(HcCallback, UnhealthyCallbackGetsInstanceKilled) {
    prog.start([] { return callback_program(1); });
    it::Event warn, reg2;
    REQUIRE(prog.wait_event("signal", 6 * kT + 500, &warn));
    REQUIRE(warn.num("sig") == SIGUSR1 && warn.num("iid") == 1);
    REQUIRE(prog.wait_event([](const it::Event &e) { return e.is("reg") && e.num("iid") == 2; }, 2 * kT + 500, &reg2));
    REQUIRE(prog.events_of("alive").empty());
    const it::Exit x = prog.wait_exit(3000);
    REQUIRE_EXIT(x, 0);
    // The unhealthy answer came on the 2nd call; nothing after the kill.
    const auto cbs = prog.events_of("cb");
    REQUIRE(cbs.size() >= 2 && cbs.size() <= 4);
}

// A later registration replaces the callback: the unhealthy first one is
// never called, the healthy replacement keeps the instance alive.
TEST(HcCallback, LaterRegistrationReplaces) {
    prog.start([] { return callback_program(1 << 30, 1); });
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    REQUIRE(prog.events_of("alive").size() == 1);
    REQUIRE(prog.events_of("signal").empty());
    REQUIRE(prog.events_of("bad_cb").empty());
    const size_t calls = prog.events_of("cb").size();
    REQUIRE_MSG(calls >= 3 && calls <= 7, std::to_string(calls) + " callback calls in 5 T");
}

// Replaced by NULL: no callback is called, and the library's thread goes on
// sending the health checks.
TEST(HcCallback, ReplacedByNullKeepsBeating) {
    prog.start([] { return callback_program(1 << 30, 2); });
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    REQUIRE(prog.events_of("alive").size() == 1);
    REQUIRE(prog.events_of("signal").empty());
    REQUIRE(prog.events_of("bad_cb").empty());
    REQUIRE(prog.events_of("cb").empty());
}

namespace {
std::atomic<int> g_calls_after_finalize{0};
std::atomic<bool> g_finalized{false};
int finalizing_cb() {
    if (g_finalized.load()) {
        ++g_calls_after_finalize;
        return 0;
    }
    const int n = ++g_cb_calls;
    if (n < 2)
        return 0;
    const cs_error_t rc = sam_finalize();
    g_finalized = true;
    it::emit("ev=finalized rc=%d", static_cast<int>(rc));
    return 0;
}
} // namespace

// sam_finalize() called by the health-check callback itself: allowed, and
// the library's thread ends cleanly after the callback returns (its state
// must outlive the finalize). Health checking stopped with it: the
// supervisor sends no warn signal, and the instance is finalized.
TEST(HcCallback, FinalizeFromInsideCallback) {
    prog.start([] {
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid >= 2)
            return 0;
        it::catch_signal(SIGUSR1);
        if (sam_warn_signal_set(SIGUSR1) != CS_OK || sam_hc_callback_register(finalizing_cb) != CS_OK ||
            sam_start() != CS_OK)
            return 92;
        it::idle_ms(6 * kT); // the callback finalizes meanwhile
        it::expect_rc("hc_send_after", sam_hc_send(), CS_ERR_BAD_HANDLE);
        it::expect_rc("finalize_again", sam_finalize(), CS_ERR_BAD_HANDLE);
        it::emit("ev=alive calls_after=%d", g_calls_after_finalize.load());
        return 0;
    });
    it::Event fin;
    REQUIRE(prog.wait_event("finalized", 4 * kT + 1000, &fin));
    REQUIRE(fin.num("rc") == CS_OK);
    REQUIRE_EXIT(prog.wait_exit(3000), 0);
    it::Event alive;
    REQUIRE(prog.wait_event("alive", 0, &alive));
    REQUIRE(alive.num("calls_after") == 0);
    REQUIRE(prog.events_of("signal").empty());
    REQUIRE(prog.events_of("reg").size() == 1);
    REQUIRE_CHECKS(2);
}

PROGRAM_GROUP(ThreadSafety){};

// Threads beating, storing, reading the size and restoring while another
// cycles sam_stop()/sam_start(): no deadlock, no torn data, and only the
// status codes the contract allows.
TEST(ThreadSafety, ConcurrentCallsDuringStopStartCycles) {
    prog.start([] {
        // Its threads never sleep: let the tests beside it under make -j2
        // check keep their timing (nothing here is timed but the deadline).
        (void)::setpriority(PRIO_PROCESS, 0, 10);
        const it::Registration reg = it::register_instance(500, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid != 1)
            return 1;
        // Two lengths, one inline and one through the large-data path;
        // every blob is filled with one byte value (never 0xff).
        constexpr size_t kShort = 1000, kLong = 40000;
        std::vector<unsigned char> initial(kShort, 1);
        if (sam_data_store(initial.data(), initial.size()) != CS_OK || sam_start() != CS_OK)
            return 92;
        std::atomic<bool> stop{false};
        std::atomic<long> bad{0}, beats{0}, stores{0}, reads{0}, cycles{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 2; ++i)
            threads.emplace_back([&] {
                while (!stop) {
                    const cs_error_t e = sam_hc_send();
                    if (e != CS_OK && e != CS_ERR_BAD_HANDLE)
                        ++bad;
                    ++beats;
                }
            });
        threads.emplace_back([&] {
            std::vector<unsigned char> blob(kLong);
            for (unsigned v = 2; !stop; ++v) {
                const unsigned char value = static_cast<unsigned char>(v % 200 + 2);
                const size_t len = v % 3 == 0 ? kLong : kShort;
                std::memset(blob.data(), value, len);
                if (sam_data_store(blob.data(), len) != CS_OK)
                    ++bad;
                ++stores;
            }
        });
        threads.emplace_back([&] {
            std::vector<unsigned char> buf(kLong);
            while (!stop) {
                size_t size = 0;
                if (sam_data_getsize(&size) != CS_OK || (size != kShort && size != kLong))
                    ++bad;
                std::memset(buf.data(), 0xff, buf.size());
                if (sam_data_restore(buf.data(), buf.size()) != CS_OK) {
                    ++bad;
                    continue;
                }
                const unsigned char v = buf[0];
                bool ok = v != 0xff;
                for (size_t i = 1; i < kShort && ok; ++i)
                    ok = buf[i] == v;
                const unsigned char tail = buf[kShort];
                ok = ok && (tail == 0xff || tail == v);
                for (size_t i = kShort; i < kLong && ok; ++i)
                    ok = buf[i] == tail;
                if (!ok)
                    ++bad;
                ++reads;
            }
        });
        // Until the other threads have really run beside the cycles (a mutex
        // is not fair), at most 10 s.
        const uint64_t give_up = it::now_ns() + it::ms(10000);
        for (int i = 0; i < 1000 || stores.load() == 0 || reads.load() == 0; ++i) {
            if (it::now_ns() > give_up)
                break;
            if (sam_stop() != CS_OK)
                ++bad;
            if (sam_start() != CS_OK)
                ++bad;
            ++cycles;
        }
        stop = true;
        for (std::thread &t : threads)
            t.join();
        it::emit("ev=done bad=%ld beats=%ld stores=%ld reads=%ld cycles=%ld", bad.load(), beats.load(), stores.load(),
                 reads.load(), cycles.load());
        return sam_stop() == CS_OK ? 0 : 93;
    });
    it::Event done;
    REQUIRE_MSG(prog.wait_event("done", 20000, &done), "no progress: deadlock?");
    REQUIRE(done.num("bad") == 0);
    REQUIRE(done.num("cycles") >= 1000);
    REQUIRE(done.num("stores") > 0 && done.num("reads") > 0 && done.num("beats") > 0);
    REQUIRE_EXIT(prog.wait_exit(3000), 0);
    REQUIRE(prog.events_of("reg").size() == 1);
}

PROGRAM_GROUP(FastPath){};

namespace {
struct StrictBeats {
    int result_fd = -1;
    bool probe_clock = false; // only the clock, not sam_hc_send()
    bool store = false;       // sam_data_store() of 64 bytes instead of sam_hc_send()
};

// What the small-store variant stores: the same buffer as its warm-up store
// (the first store from pages the library has not read yet checks them).
unsigned char g_small_data[64];

// From here on, any system call of this thread but write and exit kills it
// (SECCOMP_RET_KILL_THREAD; the rest of the process goes on). A filter, not
// strict mode: some kernels also turn off the TSC in strict mode, and the
// vDSO clock then faults without making any system call.
bool forbid_system_calls() {
    static const sock_filter body[] = {
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_write, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_THREAD),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    return it::install_seccomp_filter(body, sizeof body / sizeof body[0], SECCOMP_RET_KILL_THREAD);
}

// Counts 100,000 calls that returned CS_OK, then writes the count. It leaves
// by the raw exit system call: pthread_exit would need others.
void *beat_without_system_calls(void *arg) {
    const StrictBeats &self = *static_cast<StrictBeats *>(arg);
    if (!forbid_system_calls()) {
        const int failed = -1;
        (void)!::write(self.result_fd, &failed, sizeof failed);
        return nullptr;
    }
    int ok = 0;
    for (int i = 0; i < 100000; ++i) {
        if (self.probe_clock) {
            timespec ts;
            ok += ::clock_gettime(CLOCK_MONOTONIC, &ts) == 0 ? 1 : 0;
        } else if (self.store) {
            g_small_data[0] = static_cast<unsigned char>(i);
            ok += sam_data_store(g_small_data, sizeof g_small_data) == CS_OK ? 1 : 0;
        } else {
            ok += sam_hc_send() == CS_OK ? 1 : 0;
        }
    }
    (void)!::write(self.result_fd, &ok, sizeof ok);
    ::syscall(SYS_exit, 0);
    return nullptr;
}

// Runs beat_without_system_calls: for sam_hc_send() on a thread of its own
// (the instance), for the clock alone in a child process with one thread
// (a thread that left by the raw exit call leaves sanitizer runtimes a stale
// record, which a second such thread would trip over). The answer: the count,
// -1 if the filter could not be set, -2 if the caller was killed for a
// system call.
int count_without_system_calls(bool probe_clock, bool store = false) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return -3;
    StrictBeats arg{fds[1], probe_clock, store};
    pid_t probe = -1;
    pthread_t thread{};
    if (probe_clock) {
        probe = ::fork();
        if (probe == 0) {
            ::close(fds[0]);
            beat_without_system_calls(&arg);
            ::_exit(0);
        }
        ::close(fds[1]); // the child's death is then an end of file at once
        fds[1] = -1;
        if (probe < 0)
            return -3;
    } else if (::pthread_create(&thread, nullptr, beat_without_system_calls, &arg) != 0) {
        return -3;
    }
    // A forbidden call kills only that thread or process, so the answer is
    // awaited with a deadline; a killed thread is never joined.
    pollfd p{fds[0], POLLIN, 0};
    int ok = -2;
    if (::poll(&p, 1, 5000) != 1 || ::read(fds[0], &ok, sizeof ok) != static_cast<ssize_t>(sizeof ok))
        ok = -2;
    if (probe > 0) {
        ::kill(probe, SIGKILL); // already gone unless it hangs
        (void)::waitpid(probe, nullptr, 0);
    } else if (ok != -2) {
        (void)::pthread_join(thread, nullptr);
    }
    ::close(fds[0]);
    if (fds[1] >= 0)
        ::close(fds[1]);
    return ok;
}
} // namespace

// sam_hc_send() on a started instance makes no system call (the fast path
// is a store to the page it shares with the supervisor).
TEST(FastPath, HcSendMakesNoSystemCall) {
    if (it::kUnderTsan)
        return; // TSan's own bookkeeping may map memory from any call
    if (it::kAuditArch == 0) {
        UT_PRINT("skipped: no seccomp architecture value for this machine in the test");
        return;
    }
    prog.start([] {
        // The clock alone first: where the vDSO cannot read it (no usable
        // clock source) every clock read is a system call, ours or not.
        const int clock_ok = count_without_system_calls(true);
        if (clock_ok != 100000) {
            it::emit("ev=beats ok=-4 clock=%d", clock_ok);
            return 0;
        }
        if (sam_initialize(10000, SAM_RECOVERY_POLICY_QUIT) != CS_OK)
            return 90;
        if (sam_register(nullptr) != CS_OK)
            return 91;
        if (sam_start() != CS_OK)
            return 92;
        it::emit("ev=beats ok=%d", count_without_system_calls(false));
        return sam_stop() == CS_OK ? 0 : 96;
    });
    it::Event beats;
    REQUIRE_MSG(prog.wait_event("beats", 10000, &beats), prog.transcript());
    if (beats.num("ok") == -4) {
        UT_PRINT(("skipped: reading CLOCK_MONOTONIC makes a system call here (" + beats.text + ")").c_str());
        REQUIRE_EXIT(prog.wait_exit(5000), 0);
        return;
    }
    REQUIRE_MSG(beats.num("ok") == 100000, beats.text + " (-2: the thread was killed for a system call)");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// sam_data_store() of small data makes no system call either (it writes the
// slot shared with the supervisor), once its buffer's pages were checked by
// a first store; and the supervisor then holds the last of those stores.
TEST(FastPath, SmallStoreMakesNoSystemCall) {
    if (it::kUnderTsan)
        return; // TSan's own bookkeeping may map memory from any call
    if (it::kAuditArch == 0) {
        UT_PRINT("skipped: no seccomp architecture value for this machine in the test");
        return;
    }
    prog.start([] {
        if (sam_initialize(10000, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
            return 90;
        unsigned iid = 0;
        if (sam_register(&iid) != CS_OK)
            return 91;
        if (iid == 2) {
            unsigned char got[64] = {};
            size_t size = 0;
            const bool same = sam_data_getsize(&size) == CS_OK && size == sizeof got &&
                              sam_data_restore(got, sizeof got) == CS_OK && got[0] == (99999 & 0xff) && got[1] == 'x';
            it::emit("ev=restored same=%d", same ? 1 : 0);
            return 0;
        }
        std::memset(g_small_data, 'x', sizeof g_small_data);
        if (sam_start() != CS_OK || sam_data_store(g_small_data, sizeof g_small_data) != CS_OK)
            return 92;
        it::emit("ev=stores ok=%d", count_without_system_calls(false, true));
        return 1; // a failure: the next instance shows what the supervisor holds
    });
    it::Event stores, restored;
    REQUIRE_MSG(prog.wait_event("stores", 10000, &stores), prog.transcript());
    REQUIRE_MSG(stores.num("ok") == 100000, stores.text + " (-2: the thread was killed for a system call)");
    REQUIRE_MSG(prog.wait_event("restored", 5000, &restored), prog.transcript());
    REQUIRE_MSG(restored.num("same") == 1, restored.text);
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}
