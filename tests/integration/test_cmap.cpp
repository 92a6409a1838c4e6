// SPDX-License-Identifier: BSD-3-Clause
// test_cmap.cpp - the CMAP and QUORUM policies against a real corosync
// (run inside tests/corosync/with-corosync.sh). Keys are read by another
// cmap client, as corosync's watchdog service or an operator would.
#include <csignal>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"
#include "corosync_fixture.hpp"
#include "script.hpp"

namespace {

using it::kCmapQuit;
using it::kCmapRestart;
using it::kQuorumCmapRestart;

} // namespace

COROSYNC_GROUP(Cmap) {
    pid_t sup = -1;
    std::string key(const char *leaf) const { return it::process_key(sup, leaf); }
    std::string str(const char *leaf) {
        std::string v;
        const cs_error_t e = cmap.get_string(key(leaf), v);
        return e == CS_OK ? v : "<error " + std::to_string(static_cast<int>(e)) + ">";
    }
    it::Event start_script(const it::Script &s, const it::Program::Env &env = {}) {
        prog.start([s] { return it::run_script(s); }, env);
        sup = prog.pid();
        it::Event reg;
        REQUIRE(prog.wait_event("reg", 5000, &reg));
        REQUIRE(reg.num("err") == CS_OK);
        return reg;
    }
    void command(const std::string &cmd, const char *ev) {
        prog.send(cmd);
        it::Event e;
        REQUIRE_MSG(prog.wait_event(ev, 5000, &e), cmd);
        REQUIRE_MSG(e.num("err") == CS_OK, cmd);
    }
    // None of the supervisor's keys exists in cmap.
    void require_no_keys() {
        for (const char *leaf : it::kProcessLeaves) {
            std::string v;
            const cs_error_t e = cmap.get_string(key(leaf), v);
            REQUIRE_MSG(e == CS_ERR_NOT_EXIST, std::string(leaf) + ": " + (e == CS_OK ? v : std::to_string(e)));
        }
    }
    // See TEST(Cmap, QuorumBlocksStartAndLossKills).
    // With `by_standby`, the restart is also required to be served by the
    // standby forked when instance 1 started.
    void quorum_blocks_start_and_loss_kills(int policy, bool by_standby = false) {
        const bool with_cmap = (policy & SAM_RECOVERY_POLICY_CMAP) != 0;
        REQUIRE(it::ctl("expected-votes 2") == 0);
        REQUIRE(it::ctl("wait-inquorate 5") == 0);
        it::Script s;
        s.interval_ms = 300;
        s.policy = policy;
        s.warn_signal = SIGUSR1;
        s.record = {SIGUSR1};
        s.auto_start = true;
        start_script(s);
        std::string last;
        for (unsigned iid = 1; iid <= 2; ++iid) {
            REQUIRE(
                prog.wait_event([iid](const it::Event &e) { return e.is("starting") && e.num("iid") == iid; }, 5000));
            if (with_cmap)
                REQUIRE_MSG(cmap.wait_string(key(it::kLeafState), "waiting for quorum", 3000, &last), last);
            // Still blocked a while later (the condition under test is absence).
            REQUIRE(!prog.wait_event("started", 300));
            REQUIRE(it::ctl("expected-votes 1") == 0);
            it::Event started;
            REQUIRE(prog.wait_event("started", 5000, &started));
            REQUIRE(started.num("iid") == iid && started.num("err") == CS_OK);
            if (with_cmap)
                REQUIRE_MSG(str(it::kLeafState) == "running", str(it::kLeafState));
            else
                require_no_keys();
            if (iid == 2)
                break;
            const pid_t standby = by_standby ? it::wait_standby(sup, 2000) : -1;
            REQUIRE(!by_standby || standby > 0);
            // Quorum lost while started: warn, then SIGKILL after T, then instance 2.
            REQUIRE(it::ctl("expected-votes 2") == 0);
            it::Event warn, reg2;
            REQUIRE(prog.wait_event("signal", 3000, &warn));
            REQUIRE(warn.num("sig") == SIGUSR1 && warn.num("iid") == 1);
            REQUIRE(prog.wait_event("reg", 3000, &reg2));
            REQUIRE(reg2.num("iid") == 2);
            REQUIRE_MSG(!by_standby || reg2.pid == standby, reg2.text);
            const long long gap = it::ms_between(warn.t, reg2.t);
            // Under TSan the handler (and so warn.t) runs late, at the instance's
            // next libc call, up to one beat period (T/3 here) after delivery.
            const long long floor = it::kUnderTsan ? 290 - 100 : 290;
            REQUIRE_MSG(gap >= floor && gap < 1000, std::to_string(gap) + " ms from warn to instance 2");
        }
        command("stop", "stopped");
        prog.send("exit 0");
        REQUIRE_EXIT(prog.wait_exit(5000), 0);
        REQUIRE(prog.events_of("reg").size() == 2);
    }
};

// recovery and poll_period from register on; state stopped -> running (when
// sam_start returns) -> stopped (when sam_stop returns); all keys deleted
// after a clean exit before start.
TEST(Cmap, KeysFollowTheStates) {
    it::Script s;
    s.interval_ms = 300;
    s.policy = kCmapRestart;
    start_script(s);
    REQUIRE(str(it::kLeafRecovery) == "restart");
    uint64_t period = 0;
    REQUIRE(cmap.get_u64(key(it::kLeafPollPeriod), period) == CS_OK && period == 300);
    std::string last;
    REQUIRE_MSG(cmap.wait_string(key(it::kLeafState), "stopped", 2000, &last), last);
    for (int round = 0; round < 2; ++round) {
        command("start", "started");
        REQUIRE_MSG(str(it::kLeafState) == "running", "right after sam_start returned: " + str(it::kLeafState));
        uint64_t stamp = 0;
        REQUIRE(cmap.get_u64(key(it::kLeafLastUpdated), stamp) == CS_OK && stamp > 0);
        command("stop", "stopped");
        REQUIRE_MSG(str(it::kLeafState) == "stopped", "right after sam_stop returned: " + str(it::kLeafState));
    }
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    require_no_keys();
}

// An instance killed before sam_start ends the supervisor by the same
// signal, and the keys go with it, as after a clean exit.
TEST(Cmap, KilledBeforeStartDeletesKeys) {
    it::Script s;
    s.interval_ms = 300;
    s.policy = kCmapRestart;
    start_script(s);
    std::string last;
    REQUIRE_MSG(cmap.wait_string(key(it::kLeafState), "stopped", 2000, &last), last);
    prog.send("crash " + std::to_string(SIGUSR2));
    const it::Exit x = prog.wait_exit(5000);
    REQUIRE_KILLED(x, SIGUSR2);
    require_no_keys();
    REQUIRE(prog.events_of("reg").size() == 1);
}

// Every instance starts out "stopped": after a failure of a running
// instance, the next one already sees "stopped" when sam_register returns.
TEST(Cmap, NextInstanceStartsStopped) {
    it::Script s;
    s.interval_ms = 300;
    s.policy = kCmapRestart;
    start_script(s);
    command("start", "started");
    REQUIRE(str(it::kLeafState) == "running");
    prog.send("exit 1");
    it::Event reg2;
    REQUIRE(prog.wait_event("reg", 5000, &reg2));
    REQUIRE(reg2.num("iid") == 2);
    REQUIRE_MSG(str(it::kLeafState) == "stopped", "when instance 2 registered: " + str(it::kLeafState));
    command("start", "started");
    REQUIRE(str(it::kLeafState) == "running");
    command("stop", "stopped");
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// A restart served by the standby (sam_overview(3)) looks the same in cmap:
// "stopped" when the new instance registers, "running" once it started,
// under the supervisor's pid; nothing is ever published for the standby.
TEST(Cmap, RestartByTheStandbyStartsStopped) {
    if (!it::standby_possible())
        return;
    it::Script s;
    s.interval_ms = 300;
    s.policy = kCmapRestart;
    start_script(s);
    command("start", "started");
    REQUIRE(str(it::kLeafState) == "running");
    const pid_t standby = it::wait_standby(sup, 2000);
    REQUIRE(standby > 0);
    std::string v;
    REQUIRE(cmap.get_string(it::process_key(standby, it::kLeafState), v) == CS_ERR_NOT_EXIST);
    prog.send("exit 1");
    it::Event reg2;
    REQUIRE(prog.wait_event("reg", 5000, &reg2));
    REQUIRE(reg2.num("iid") == 2);
    REQUIRE_MSG(reg2.pid == standby, reg2.text);
    REQUIRE_MSG(str(it::kLeafState) == "stopped", "when instance 2 registered: " + str(it::kLeafState));
    command("start", "started");
    REQUIRE(str(it::kLeafState) == "running");
    REQUIRE(cmap.get_string(it::process_key(reg2.pid, it::kLeafState), v) == CS_ERR_NOT_EXIST);
    command("stop", "stopped");
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    require_no_keys();
}

// QUORUM with a standby: the restarted instance is the standby and still
// waits for quorum in sam_start(), as any instance does.
TEST(Cmap, QuorumRestartByTheStandbyStillWaits) {
    if (it::standby_possible())
        quorum_blocks_start_and_loss_kills(kQuorumCmapRestart, true);
}

// QUIT: a failure after start leaves state "failed" behind.
TEST(Cmap, FailureUnderQuitLeavesFailed) {
    it::Script s;
    s.interval_ms = 300;
    s.policy = kCmapQuit;
    s.auto_start = true;
    start_script(s);
    REQUIRE(prog.wait_event("started", 5000));
    REQUIRE(str(it::kLeafRecovery) == "quit");
    prog.send("exit 3");
    REQUIRE_EXIT(prog.wait_exit(5000), 3);
    REQUIRE(str(it::kLeafState) == "failed");
    REQUIRE(str(it::kLeafRecovery) == "quit");
}

// RESTART with a back-off delay: while no instance runs, cmap says
// "stopped", not a "running" whose last_updated has stopped moving (which
// corosync's watchdog service would take for a hung process).
TEST(Cmap, BackOffShowsStopped) {
    it::Script s;
    s.interval_ms = 300;
    s.policy = kCmapRestart;
    s.auto_start = true;
    start_script(s, {{"SAM_RESTART_BURST", "0"}, {"SAM_RESTART_DELAY_MS", "4000"}});
    REQUIRE(prog.wait_event("started", 5000));
    REQUIRE(str(it::kLeafState) == "running");
    prog.send("exit 1");
    REQUIRE(prog.wait_log("restarting in 4000 ms", 3000));
    std::string last;
    REQUIRE_MSG(cmap.wait_string(key(it::kLeafState), "stopped", 1500, &last), "during the back-off: " + last);
    it::Event reg2;
    REQUIRE(prog.wait_event("reg", 8000, &reg2));
    REQUIRE(reg2.num("iid") == 2);
    REQUIRE(prog.wait_event("started", 5000));
    REQUIRE(str(it::kLeafState) == "running");
}

namespace {
void expect_marked_failed(it::Program &prog, it::CmapView &cmap, pid_t sup) {
    (void)cmap;
    (void)sup;
    const it::Exit x = prog.wait_exit(5000);
    REQUIRE(x.exited);
    REQUIRE(prog.events_of("marked").empty());  // killed inside the call
    REQUIRE(prog.events_of("signal").empty());  // no warn signal
    REQUIRE(prog.events_of("reg").size() == 1); // no restart
    REQUIRE(prog.wait_log("marked itself failed", 0));
    std::string state;
    REQUIRE(cmap.get_string(it::process_key(sup, it::kLeafState), state) == CS_OK && state == "failed");
}
} // namespace

// sam_mark_failed() while started: killed without the warn signal, state
// "failed", the supervisor quits instead of restarting.
TEST(Cmap, MarkFailedWhileStarted) {
    it::Script s;
    s.interval_ms = 300;
    s.policy = kCmapRestart;
    s.warn_signal = SIGUSR1;
    s.record = {SIGUSR1};
    s.auto_start = true;
    start_script(s);
    REQUIRE(prog.wait_event("started", 5000));
    prog.send("mark_failed");
    expect_marked_failed(prog, cmap, sup);
}

TEST(Cmap, MarkFailedBeforeStart) {
    it::Script s;
    s.interval_ms = 300;
    s.policy = kCmapRestart;
    s.warn_signal = SIGUSR1;
    s.record = {SIGUSR1};
    start_script(s);
    prog.send("mark_failed");
    expect_marked_failed(prog, cmap, sup);
}

// QUORUM: sam_start blocks while inquorate ("waiting for quorum" with
// CMAP), returns when quorum comes; a quorum loss while started warns, then
// kills; the next instance waits in sam_start until quorum returns.
// Without CMAP the same holds and nothing is written to cmap.
TEST(Cmap, QuorumBlocksStartAndLossKills) { quorum_blocks_start_and_loss_kills(kQuorumCmapRestart); }

TEST(Cmap, QuorumWithoutCmapBlocksStartAndLossKills) {
    quorum_blocks_start_and_loss_kills(SAM_RECOVERY_POLICY_QUORUM_RESTART);
}

// With the corosync connections open in the supervisor (QUORUM + CMAP), a
// program the instance executes inherits none of them.
TEST(Cmap, NoCorosyncDescriptorLeaksIntoExec) {
    it::Script s;
    s.interval_ms = 3000; // popen() may take a while on a loaded machine
    s.policy = kQuorumCmapRestart;
    s.auto_start = true;
    start_script(s);
    REQUIRE(prog.wait_event("started", 5000));
    prog.send("execfds");
    it::Event fds;
    REQUIRE(prog.wait_event("execfds", 3000, &fds));
    const std::string list = fds.get("fds");
    for (const char *bad : {"socket:", "anon_inode:", "memfd:", "/dev/shm"})
        REQUIRE_MSG(list.find(bad) == std::string::npos, "an executed program inherits " + list);
    command("stop", "stopped");
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// While sam_start waits for quorum, last_updated keeps being refreshed: the
// wd service never calls the waiting process late or failed.
TEST(Cmap, WaitingForQuorumNotReportedByWd) {
    REQUIRE(it::ctl("expected-votes 2") == 0);
    REQUIRE(it::ctl("wait-inquorate 5") == 0);
    std::string before;
    (void)it::ctl("log-grep 'too late'", &before);
    it::Script s;
    s.interval_ms = 500;
    s.policy = kQuorumCmapRestart;
    s.auto_start = true;
    start_script(s);
    std::string last;
    REQUIRE_MSG(cmap.wait_string(key(it::kLeafState), "waiting for quorum", 3000, &last), last);
    const std::string pid = std::to_string(sup);
    REQUIRE(it::ctl("wait-log 'Fsm:" + pid + " event \"config_changed\", state \"stopped\" --> \"running\"' 5") == 0);
    // Three wd periods of waiting: the condition under test is absence.
    REQUIRE(!prog.wait_event("started", 1500));
    std::string after, failed;
    (void)it::ctl("log-grep 'too late'", &after);
    REQUIRE_MSG(std::atoll(after.c_str()) == std::atoll(before.c_str()), "wd called it late");
    (void)it::ctl("log-grep 'resource \"" + pid + "\" failed'", &failed);
    REQUIRE_MSG(std::atoll(failed.c_str()) == 0, "wd called it failed");
    REQUIRE(it::ctl("expected-votes 1") == 0);
    REQUIRE(prog.wait_event("started", 5000));
    command("stop", "stopped");
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// QUORUM_QUIT with T = 0 (no health deadline): a quorum loss still warns,
// then kills about a second later; the supervisor quits like the instance
// and leaves "failed".
TEST(Cmap, QuorumLossWithoutDeadlineUnderQuit) {
    it::Script s;
    s.interval_ms = 0;
    s.policy = SAM_RECOVERY_POLICY_QUORUM_QUIT | SAM_RECOVERY_POLICY_CMAP;
    s.warn_signal = SIGUSR1;
    s.record = {SIGUSR1};
    s.auto_start = true;
    s.hc_period_ms = 100;
    start_script(s);
    REQUIRE(prog.wait_event("started", 5000));
    REQUIRE(it::ctl("expected-votes 2") == 0);
    it::Event warn;
    REQUIRE(prog.wait_event("signal", 3000, &warn));
    REQUIRE(warn.num("sig") == SIGUSR1);
    const it::Exit x = prog.wait_exit(5000);
    const uint64_t ended = it::now_ns();
    REQUIRE_KILLED(x, SIGKILL);
    REQUIRE_MSG(ended - warn.t >= it::ms(900), std::to_string((ended - warn.t) / 1000000) + " ms after the warning");
    REQUIRE(str(it::kLeafState) == "failed");
    REQUIRE(prog.events_of("reg").size() == 1);
}
