// SPDX-License-Identifier: BSD-3-Clause
// test_starve.cpp - a stall of the machine is not a hang: an instance kept
// off the CPU, or a supervisor whose timer fires late, is given one more
// interval instead of being warned.
//
// Its own program, run after every other test of this directory (see
// Makefile.am): the realtime hog that starves the instance here would
// starve whatever else runs on that CPU too.
#include <csignal>
#include <cstdint>

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"
#include "fixture.hpp"

namespace {} // namespace

namespace {

constexpr int kStallT = 300;      // ms
constexpr int kStallHogMs = 450;  // the instance cannot run this long
constexpr int kStallCpu = 0;      // where the instance and the hog run
constexpr int kSupervisorCpu = 1; // where the supervisor keeps time

bool pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

// A realtime process that takes the instance's CPU for `ms` milliseconds, as
// realtime processes (corosync runs at SCHED_RR 99) or a host that stops
// scheduling a virtual machine can. Returns its pid, or -1 if this machine
// does not let us (no second CPU, no realtime scheduling).
pid_t start_cpu_hog(int ms) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0)
        return -1;
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(ready[0]);
        sched_param rt{};
        rt.sched_priority = 99;
        const char ok = (pin_to(kStallCpu) && ::sched_setscheduler(0, SCHED_FIFO, &rt) == 0) ? 'y' : 'n';
        (void)!::write(ready[1], &ok, 1);
        if (ok != 'y')
            ::_exit(1);
        const uint64_t until = it::now_ns() + it::ms(static_cast<uint64_t>(ms));
        while (it::now_ns() < until) {
        }
        ::_exit(0);
    }
    ::close(ready[1]);
    char ok = 'n';
    const bool told = pid > 0 && ::read(ready[0], &ok, 1) == 1;
    ::close(ready[0]);
    if (pid > 0 && (!told || ok != 'y')) {
        (void)::waitpid(pid, nullptr, 0);
        return -1;
    }
    return pid;
}

} // namespace

PROGRAM_GROUP(Stall){};

// A healthy instance that beats every T/4 but cannot get a CPU for 1.5 T,
// while its supervisor can, is not a hung instance: the supervisor sees in
// the kernel's run delay that the instance was kept off the CPU, grants one
// more interval, and the instance is neither warned nor killed.
TEST(Stall, StarvedInstanceIsNotWarned) {
    if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        UT_PRINT("skipped: needs two CPUs");
        return;
    }
    prog.start([] {
        if (!pin_to(kSupervisorCpu))
            return 89;
        if (sam_initialize(kStallT, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
            return 90;
        unsigned iid = 0;
        if (sam_register(&iid) != CS_OK)
            return 91;
        it::set_instance_id(iid);
        it::catch_signal(SIGUSR1);
        if (!pin_to(kStallCpu) || sam_warn_signal_set(SIGUSR1) != CS_OK || sam_start() != CS_OK)
            return 92;
        it::emit("ev=running iid=%u", iid);
        for (;;) {
            (void)sam_hc_send();
            it::idle_ms(kStallT / 4);
        }
    });
    REQUIRE(prog.wait_event("running", 3000));
    it::idle_ms(kStallT); // a few ordinary beats first
    const pid_t hog = start_cpu_hog(kStallHogMs);
    if (hog < 0) {
        UT_PRINT("skipped: realtime scheduling is not allowed here");
        return;
    }
    int status = 0;
    REQUIRE(::waitpid(hog, &status, 0) == hog && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    // The warning would have come T after the last beat, the kill T later.
    REQUIRE(!prog.wait_event("signal", 3 * kStallT));
    REQUIRE(prog.events_of("running").size() == 1);
    // (No check of the log line here: the realtime throttle, which leaves
    // other processes 5% of each second, may let the instance beat in the
    // middle of the hog, and then there was no stall to report.)
}

// The whole program (supervisor and instance) is stopped for 2 T, as a
// virtual machine whose host stops scheduling it would be. The supervisor
// runs again first (as it may after a real stall), finds its timer late and
// the instance silent, and grants one more interval; the instance, which
// beats again as soon as it runs, is not warned.
TEST(Stall, LateTimerIsNotAHang) {
    prog.start([] {
        if (sam_initialize(kStallT, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
            return 90;
        unsigned iid = 0;
        if (sam_register(&iid) != CS_OK)
            return 91;
        it::set_instance_id(iid);
        it::catch_signal(SIGUSR1);
        if (sam_warn_signal_set(SIGUSR1) != CS_OK || sam_start() != CS_OK)
            return 92;
        it::emit("ev=running iid=%u", iid);
        for (;;) {
            (void)sam_hc_send();
            it::idle_ms(kStallT / 4);
        }
    });
    it::Event running;
    REQUIRE(prog.wait_event("running", 3000, &running));
    it::idle_ms(kStallT);
    REQUIRE(::kill(-prog.pid(), SIGSTOP) == 0);
    it::idle_ms(2 * kStallT); // the length of the stall, not a wait for anything
    REQUIRE(::kill(prog.pid(), SIGCONT) == 0);
    REQUIRE(prog.wait_log("the machine stalled", 2000));
    REQUIRE(::kill(running.pid, SIGCONT) == 0);
    REQUIRE(!prog.wait_event("signal", 3 * kStallT));
    REQUIRE(prog.events_of("running").size() == 1);
}
