// SPDX-License-Identifier: BSD-3-Clause
// test_outage.cpp - corosync going away and coming back, and corosync's own
// watchdog service ("wd") judging libsam's keys (run inside
// tests/corosync/with-corosync.sh).
#include <csignal>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include <corosync/quorum.h>

#include "checks.hpp"
#include "corosync_fixture.hpp"
#include "script.hpp"

namespace {

using it::kCmapQuit;
using it::kCmapRestart;
using it::kQuorumCmapRestart;

long long log_count(const std::string &pattern) {
    std::string out;
    (void)it::ctl("log-grep '" + pattern + "'", &out);
    return std::atoll(out.c_str());
}

// Starts the scripted program and waits until its instance has started.
void start_and_wait_started(it::Program &prog, const it::Script &s) {
    prog.start([s] { return it::run_script(s); });
    REQUIRE(prog.wait_event("started", 5000));
}

} // namespace

// prog runs under CMAP + QUORUM, other under CMAP only.
COROSYNC_GROUP(Outage){};

// corosync SIGKILLed and started again: the QUORUM instance is warned and
// killed, its successor waits and starts once quorum is back; the CMAP-only
// instance runs on untouched; every key is republished in the new corosync;
// neither supervisor spins while corosync is away.
TEST(Outage, CorosyncKilledAndRestarted) {
    it::Script q;
    q.interval_ms = 500;
    q.policy = kQuorumCmapRestart;
    q.warn_signal = SIGUSR1;
    q.record = {SIGUSR1};
    q.auto_start = true;
    it::Script c = q;
    c.policy = kCmapRestart;
    prog.start([q] { return it::run_script(q); });
    other.start([c] { return it::run_script(c); });
    REQUIRE(prog.wait_event("started", 5000));
    if (!other.wait_event("started", 5000))
        FAIL(other.transcript().c_str());
    std::string last;
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafState), "running", 2000, &last), last);
    REQUIRE_MSG(cmap.wait_string(it::process_key(other.pid(), it::kLeafState), "running", 2000, &last), last);
    cmap.close();
    const int fds_before = it::count_fds(other.pid());

    REQUIRE(it::ctl("kill 10") == 0);
    it::Event warn, reg2;
    REQUIRE(prog.wait_event("signal", 3000, &warn));
    REQUIRE(warn.num("sig") == SIGUSR1 && warn.num("iid") == 1);
    REQUIRE(prog.wait_event([](const it::Event &e) { return e.is("starting") && e.num("iid") == 2; }, 3000, &reg2));

    // Two seconds without corosync: a measurement window, not a wait.
    const long long cpu_q0 = it::cpu_ms(prog.pid()), cpu_c0 = it::cpu_ms(other.pid());
    REQUIRE(!prog.wait_event("started", 2000)); // the successor must not run without quorum
    const long long cpu_q = it::cpu_ms(prog.pid()) - cpu_q0, cpu_c = it::cpu_ms(other.pid()) - cpu_c0;
    REQUIRE_MSG(cpu_q < 100 && cpu_c < 100, "supervisor CPU over 2 s without corosync: quorum " +
                                                std::to_string(cpu_q) + " ms, cmap " + std::to_string(cpu_c) + " ms");

    REQUIRE(it::ctl("start") == 0);
    it::Event started2;
    REQUIRE(prog.wait_event("started", 10000, &started2));
    REQUIRE(started2.num("iid") == 2 && started2.num("err") == CS_OK);
    for (pid_t sup : {prog.pid(), other.pid()}) {
        REQUIRE_MSG(cmap.wait_string(it::process_key(sup, it::kLeafState), "running", 5000, &last), last);
        REQUIRE_MSG(cmap.wait_string(it::process_key(sup, it::kLeafRecovery), "restart", 1000, &last), last);
        uint64_t period = 0;
        REQUIRE(cmap.get_u64(it::process_key(sup, it::kLeafPollPeriod), period) == CS_OK && period == 500);
        REQUIRE(cmap.wait_u64_above(it::process_key(sup, it::kLeafLastUpdated), 0, 2000));
    }
    // The CMAP-only instance never noticed.
    if (other.events_of("reg").size() != 1 || !other.events_of("signal").empty())
        FAIL(("the CMAP-only instance was disturbed" + other.transcript()).c_str());
    REQUIRE(prog.wait_log("republished", 0));
    REQUIRE(other.wait_log("lost the cmap connection", 0) && other.wait_log("republished", 0));
    // No descriptor leaks per reconnect (the CMAP-only supervisor kept its instance).
    int fds_after = it::count_fds(other.pid());
    for (int i = 0; i < 100 && fds_after != fds_before; ++i) {
        (void)other.wait_event("never", 20);
        fds_after = it::count_fds(other.pid());
    }
    REQUIRE_MSG(fds_after == fds_before,
                "descriptors " + std::to_string(fds_before) + " -> " + std::to_string(fds_after));
    for (it::Program *p : {&prog, &other}) {
        p->send("stop");
        REQUIRE(p->wait_event("stopped", 5000));
        p->send("exit 0");
        REQUIRE_EXIT(p->wait_exit(5000), 0);
    }
}

// Without corosync: sam_initialize with QUORUM fails with corosync's error,
// sam_register with CMAP fails with CS_ERR_BAD_HANDLE, and neither changes
// the state; sam_start of a CMAP instance waits 5 s for corosync, then
// returns the cmap error, and works again once corosync is back.
TEST(Outage, CallsWhileCorosyncIsDown) {
    it::Script s;
    s.interval_ms = 500;
    s.policy = kCmapRestart;
    prog.start([s] { return it::run_script(s); });
    REQUIRE(prog.wait_event("reg", 5000));
    REQUIRE(it::ctl("kill 10") == 0);
    REQUIRE(prog.wait_log("lost the cmap connection", 5000));
    const uint64_t asked = it::now_ns();
    prog.send("start");
    it::Event failed_start;
    REQUIRE(prog.wait_event("started", 10000, &failed_start));
    REQUIRE_MSG(failed_start.num("err") != CS_OK, "sam_start succeeded although the state could not be written");
    // It gave corosync the promised 5 s to come back first.
    const uint64_t waited_ms = (failed_start.t - asked) / 1000000ULL;
    REQUIRE_MSG(waited_ms >= 4900 && waited_ms < 8000, "sam_start failed after " + std::to_string(waited_ms) + " ms");

    other.start([] {
        const cs_error_t q = sam_initialize(500, SAM_RECOVERY_POLICY_QUORUM_RESTART);
        // What libquorum itself says, for comparison: the same error.
        quorum_handle_t handle = 0;
        uint32_t type = 0;
        const cs_error_t direct = quorum_initialize(&handle, nullptr, &type);
        if (direct == CS_OK)
            (void)quorum_finalize(handle);
        const cs_error_t again = sam_initialize(500, static_cast<sam_recovery_policy_t>(kCmapRestart));
        const cs_error_t reg = sam_register(nullptr);
        const cs_error_t fin = sam_finalize();
        it::emit("ev=down quorum_init=%d direct=%d init=%d register=%d finalize=%d", static_cast<int>(q),
                 static_cast<int>(direct), static_cast<int>(again), static_cast<int>(reg), static_cast<int>(fin));
        return 0;
    });
    REQUIRE_EXIT_OF(other, other.wait_exit(10000), 0);
    const auto down = other.events_of("down");
    if (down.size() != 1)
        FAIL(other.transcript().c_str());
    REQUIRE_MSG(down[0].num("quorum_init") != CS_OK, down[0].text);
    REQUIRE_MSG(down[0].num("quorum_init") == down[0].num("direct"), down[0].text);
    REQUIRE_MSG(down[0].num("init") == CS_OK, down[0].text);
    REQUIRE_MSG(down[0].num("register") == CS_ERR_BAD_HANDLE, down[0].text);
    REQUIRE_MSG(down[0].num("finalize") == CS_OK, down[0].text);

    REQUIRE(it::ctl("start") == 0);
    REQUIRE(prog.wait_log("republished", 10000));
    // The failed start left the instance registered: cmap must not say
    // "running" (wd would then judge a process that is not health checked).
    std::string republished;
    REQUIRE(cmap.get_string(it::process_key(prog.pid(), it::kLeafState), republished) == CS_OK);
    REQUIRE_MSG(republished == "stopped", "after a failed sam_start the republished state is '" + republished + "'");
    prog.send("start");
    it::Event ok_start;
    REQUIRE(prog.wait_event("started", 5000, &ok_start));
    REQUIRE(ok_start.num("err") == CS_OK);
    std::string last;
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafState), "running", 0, &last), last);
    prog.send("stop");
    REQUIRE(prog.wait_event("stopped", 5000));
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// sam_start while corosync restarts: the call waits for the reconnect and
// succeeds with the state "running" in the new corosync, instead of failing
// (an application that gives up when sam_start fails would end for good).
TEST(Outage, StartWaitsForCorosyncToComeBack) {
    it::Script s;
    s.interval_ms = 500;
    s.policy = kCmapRestart;
    prog.start([s] { return it::run_script(s); });
    REQUIRE(prog.wait_event("reg", 5000));
    REQUIRE(it::ctl("kill 10") == 0);
    REQUIRE(prog.wait_log("lost the cmap connection", 5000));
    prog.send("start");
    REQUIRE(prog.wait_log("will be written when it is back", 3000));
    REQUIRE(prog.events_of("started").empty()); // still waiting
    REQUIRE(it::ctl("start") == 0);
    it::Event started;
    REQUIRE(prog.wait_event("started", 8000, &started));
    REQUIRE_MSG(started.num("err") == CS_OK, started.text);
    std::string last;
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafState), "running", 3000, &last), last);
    prog.send("stop");
    it::Event stopped;
    REQUIRE(prog.wait_event("stopped", 5000, &stopped));
    REQUIRE(stopped.num("err") == CS_OK);
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// A graceful corosync stop (cmap calls may block meanwhile) and start while
// a CMAP-only instance beats every 50 ms with T = 500 ms (T leaves room for
// the CPU that a starting corosync takes on a loaded machine): the instance
// is never warned, sam_stop fails after waiting 5 s while the state cannot be
// written (the instance stays started) and works once corosync is back.
TEST(Outage, GracefulStopDoesNotDisturbHealthChecks) {
    it::Script s;
    s.interval_ms = 500;
    s.hc_period_ms = 50;
    s.policy = kCmapRestart;
    s.warn_signal = SIGUSR1;
    s.record = {SIGUSR1};
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); });
    REQUIRE(prog.wait_event("started", 5000));
    REQUIRE(it::ctl("stop 20") == 0);
    REQUIRE(prog.wait_log("lost the cmap connection", 5000));
    const uint64_t asked = it::now_ns();
    prog.send("stop");
    it::Event failed_stop;
    REQUIRE(prog.wait_event("stopped", 10000, &failed_stop));
    REQUIRE_MSG(failed_stop.num("err") != CS_OK, "sam_stop succeeded although the state could not be written");
    const uint64_t waited_ms = (failed_stop.t - asked) / 1000000ULL;
    REQUIRE_MSG(waited_ms >= 4900 && waited_ms < 8000, "sam_stop failed after " + std::to_string(waited_ms) + " ms");
    REQUIRE(it::ctl("start") == 0);
    REQUIRE(prog.wait_log("republished", 10000));
    REQUIRE(prog.events_of("signal").empty()); // never warned meanwhile
    REQUIRE(prog.events_of("reg").size() == 1);
    std::string last;
    // The failed stop left the instance started (and health checked): cmap
    // must say "running" again, not the "stopped" that could not be written.
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafState), "running", 3000, &last),
                "after a failed sam_stop the republished state is '" + last + "'");
    prog.send("stop");
    it::Event ok_stop;
    REQUIRE(prog.wait_event("stopped", 5000, &ok_stop));
    REQUIRE(ok_stop.num("err") == CS_OK);
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafState), "stopped", 0, &last), last);
    REQUIRE(prog.events_of("signal").empty());
    REQUIRE(prog.events_of("reg").size() == 1);
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

COROSYNC_GROUP(Watchdog){};

// A healthy instance beating every T/2 (T = 1000) for 5 s: last_updated
// keeps advancing and corosync's wd never calls it late or failed.
TEST(Watchdog, HealthyInstanceNeverLate) {
    it::Script s;
    s.interval_ms = 1000;
    s.hc_period_ms = 500;
    s.policy = kCmapRestart;
    s.auto_start = true;
    // wd's "too late" line does not name the resource: count new ones only
    // (earlier tests' resources are deleted by their teardown).
    const long long late_before = log_count("too late");
    start_and_wait_started(prog, s);
    const std::string stamp_key = it::process_key(prog.pid(), it::kLeafLastUpdated);
    uint64_t stamp = 0;
    REQUIRE(cmap.wait_u64_above(stamp_key, 0, 1000, &stamp));
    const uint64_t until = it::now_ns() + it::ms(5000);
    int advances = 0;
    while (it::now_ns() < until) {
        uint64_t next = 0;
        REQUIRE_MSG(cmap.wait_u64_above(stamp_key, stamp, 1500, &next), "last_updated stuck for 1.5 s");
        ++advances;
        stamp = next;
    }
    REQUIRE(advances >= 4);
    const std::string pid = std::to_string(prog.pid());
    REQUIRE(it::ctl("wait-log 'Fsm:" + pid + " event \"config_changed\", state \"stopped\" --> \"running\"' 5") == 0);
    REQUIRE(log_count("too late") == late_before);
    REQUIRE(log_count("resource \"" + pid + "\" failed") == 0);
    prog.send("stop");
    REQUIRE(prog.wait_event("stopped", 5000));
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// A hung instance (QUIT): killed by the supervisor, state "failed", and
// corosync's wd reports the resource as failed.
TEST(Watchdog, HungInstanceReportedByWd) {
    it::Script s;
    s.interval_ms = 500;
    s.policy = kCmapQuit;
    s.auto_start = true;
    s.warn_signal = SIGUSR1;
    s.record = {SIGUSR1};
    start_and_wait_started(prog, s);
    prog.send("hang");
    const it::Exit x = prog.wait_exit(5000);
    REQUIRE_KILLED(x, SIGKILL);
    std::string state;
    REQUIRE(cmap.get_string(it::process_key(prog.pid(), it::kLeafState), state) == CS_OK && state == "failed");
    const std::string pid = std::to_string(prog.pid());
    REQUIRE(it::ctl("wait-log 'resource \"" + pid + "\" failed' 10") == 0);
}

// cmap writes are coalesced: 100,000 health checks cost corosync almost
// nothing (no cmap round trip per beat).
TEST(Watchdog, HealthChecksAreCoalesced) {
    it::Script s;
    s.interval_ms = 1000;
    s.policy = kCmapRestart;
    s.auto_start = true;
    start_and_wait_started(prog, s);
    const pid_t corosync = it::corosync_pid();
    REQUIRE(corosync > 0);
    const long long before = it::cpu_ms(corosync);
    prog.send("hc 100000");
    it::Event done;
    REQUIRE(prog.wait_event("hc_done", 10000, &done));
    const long long used = it::cpu_ms(corosync) - before;
    REQUIRE(done.num("ok") == 100000);
    REQUIRE_MSG(used < 50, "corosync used " + std::to_string(used) + " ms of CPU for 100000 health checks");
    prog.send("stop");
    REQUIRE(prog.wait_event("stopped", 5000));
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}
