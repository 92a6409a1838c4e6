// SPDX-License-Identifier: BSD-3-Clause
// checks.hpp - assertions shared by the integration test files.
//
// Inside a program, expect_rc() emits "ev=check name=N got=G want=W"; the
// test then asserts every such event with all_checks_pass(). Assertions on
// the test side print the program's events and stderr when they fail.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>

#include <CppUTest/TestHarness.h>
#include <corosync/sam.h>

#include "harness.hpp"

namespace it {

inline void expect_rc(const char *name, cs_error_t got, cs_error_t want) {
    emit("ev=check name=%s got=%d want=%d", name, static_cast<int>(got), static_cast<int>(want));
}

// Every check event passed, and at least `min_checks` of them were seen.
inline std::string failed_checks(Program &p, size_t min_checks) {
    std::string bad;
    size_t n = 0;
    for (const Event &e : p.events_of("check")) {
        ++n;
        if (e.get("got") != e.get("want"))
            bad += "  " + e.get("name") + ": got " + e.get("got") + ", want " + e.get("want") + "\n";
    }
    if (n < min_checks)
        bad += "  only " + std::to_string(n) + " checks ran, expected at least " + std::to_string(min_checks) + "\n";
    return bad;
}

// The children of `pid` (from /proc/PID/task/*/children).
inline std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> out;
    const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
    DIR *d = ::opendir(task_dir.c_str());
    if (d == nullptr)
        return out;
    while (const dirent *e = ::readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        std::ifstream f(task_dir + "/" + e->d_name + "/children");
        long p = 0;
        while (f >> p)
            out.push_back(static_cast<pid_t>(p));
    }
    ::closedir(d);
    return out;
}

// A process's name (comm), "" when it is gone.
inline std::string comm_of(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(f, name);
    return name;
}

// The standby instance the supervisor `sup` holds ready (its child named
// sam-standby, see sam_overview(3)), or -1.
inline pid_t standby_of(pid_t sup) {
    for (pid_t c : children_of(sup))
        if (comm_of(c) == "sam-standby")
            return c;
    return -1;
}

// The same, waiting up to timeout_ms: the supervisor forks the standby right
// after it has answered sam_start(), and the standby names itself only when
// it first runs.
inline pid_t wait_standby(pid_t sup, int timeout_ms) {
    const uint64_t until = now_ns() + ms(static_cast<uint64_t>(timeout_ms));
    for (;;) {
        const pid_t sb = standby_of(sup);
        if (sb > 0 || now_ns() >= until)
            return sb;
        ::usleep(1000);
    }
}

// Where the main thread of `pid` sleeps in the kernel ("" when running).
inline std::string wchan_of(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/wchan");
    std::string w;
    std::getline(f, w);
    return w;
}

// Whether a supervisor of this build can make a standby at all. Under
// ThreadSanitizer its runtime runs a thread of its own in every process, and
// the library makes no standby while any thread but the loop's exists (it
// cannot tell that one from the application's): tests of the standby say so
// and stop there (NoStandbyWhileAnApplicationThreadRuns covers that rule).
inline bool standby_possible() {
    if (!kUnderTsan)
        return true;
    UT_PRINT("skipped under ThreadSanitizer: its runtime thread rules out a standby");
    return false;
}

// Waits up to timeout_ms until the supervisor `sup` sleeps in its loop with
// its standby forked and watched (where a standby can be made): a fixed point
// at which to count the supervisor's descriptors.
inline bool wait_standby_settled(pid_t sup, int timeout_ms) {
    const uint64_t until = now_ns() + ms(static_cast<uint64_t>(timeout_ms));
    for (;;) {
        const std::string w = wchan_of(sup); // the name differs between kernel versions
        if ((kUnderTsan || standby_of(sup) > 0) && (w == "do_epoll_wait" || w == "ep_poll"))
            return true;
        if (now_ns() >= until)
            return false;
        ::usleep(1000);
    }
}

} // namespace it

// In a group with a member `it::Program prog` (PROGRAM_GROUP, COROSYNC_GROUP).
#define REQUIRE(cond)                                                                                                  \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            FAIL((std::string("failed: " #cond) + prog.transcript()).c_str());                                         \
    } while (0)
#define REQUIRE_MSG(cond, msg)                                                                                         \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            FAIL((std::string("failed: " #cond " -- ") + (msg) + prog.transcript()).c_str());                          \
    } while (0)
// The program (or another it::Exit) ended with exit status `code` / was
// killed by `sig`; on failure, what it really did and the transcript of
// `prog` (the _OF forms: of the it::Program `p`).
#define REQUIRE_EXIT_OF(p, exit_expr, code)                                                                            \
    do {                                                                                                               \
        const it::Exit x_ = (exit_expr);                                                                               \
        if (!it::exited_with(x_, (code)))                                                                              \
            FAIL((std::string("expected exit ") + std::to_string(code) + " from " #exit_expr ", got " +                \
                  it::describe_exit(x_) + (p).transcript())                                                            \
                     .c_str());                                                                                        \
    } while (0)
#define REQUIRE_KILLED_OF(p, exit_expr, sig)                                                                           \
    do {                                                                                                               \
        const it::Exit x_ = (exit_expr);                                                                               \
        if (!it::killed_by(x_, (sig)))                                                                                 \
            FAIL((std::string("expected death by signal ") + std::to_string(sig) +                                     \
                  " (" #sig ") from " #exit_expr ", got " + it::describe_exit(x_) + (p).transcript())                  \
                     .c_str());                                                                                        \
    } while (0)
#define REQUIRE_EXIT(exit_expr, code) REQUIRE_EXIT_OF(prog, exit_expr, code)
#define REQUIRE_KILLED(exit_expr, sig) REQUIRE_KILLED_OF(prog, exit_expr, sig)
#define REQUIRE_CHECKS(min)                                                                                            \
    do {                                                                                                               \
        const std::string bad_ = it::failed_checks(prog, (min));                                                       \
        if (!bad_.empty())                                                                                             \
            FAIL((std::string("status codes differ from the contract:\n") + bad_ + prog.transcript()).c_str());        \
    } while (0)
