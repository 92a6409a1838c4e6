// SPDX-License-Identifier: BSD-3-Clause
// test_standby.cpp - the standby instance (sam_overview(3), "Standby
// instance"): the next instance is forked once the current one has started,
// and a restart wakes it instead of forking.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"
#include "fixture.hpp"
#include "script.hpp"

namespace {

// No such process, not even a zombie: reaped by its parent.
bool reaped(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

bool reaped_within(pid_t pid, int timeout_ms) {
    const uint64_t until = it::now_ns() + it::ms(static_cast<uint64_t>(timeout_ms));
    while (!reaped(pid)) {
        if (it::now_ns() >= until)
            return false;
        ::usleep(1000);
    }
    return true;
}

// An instance that reports the data it restored and its name when it
// registers, starts at once and obeys: "store TEXT", "bigstore N",
// "delete", "warn SIG", "stop", "exit N". SIGUSR1 is caught and reported.
int data_program() {
    if (sam_initialize(0, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 91;
    it::set_instance_id(iid);
    it::catch_signal(SIGUSR1);
    size_t n = 0;
    std::string data;
    if (sam_data_getsize(&n) != CS_OK)
        return 92;
    data.resize(n);
    if (n > 0 && sam_data_restore(&data[0], n) != CS_OK)
        return 93;
    const bool text = n <= 64 && data.find_first_not_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos;
    const char *shown = n == 0 ? "-" : text ? data.c_str() : "(long)";
    // bytes: the one byte value of the data, if it has only one.
    const bool uniform = n > 0 && data.find_first_not_of(data[0]) == std::string::npos;
    it::emit("ev=reg iid=%u size=%zu data=%s bytes=%c comm=%s", iid, n, shown, uniform ? data[0] : '-',
             it::comm_of(::getpid()).c_str());
    const cs_error_t started = sam_start();
    it::emit("ev=started iid=%u err=%d", iid, static_cast<int>(started));
    for (;;) {
        const std::string line = it::command(1000);
        cs_error_t err = CS_OK;
        if (line.rfind("store ", 0) == 0) {
            const std::string v = line.substr(6);
            err = sam_data_store(v.data(), v.size());
        } else if (line.rfind("bigstore ", 0) == 0) {
            const std::string v(static_cast<size_t>(std::atol(line.c_str() + 9)), 'b');
            err = sam_data_store(v.data(), v.size());
        } else if (line == "delete") {
            err = sam_data_store(nullptr, 0);
        } else if (line.rfind("warn ", 0) == 0) {
            err = sam_warn_signal_set(std::atoi(line.c_str() + 5));
        } else if (line == "stop") {
            err = sam_stop();
        } else if (line.rfind("exit ", 0) == 0) {
            ::_exit(std::atoi(line.c_str() + 5));
        } else {
            continue;
        }
        it::emit("ev=done iid=%u cmd=%s err=%d", iid, line.substr(0, line.find(' ')).c_str(), static_cast<int>(err));
    }
}

// Sends a command to the scripted instance and waits until it is done.
void command(it::Program &prog, const std::string &cmd) {
    prog.send(cmd);
    it::Event e;
    REQUIRE_MSG(prog.wait_event("done", 3000, &e), cmd);
    REQUIRE_MSG(e.num("err") == CS_OK, cmd);
}
it::Event wait_started(it::Program &prog, unsigned iid) {
    it::Event e;
    REQUIRE(prog.wait_event([iid](const it::Event &x) { return x.is("started") && x.num("iid") == iid; }, 5000, &e));
    REQUIRE(e.num("err") == CS_OK);
    return e;
}
it::Event wait_reg(it::Program &prog, unsigned iid) {
    it::Event e;
    REQUIRE(prog.wait_event("reg", 5000, &e));
    REQUIRE_MSG(e.num("iid") == iid, e.text); // ids go on one by one, standby or not
    return e;
}
// The standby is there once sam_start() has returned.
pid_t standby_now(it::Program &prog) {
    const pid_t sb = it::wait_standby(prog.pid(), 2000);
    REQUIRE_MSG(sb > 0, "no child named sam-standby once the instance has started");
    return sb;
}

} // namespace

PROGRAM_GROUP(Standby){};

// After a failure the next instance is the process that was waiting before
// it: its pid existed before the death. It takes back the program's name,
// gets the next instance id, and the supervisor says where it came from.
TEST(Standby, RestartIsServedByTheStandby) {
    if (!it::standby_possible())
        return;
    it::Script s;
    s.interval_ms = 1000;
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); }, {{"SAM_RESTART_DELAY_MS", "0"}});
    const it::Event reg1 = wait_reg(prog, 1);
    const std::string name = it::comm_of(reg1.pid);
    pid_t standby = -1;
    for (unsigned iid = 1; iid <= 3; ++iid) {
        wait_started(prog, iid);
        standby = standby_now(prog);
        REQUIRE(standby != reg1.pid);
        prog.send("exit 1");
        const it::Event reg = wait_reg(prog, iid + 1);
        REQUIRE_MSG(reg.pid == standby, "instance " + std::to_string(iid + 1) + " is pid " + std::to_string(reg.pid) +
                                            ", the standby was " + std::to_string(standby));
        REQUIRE_MSG(it::comm_of(reg.pid) == name, it::comm_of(reg.pid) + " instead of " + name);
        const std::string n = std::to_string(iid + 1), p = std::to_string(standby);
        REQUIRE(prog.wait_log("the standby (pid " + p + ") becomes instance " + n, 3000));
        REQUIRE(prog.wait_log("instance " + n + " started as pid " + p, 3000));
    }
    wait_started(prog, 4);
    standby = standby_now(prog);
    prog.send("stop");
    REQUIRE(prog.wait_event("stopped", 3000));
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    // Killed and reaped by the supervisor before it exited (had it died of
    // its parent death signal later, it would be our zombie now).
    REQUIRE_MSG(reaped(standby), "the standby outlived its supervisor");
}

// The new instance restores what was stored when its predecessor died, not
// what was stored when the standby was forked: stores made after the fork,
// deletion, data unchanged since the fork, data sent along in a memfd, and
// data too large for a standby (then it is killed and the restart forks).
TEST(Standby, RestoresTheDataOfTheDeath) {
    if (!it::standby_possible())
        return;
    prog.start(data_program, {{"SAM_RESTART_DELAY_MS", "0"}});
    it::Event reg = wait_reg(prog, 1);
    REQUIRE(reg.get("data") == "-");
    const std::string name = reg.get("comm");
    struct Round {
        std::vector<std::string> commands;
        std::string data_after;
    };
    const Round rounds[] = {
        {{"store one"}, "one"},                  // stored after the standby's fork
        {{"store two", "store three"}, "three"}, // the last store wins
        {{"delete"}, "-"},                       // deleted after the fork
        {{"store kept"}, "kept"},                // ...
        {{}, "kept"},                            // unchanged since the standby's fork
    };
    unsigned iid = 1;
    for (const Round &r : rounds) {
        wait_started(prog, iid);
        const pid_t standby = standby_now(prog);
        for (const std::string &c : r.commands)
            command(prog, c);
        prog.send("exit 1");
        reg = wait_reg(prog, ++iid);
        REQUIRE_MSG(reg.pid == standby, reg.text);
        REQUIRE_MSG(reg.get("data") == r.data_after, reg.text + " instead of data=" + r.data_after);
        REQUIRE_MSG(reg.get("comm") == name, reg.text);
    }
    wait_started(prog, iid);
    pid_t standby = standby_now(prog);
    command(prog, "bigstore 40000"); // above the 32 KiB a wake message holds: a memfd goes along
    prog.send("exit 1");
    reg = wait_reg(prog, ++iid);
    REQUIRE_MSG(reg.pid == standby, reg.text);
    REQUIRE_MSG(reg.num("size") == 40000 && reg.get("bytes") == "b", reg.text);
    wait_started(prog, iid);
    standby = standby_now(prog);
    command(prog, "bigstore 300000"); // above the 256 KiB a standby is given
    prog.send("exit 1");
    reg = wait_reg(prog, ++iid);
    REQUIRE_MSG(reg.pid != standby, "a standby was given 300000 bytes");
    REQUIRE_MSG(reg.num("size") == 300000 && reg.get("bytes") == "b", reg.text);
    // Killed on the restart path, reaped once it has ended.
    REQUIRE(reaped_within(standby, 2000));
    REQUIRE(prog.log().find("before use") == std::string::npos); // no complaint for that
    wait_started(prog, iid);
    standby_now(prog); // and the next one is there again
    command(prog, "stop");
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// A thread of the application started before sam_register() stays in the
// supervisor: no standby then, restarts fork, and it is said once.
TEST(Standby, NoStandbyWhileAnApplicationThreadRuns) {
    it::Script s;
    s.interval_ms = 1000;
    s.auto_start = true;
    prog.start(
        [s] {
            int fds[2];
            if (::pipe(fds) != 0)
                return 80;
            std::thread([fd = fds[0]] {
                char c;
                (void)::read(fd, &c, 1); // blocks for the supervisor's life
            }).detach();
            return it::run_script(s);
        },
        {{"SAM_RESTART_DELAY_MS", "0"}});
    for (unsigned iid = 1; iid <= 2; ++iid) {
        const it::Event reg = wait_reg(prog, iid);
        wait_started(prog, iid);
        // A standby would be a child by now (forked before sam_start returns).
        const std::vector<pid_t> children = it::children_of(prog.pid());
        REQUIRE_MSG(children.size() == 1 && children[0] == reg.pid, "children besides the instance");
        if (iid == 1) {
            REQUIRE(prog.wait_log("other threads run in the supervisor", 3000));
            prog.send("exit 1");
        }
    }
    prog.send("stop");
    REQUIRE(prog.wait_event("stopped", 3000));
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    REQUIRE(prog.log().find("started as pid") != std::string::npos);
    REQUIRE(prog.log().find("becomes instance") == std::string::npos);
}

// SAM_STANDBY=0: no standby, restarts fork as they did before.
TEST(Standby, OffWithSamStandby0) {
    it::Script s;
    s.interval_ms = 1000;
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); }, {{"SAM_RESTART_DELAY_MS", "0"}, {"SAM_STANDBY", "0"}});
    const it::Event reg1 = wait_reg(prog, 1);
    wait_started(prog, 1);
    const std::vector<pid_t> before = it::children_of(prog.pid());
    REQUIRE_MSG(before.size() == 1 && before[0] == reg1.pid, "children besides the instance");
    prog.send("exit 1");
    const it::Event reg2 = wait_reg(prog, 2);
    wait_started(prog, 2);
    const std::vector<pid_t> after = it::children_of(prog.pid());
    REQUIRE_MSG(after.size() == 1 && after[0] == reg2.pid, "children besides the instance");
    REQUIRE(prog.log().find("becomes instance") == std::string::npos);
    prog.send("stop");
    REQUIRE(prog.wait_event("stopped", 3000));
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// A standby killed before use is reaped and logged; the next restart forks,
// and the instance it makes gets a standby of its own again.
TEST(Standby, KilledStandbyIsReplacedByAFork) {
    if (!it::standby_possible())
        return;
    it::Script s;
    s.interval_ms = 1000;
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); }, {{"SAM_RESTART_DELAY_MS", "0"}});
    wait_reg(prog, 1);
    wait_started(prog, 1);
    const pid_t standby = standby_now(prog);
    REQUIRE(::kill(standby, SIGKILL) == 0);
    REQUIRE(prog.wait_log("the standby instance (pid " + std::to_string(standby) +
                              ") killed by SIGKILL before use; the next restart forks",
                          3000));
    REQUIRE(reaped(standby));
    prog.send("exit 1");
    const it::Event reg2 = wait_reg(prog, 2);
    REQUIRE(reg2.pid != standby);
    wait_started(prog, 2);
    const pid_t next = standby_now(prog);
    prog.send("exit 1");
    REQUIRE(wait_reg(prog, 3).pid == next);
    wait_started(prog, 3);
    prog.send("stop");
    REQUIRE(prog.wait_event("stopped", 3000));
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// The standby dies with its supervisor, whatever killed it; so does the
// instance (its warn signal), and nothing of the program is left.
TEST(Standby, GoneWithItsSupervisor) {
    if (!it::standby_possible())
        return;
    it::Script s;
    s.interval_ms = 1000;
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); });
    const it::Event reg1 = wait_reg(prog, 1);
    wait_started(prog, 1);
    const pid_t standby = standby_now(prog);
    REQUIRE(::kill(prog.pid(), SIGKILL) == 0);
    REQUIRE(prog.wait_exit(3000).exited);
    // Orphans are reparented to this test process (a subreaper). The
    // standby ends by its parent death signal (SIGKILL) or, when the hang-up
    // of its channel comes first, by exiting.
    const it::Exit sb = prog.wait_orphan(standby, 3000);
    REQUIRE_MSG(sb.exited, "the standby outlived its supervisor");
    const it::Exit inst = prog.wait_orphan(reg1.pid, 3000);
    REQUIRE_MSG(inst.exited, "the instance outlived its supervisor");
    REQUIRE_MSG(::kill(-prog.pid(), 0) != 0 && errno == ESRCH, "processes left in the program's group");
}

// A signal to the whole process group reaches the supervisor and the
// instance, never the standby: the supervisor passes it on to the instance,
// and the standby still serves the restart that follows.
TEST(Standby, SignalToTheGroupSparesTheStandby) {
    if (!it::standby_possible())
        return;
    it::Script s;
    s.interval_ms = 1000;
    s.auto_start = true;
    s.record = {SIGUSR1};
    prog.start([s] { return it::run_script(s); }, {{"SAM_RESTART_DELAY_MS", "0"}});
    wait_reg(prog, 1);
    wait_started(prog, 1);
    const pid_t standby = standby_now(prog);
    REQUIRE(::kill(-prog.pid(), SIGUSR1) == 0);
    // Directly and passed on by the supervisor (the two may merge into one).
    it::Event sig;
    REQUIRE(prog.wait_event("signal", 3000, &sig));
    REQUIRE(sig.num("sig") == SIGUSR1 && sig.num("iid") == 1);
    REQUIRE(prog.wait_log("forwarding SIGUSR1 to instance 1", 3000));
    REQUIRE(it::standby_of(prog.pid()) == standby);
    prog.send("exit 1");
    REQUIRE(wait_reg(prog, 2).pid == standby);
    wait_started(prog, 2);
    prog.send("stop");
    REQUIRE(prog.wait_event("stopped", 3000));
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}

// A warn signal set after the standby's fork is the one the woken instance
// has: here, the signal it gets from the kernel when its supervisor dies.
TEST(Standby, WarnSignalSetAfterTheForkReachesIt) {
    if (!it::standby_possible())
        return;
    prog.start(data_program, {{"SAM_RESTART_DELAY_MS", "0"}});
    wait_reg(prog, 1);
    wait_started(prog, 1);
    const pid_t standby = standby_now(prog);
    command(prog, "warn " + std::to_string(SIGUSR1));
    prog.send("exit 1");
    const it::Event reg2 = wait_reg(prog, 2);
    REQUIRE(reg2.pid == standby);
    wait_started(prog, 2);
    REQUIRE(::kill(prog.pid(), SIGKILL) == 0);
    it::Event sig;
    REQUIRE(prog.wait_event("signal", 3000, &sig));
    REQUIRE_MSG(sig.num("sig") == SIGUSR1 && sig.num("iid") == 2 && sig.pid == standby, sig.text);
    prog.send("exit 0"); // the orphan, still reading commands
    REQUIRE(prog.wait_orphan(standby, 3000).exited);
}

// The restart delay applies as without a standby: it is woken only when
// the back-off has passed.
TEST(Standby, WokenAfterTheRestartDelay) {
    if (!it::standby_possible())
        return;
    prog.start(data_program, {{"SAM_RESTART_BURST", "0"}, {"SAM_RESTART_DELAY_MS", "300"}});
    wait_reg(prog, 1);
    wait_started(prog, 1);
    const pid_t standby = standby_now(prog);
    const uint64_t exit_at = it::now_ns();
    prog.send("exit 1");
    const it::Event reg2 = wait_reg(prog, 2);
    REQUIRE(reg2.pid == standby);
    const uint64_t waited_ms = (reg2.t - exit_at) / 1000000ULL;
    REQUIRE_MSG(waited_ms >= 300, std::to_string(waited_ms) + " ms from the exit to instance 2");
    REQUIRE(prog.wait_log("restarting in 300 ms", 1000));
    wait_started(prog, 2);
    command(prog, "stop");
    prog.send("exit 0");
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
}
