// SPDX-License-Identifier: BSD-3-Clause
// checks.hpp - assertions shared by the integration test files.
//
// Inside a program, expect_rc() emits "ev=check name=N got=G want=W"; the
// test then asserts every such event with all_checks_pass(). Assertions on
// the test side print the program's events and stderr when they fail.
#pragma once

#include <string>

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

} // namespace it

// In a TEST_GROUP with a member `it::Program prog`.
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
#define REQUIRE_CHECKS(min)                                                                                            \
    do {                                                                                                               \
        const std::string bad_ = it::failed_checks(prog, (min));                                                       \
        if (!bad_.empty())                                                                                             \
            FAIL((std::string("status codes differ from the contract:\n") + bad_ + prog.transcript()).c_str());        \
    } while (0)
