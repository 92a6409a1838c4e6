// SPDX-License-Identifier: BSD-3-Clause
// test_seccomp_corosync.cpp - the corosync paths of libsam and sam-run
// (CMAP and QUORUM policies, sam-run --cmap --quorum and --status) under the
// system call filter of a hardened systemd unit (service_filter.hpp); run
// inside tests/corosync/with-corosync.sh. A call outside @system-service
// shows up as a program killed by SIGSYS.
#include <cstdio>
#include <string>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"
#include "corosync_fixture.hpp"
#include "service_filter.hpp"

namespace {

bool can_filter() {
    if (it::kAuditArch != 0)
        return true;
    UT_PRINT("skipped: no seccomp architecture value for this machine in the test");
    return false;
}

int count_beat() { return 0; }

// Waits until the supervisor's cmap key `state` reads want.
bool wait_state(it::CmapView &cmap, pid_t sup, const std::string &want, int timeout_ms) {
    const uint64_t deadline = it::now_ns() + it::ms(static_cast<uint64_t>(timeout_ms));
    std::string v;
    do {
        if (cmap.get_string(it::process_key(sup, it::kLeafState), v) == CS_OK && v == want)
            return true;
    } while (!it::wait_gone(sup, 20) && it::now_ns() < deadline);
    return false;
}

} // namespace

COROSYNC_GROUP(SeccompCorosync){};

// Keys published in cmap, an instance killed when quorum is lost and the
// next one started once it is back: the supervisor, its corosync link and
// the instances under @system-service.
TEST(SeccompCorosync, QuorumCmapPathsStayInsideSystemService) {
    if (!can_filter())
        return;
    prog.start([] {
        if (!it::allow_only_system_service())
            return 89;
        if (sam_initialize(300, static_cast<sam_recovery_policy_t>(SAM_RECOVERY_POLICY_QUORUM_RESTART |
                                                                   SAM_RECOVERY_POLICY_CMAP)) != CS_OK)
            return 90;
        unsigned iid = 0;
        if (sam_register(&iid) != CS_OK)
            return 91;
        if (iid >= 2) {
            it::emit("ev=again iid=%u", iid);
            return 0;
        }
        if (sam_hc_callback_register(count_beat) != CS_OK || sam_start() != CS_OK)
            return 92;
        it::emit("ev=started iid=%u", iid);
        // Until the supervisor kills it for the loss of quorum.
        const std::string cmd = it::command(20000);
        it::emit("ev=not-killed cmd=%s", cmd.c_str());
        return 93;
    });
    REQUIRE_MSG(prog.wait_event("started", 10000), it::outcome(prog.wait_exit(2000)));
    REQUIRE_MSG(wait_state(cmap, prog.pid(), "running", 5000), prog.transcript());
    REQUIRE(it::ctl("expected-votes 2") == 0);
    REQUIRE_MSG(prog.wait_log("quorum lost", 10000), prog.transcript());
    REQUIRE(it::ctl("expected-votes 1") == 0);
    const it::Exit x = prog.wait_exit(15000);
    REQUIRE_MSG(it::exited_with(x, 0), it::outcome(x));
    REQUIRE_MSG(prog.events_of("again").size() == 1, prog.transcript());
}

// sam-run --cmap --quorum supervising a program, and sam-run --status
// listing it, both under @system-service.
TEST(SeccompCorosync, SamRunCmapQuorumStatusStayInsideSystemService) {
    if (!can_filter())
        return;
    char dir[] = "/tmp/integ-seccomp.XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string done = std::string(dir) + "/done";
    const std::vector<std::string> args = {"--cmap", "--quorum", "--interval", "300", "--policy", "quit", "--",
                                           "/bin/sh", "-c",
                                           // Runs until the test has seen it in --status; the deadline below bounds it.
                                           "until [ -e " + done + " ]; do sleep 0.05; done"};
    prog.start([&args] { return it::exec_sam_run_filtered(args); });
    REQUIRE_MSG(prog.wait_log("started /bin/sh", 10000), it::outcome(prog.wait_exit(2000)));
    REQUIRE_MSG(wait_state(cmap, prog.pid(), "running", 5000), prog.transcript());
    other.start([] { return it::exec_sam_run_filtered({"--status"}); });
    const it::Exit sx = other.wait_exit(10000);
    const std::string listing = other.log();
    FILE *f = std::fopen(done.c_str(), "w");
    if (f != nullptr)
        std::fclose(f);
    const it::Exit x = prog.wait_exit(10000);
    (void)::unlink(done.c_str());
    (void)::rmdir(dir);
    REQUIRE_MSG(it::exited_with(sx, 0), it::outcome(sx) + other.transcript());
    REQUIRE_MSG(listing.find(std::to_string(prog.pid())) != std::string::npos, listing);
    REQUIRE_MSG(it::exited_with(x, 0), it::outcome(x));
}
