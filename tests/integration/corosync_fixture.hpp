// SPDX-License-Identifier: BSD-3-Clause
// corosync_fixture.hpp - the base of the test groups that run next to the
// private corosync of tests/corosync/with-corosync.sh (see fixture.hpp), and
// the policies they combine.
#pragma once

#include <csignal>

#include <CppUTest/TestHarness.h>
#include <corosync/sam.h>

#include "cmap_keys.hpp"
#include "cmapview.hpp"
#include "harness.hpp"

namespace it {

inline constexpr int kCmapRestart = SAM_RECOVERY_POLICY_RESTART | SAM_RECOVERY_POLICY_CMAP;
inline constexpr int kCmapQuit = SAM_RECOVERY_POLICY_QUIT | SAM_RECOVERY_POLICY_CMAP;
inline constexpr int kQuorumCmapRestart = SAM_RECOVERY_POLICY_QUORUM_RESTART | SAM_RECOVERY_POLICY_CMAP;

// Refuses to run outside the fixture (there is no corosync of its own to
// talk to). After each test, whatever the test did to the shared corosync
// is undone (frozen: continued; killed: started again; quorum taken away:
// given back), then the program is ended and the keys its supervisor
// published are removed, since keys left behind (a "failed" state) would
// keep corosync's watchdog reporting them in the tests after. `other` is
// there for the tests that run a second program beside `prog`.
struct CorosyncGroup : Utest {
    Program prog;
    Program other;
    CmapView cmap;

    void setup() override {
        if (!inside_fixture())
            FAIL("run inside tests/corosync/with-corosync.sh");
    }
    void teardown() override {
        const pid_t c = corosync_pid();
        if (c > 0)
            (void)::kill(c, SIGCONT);
        else
            (void)ctl("start");
        (void)cmap.set_u32(kExpectedVotesKey, 1);
        end_program(prog);
        end_program(other);
        cmap.close();
    }
    // Ends p and removes the keys its supervisor published.
    void end_program(Program &p) {
        const pid_t sup = p.pid();
        p.cleanup();
        if (sup > 0)
            for (const char *leaf : kProcessLeaves)
                (void)cmap.remove(process_key(sup, leaf));
    }
};

} // namespace it

#define COROSYNC_GROUP(name) TEST_GROUP_BASE(name, it::CorosyncGroup)
