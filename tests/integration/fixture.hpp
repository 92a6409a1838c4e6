// SPDX-License-Identifier: BSD-3-Clause
// fixture.hpp - the bases of the integration test groups, so each group
// says only what it adds:
//
//   PROGRAM_GROUP(Name) {};   a scenario program `prog`
//   COROSYNC_GROUP(Name) {};  the same next to the private corosync, with a
//                             cmap view `cmap` (corosync_fixture.hpp)
//
// They are CppUTest's TEST_GROUP_BASE with the base named once (and one
// argument, which clang-format lays out as it does TEST_GROUP). A group with
// more to undo overrides teardown() and calls the base's last.
#pragma once

#include <CppUTest/TestHarness.h>

#include "harness.hpp"

namespace it {

// Whatever a test leaves running (the program, its instances, orphans) is
// killed and reaped after it, whether it passed or failed, so the next test
// starts alone.
struct ProgramGroup : Utest {
    Program prog;
    void teardown() override { prog.cleanup(); }
};

} // namespace it

#define PROGRAM_GROUP(name) TEST_GROUP_BASE(name, it::ProgramGroup)
