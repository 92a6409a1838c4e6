// SPDX-License-Identifier: BSD-3-Clause
// test_reaper.cpp - another reaper in the supervisor process.
//
// Application threads started before sam_register() stay in the supervisor.
// One of them may reap the instance itself (waitpid(-1)), or make the kernel
// reap it (SIGCHLD set to SIG_IGN). The supervisor must then treat the
// instance as dead with an unknown status: restart it (RESTART) or exit with
// status 70 (QUIT, or an instance that was not started), log that once,
// stay idle meanwhile, and never signal the pid it no longer owns.
//
// This program defines kill() and sigqueue(): the dynamic linker binds
// libsam's calls to them, so every signal the supervisor sends by pid shows
// as an event ("ev=sigcall"). Signals sent through a pidfd cannot reach a
// foreign process and are not seen here.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"
#include "fixture.hpp"

namespace {

constexpr int kT = 200;                // ms
constexpr int kExitStatusUnknown = 70; // documented in sam_register(3)

// Waits until the process has a child (the first instance), without reaping.
void wait_for_a_child() {
    for (;;) {
        siginfo_t si{};
        if (::waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
            return;
        struct timespec step = {0, 1000000}; // a poll step of the application's thread
        ::nanosleep(&step, nullptr);
    }
}

// The application's reaper: reaps every child of the process, whoever made
// it. It races the supervisor's thread for each exit status; which one wins
// depends on the scheduler, so the test below goes on until it has won a few.
void *reap_everything(void *) {
    for (;;) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, 0);
        if (pid > 0) {
            it::emit("ev=reaped child=%d", static_cast<int>(pid));
            continue;
        }
        struct timespec step = {0, 1000000}; // no child right now
        ::nanosleep(&step, nullptr);
    }
    return nullptr;
}

void *ignore_sigchld(void *) {
    wait_for_a_child();
    ::signal(SIGCHLD, SIG_IGN);
    it::emit("ev=ignoring");
    return nullptr;
}

void start_thread(void *(*fn)(void *)) {
    pthread_t t;
    if (::pthread_create(&t, nullptr, fn, nullptr) == 0)
        ::pthread_detach(t);
}

// Every instance reports and waits for the test: "start" calls sam_start(),
// "die" exits 3 (a failure once started), "exit" exits 0 (unstarted: the
// supervisor exits too). Some are killed by the test instead.
int cycling_program(sam_recovery_policy_t policy, void *(*app_thread)(void *)) {
    start_thread(app_thread); // before sam_register: it stays in the supervisor
    const it::Registration reg = it::register_instance(kT, policy);
    if (!reg)
        return reg.exit_status;
    const unsigned iid = reg.iid;
    for (;;) {
        (void)sam_hc_send(); // CS_ERR_BAD_HANDLE until started
        const std::string cmd = it::command(kT / 4);
        if (cmd == "start") {
            if (sam_start() != CS_OK)
                return 92;
            it::emit("ev=started iid=%u", iid);
        } else if (cmd == "die") {
            return 3;
        } else if (cmd == "exit") {
            return 0;
        }
    }
}

// An event of this kind for instance `iid`, whether it came before or after
// the last one waited for (the application's thread and the instances report
// in any order).
bool saw(it::Program &prog, const char *ev, unsigned iid, it::Event *out = nullptr) {
    auto match = [ev, iid](const it::Event &e) { return e.is(ev) && e.num("iid", 0) == static_cast<long long>(iid); };
    for (const it::Event &e : prog.events()) {
        if (match(e)) {
            if (out != nullptr)
                *out = e;
            return true;
        }
    }
    return prog.wait_event(match, 3000, out);
}

// Starts instance `iid` (reported in `reg`), then ends it: odd ones exit,
// even ones are killed.
bool end_instance(it::Program &prog, unsigned iid, const it::Event &reg) {
    prog.send("start");
    if (!saw(prog, "started", iid))
        return false;
    if (iid % 2 == 1)
        prog.send("die");
    else
        (void)::kill(static_cast<pid_t>(reg.pid), SIGKILL);
    return true;
}

std::vector<pid_t> reaped_by_application(it::Program &prog) {
    std::vector<pid_t> out;
    for (const it::Event &e : prog.events_of("reaped"))
        out.push_back(static_cast<pid_t>(e.num("child")));
    return out;
}

// Signals the supervisor sent by pid to a process that was already gone
// from its point of view (reaped by the application or by the kernel).
std::string foreign_signals(it::Program &prog, const std::vector<pid_t> &gone) {
    std::string bad;
    for (const it::Event &e : prog.events_of("sigcall"))
        for (pid_t pid : gone)
            if (e.num("target") == pid)
                bad += "  " + e.text + "\n";
    return bad;
}

} // namespace

// The supervisor's own signals by pid, seen through the dynamic linker.
extern "C" int kill(pid_t pid, int sig) {
    if (pid > 0 && pid != ::getpid())
        it::emit("ev=sigcall fn=kill target=%d sig=%d", static_cast<int>(pid), sig);
    return static_cast<int>(::syscall(SYS_kill, pid, sig));
}

extern "C" int sigqueue(pid_t pid, int sig, const union sigval value) {
    using Fn = int (*)(pid_t, int, const union sigval);
    static Fn next = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "sigqueue"));
    if (pid > 0 && pid != ::getpid())
        it::emit("ev=sigcall fn=sigqueue target=%d sig=%d", static_cast<int>(pid), sig);
    if (next == nullptr) {
        errno = ENOSYS;
        return -1;
    }
    return next(pid, sig, value);
}

PROGRAM_GROUP(Reaper){};

// A thread of the application reaps the instances with waitpid(-1): each
// death still leads to a restart, the supervisor's thread stays idle, and
// no signal goes to a pid it no longer owns. The two threads race for every
// exit status: instances fail until the application's thread has won
// kWins of them (or kMaxInstances ran; it must have won at least once).
TEST(Reaper, WaitpidThreadInSupervisorRestartsIdly) {
    constexpr size_t kWins = 3;
    constexpr unsigned kMaxInstances = 40;
    prog.start([] { return cycling_program(SAM_RECOVERY_POLICY_RESTART, reap_everything); },
               {{"SAM_RESTART_DELAY_MS", "0"}});
    it::Event reg;
    REQUIRE(saw(prog, "reg", 1, &reg));
    // The supervisor's loop runs in the program's main thread (tid == pid).
    const long long cpu_start = it::thread_cpu_ms(prog.pid(), prog.pid());
    const uint64_t t_start = it::now_ns();
    bool restarted_every_time = true;
    unsigned iid = 1;
    while (reaped_by_application(prog).size() < kWins && iid < kMaxInstances) {
        if (!end_instance(prog, iid, reg) || !saw(prog, "reg", iid + 1, &reg)) {
            restarted_every_time = false;
            break;
        }
        ++iid;
    }
    if (restarted_every_time)
        (void)prog.wait_event("never", 1000); // a window in which the supervisor has nothing to do
    const long long cpu_used = it::thread_cpu_ms(prog.pid(), prog.pid()) - cpu_start;
    const long long window_ms = static_cast<long long>((it::now_ns() - t_start) / 1000000);
    std::printf("supervisor thread: %lld ms of CPU in %lld ms; %u instances\n", cpu_used, window_ms, iid);
    const std::vector<pid_t> reaped = reaped_by_application(prog);
    const std::string foreign = foreign_signals(prog, reaped);
    const std::string log = prog.log();
    prog.send("exit");
    const it::Exit x = prog.wait_exit(3000);

    CHECK_TEXT(foreign.empty(), ("signals to pids reaped elsewhere:\n" + foreign + prog.transcript()).c_str());
    CHECK_TEXT(cpu_used * 1000 < 200 * window_ms, ("supervisor thread used " + std::to_string(cpu_used) +
                                                   " ms of CPU in " + std::to_string(window_ms) + " ms")
                                                      .c_str());
    CHECK_TEXT(restarted_every_time,
               ("no restart after instance " + std::to_string(iid) + " died\n" + prog.transcript()).c_str());
    // Else this test proved nothing.
    CHECK_TEXT(!reaped.empty(), ("the application's thread never won the race\n" + prog.transcript()).c_str());
    // Every death the supervisor could not reap was logged once.
    size_t unknown_lines = 0;
    for (size_t at = log.find("reaped elsewhere"); at != std::string::npos; at = log.find("reaped elsewhere", at + 1))
        ++unknown_lines;
    CHECK_TEXT(unknown_lines >= 1 && unknown_lines <= reaped.size(), prog.transcript().c_str());
    // The last instance, never started, ends the supervisor: status 0 if the
    // supervisor reaped it, 70 (unknown) if the application's thread did.
    CHECK_TEXT(it::exited_with(x, kExitStatusUnknown) || it::exited_with(x, 0),
               ("got " + it::describe_exit(x) + prog.transcript()).c_str());
}

// SIGCHLD set to SIG_IGN by another thread after sam_register(): the kernel
// reaps every instance at once. Same outcome, deterministically: restarts,
// an idle supervisor, and exit status 70 when the last, unstarted instance
// ends (its real status is lost).
TEST(Reaper, SigchldIgnoredByAnotherThreadRestartsIdly) {
    constexpr unsigned kLast = 4;
    prog.start([] { return cycling_program(SAM_RECOVERY_POLICY_RESTART, ignore_sigchld); },
               {{"SAM_RESTART_DELAY_MS", "0"}});
    REQUIRE(saw(prog, "ignoring", 0));
    const long long cpu_start = it::thread_cpu_ms(prog.pid(), prog.pid());
    const uint64_t t_start = it::now_ns();
    it::Event reg;
    bool reached_last = false;
    std::vector<pid_t> gone;
    for (unsigned iid = 1; iid <= kLast; ++iid) {
        if (!saw(prog, "reg", iid, &reg))
            break;
        reached_last = iid == kLast;
        if (reached_last)
            break;
        gone.push_back(static_cast<pid_t>(reg.pid));
        if (!end_instance(prog, iid, reg))
            break;
    }
    if (reached_last)
        (void)prog.wait_event("never", 1000);
    const long long cpu_used = it::thread_cpu_ms(prog.pid(), prog.pid()) - cpu_start;
    const long long window_ms = static_cast<long long>((it::now_ns() - t_start) / 1000000);
    std::printf("supervisor thread: %lld ms of CPU in %lld ms\n", cpu_used, window_ms);
    prog.send("exit");
    const it::Exit x = prog.wait_exit(3000);

    CHECK_TEXT(foreign_signals(prog, gone).empty(), prog.transcript().c_str());
    CHECK_TEXT(cpu_used * 1000 < 200 * window_ms, ("supervisor thread used " + std::to_string(cpu_used) +
                                                   " ms of CPU in " + std::to_string(window_ms) + " ms")
                                                      .c_str());
    CHECK_TEXT(reached_last, ("no restart after the kernel reaped the instance\n" + prog.transcript()).c_str());
    CHECK_TEXT(it::exited_with(x, kExitStatusUnknown), ("got " + it::describe_exit(x) + prog.transcript()).c_str());
}

// QUIT: a failure whose status is unknown ends the supervisor with status
// 70, logged once, and no signal is sent by pid.
TEST(Reaper, QuitWithUnknownStatusExits70) {
    prog.start([] { return cycling_program(SAM_RECOVERY_POLICY_QUIT, ignore_sigchld); });
    it::Event reg;
    REQUIRE(saw(prog, "ignoring", 0));
    REQUIRE(saw(prog, "reg", 1, &reg));
    REQUIRE(end_instance(prog, 1, reg));
    const it::Exit x = prog.wait_exit(3000);
    CHECK_TEXT(it::exited_with(x, kExitStatusUnknown), ("got " + it::describe_exit(x) + prog.transcript()).c_str());
    const std::string &log = prog.log();
    const size_t first = log.find("reaped elsewhere");
    CHECK_TEXT(first != std::string::npos && log.find("reaped elsewhere", first + 1) == std::string::npos,
               prog.transcript().c_str());
    CHECK(prog.events_of("sigcall").empty());
}
