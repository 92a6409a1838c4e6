// SPDX-License-Identifier: BSD-3-Clause
// test_api.cpp - status codes in every API state, instance ids, stored data.
//
// The states NOT_INITIALIZED -> INITIALIZED -> REGISTERED ->
// STARTED <-> REGISTERED -> FINALIZED and what each call returns in each.
#include <csignal>
#include <cstring>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"
#include "fixture.hpp"

using it::expect_rc;

namespace {

int healthy_cb() { return 0; }

const sam_recovery_policy_t kInvalidPolicies[] = {
    static_cast<sam_recovery_policy_t>(0),
    static_cast<sam_recovery_policy_t>(3),
    static_cast<sam_recovery_policy_t>(4),
    SAM_RECOVERY_POLICY_QUORUM,
    SAM_RECOVERY_POLICY_CMAP,
    static_cast<sam_recovery_policy_t>(SAM_RECOVERY_POLICY_QUORUM | SAM_RECOVERY_POLICY_CMAP),
    static_cast<sam_recovery_policy_t>(SAM_RECOVERY_POLICY_QUIT | SAM_RECOVERY_POLICY_RESTART | 0x10),
};

// Everything that must be CS_ERR_BAD_HANDLE outside any usable state.
void expect_all_bad_handle(const char *state) {
    char name[64];
    auto n = [&](const char *what) {
        std::snprintf(name, sizeof name, "%s.%s", state, what);
        return name;
    };
    unsigned iid = 0;
    size_t size = 0;
    char buf[16] = {};
    expect_rc(n("register"), sam_register(&iid), CS_ERR_BAD_HANDLE);
    expect_rc(n("start"), sam_start(), CS_ERR_BAD_HANDLE);
    expect_rc(n("stop"), sam_stop(), CS_ERR_BAD_HANDLE);
    expect_rc(n("hc_send"), sam_hc_send(), CS_ERR_BAD_HANDLE);
    expect_rc(n("hc_callback_register"), sam_hc_callback_register(healthy_cb), CS_ERR_BAD_HANDLE);
    expect_rc(n("warn_signal_set"), sam_warn_signal_set(SIGUSR1), CS_ERR_BAD_HANDLE);
    expect_rc(n("data_getsize"), sam_data_getsize(&size), CS_ERR_BAD_HANDLE);
    expect_rc(n("data_restore"), sam_data_restore(buf, sizeof buf), CS_ERR_BAD_HANDLE);
    expect_rc(n("data_store"), sam_data_store(buf, sizeof buf), CS_ERR_BAD_HANDLE);
    expect_rc(n("data_store_null"), sam_data_store(nullptr, 0), CS_ERR_BAD_HANDLE);
    expect_rc(n("mark_failed"), sam_mark_failed(), CS_ERR_BAD_HANDLE);
    expect_rc(n("finalize"), sam_finalize(), CS_ERR_BAD_HANDLE);
    // NULL arguments are refused before any state check.
    expect_rc(n("data_getsize_null"), sam_data_getsize(nullptr), CS_ERR_INVALID_PARAM);
    expect_rc(n("data_restore_null"), sam_data_restore(nullptr, 10), CS_ERR_INVALID_PARAM);
    // The policy is checked before the state.
    for (sam_recovery_policy_t p : kInvalidPolicies)
        expect_rc(n("initialize_invalid_policy"), sam_initialize(100, p), CS_ERR_INVALID_PARAM);
}

// Data calls that behave the same in INITIALIZED, REGISTERED and STARTED.
void expect_data_rules(const char *state) {
    char name[64];
    auto n = [&](const char *what) {
        std::snprintf(name, sizeof name, "%s.%s", state, what);
        return name;
    };
    const char payload[] = "0123456789abcdef";
    char buf[64];
    size_t size = 99;
    expect_rc(n("store"), sam_data_store(payload, sizeof payload), CS_OK);
    expect_rc(n("getsize"), sam_data_getsize(&size), CS_OK);
    expect_rc(n("getsize_value"), size == sizeof payload ? CS_OK : CS_ERR_LIBRARY, CS_OK);
    expect_rc(n("restore_too_small"), sam_data_restore(buf, sizeof payload - 1), CS_ERR_INVALID_PARAM);
    std::memset(buf, 'x', sizeof buf);
    expect_rc(n("restore_exact"), sam_data_restore(buf, sizeof payload), CS_OK);
    expect_rc(n("restore_content"), std::memcmp(buf, payload, sizeof payload) == 0 ? CS_OK : CS_ERR_LIBRARY, CS_OK);
    std::memset(buf, 'x', sizeof buf);
    expect_rc(n("restore_larger"), sam_data_restore(buf, sizeof buf), CS_OK);
    expect_rc(n("restore_larger_content"), std::memcmp(buf, payload, sizeof payload) == 0 ? CS_OK : CS_ERR_LIBRARY,
              CS_OK);
    expect_rc(n("restore_null"), sam_data_restore(nullptr, sizeof buf), CS_ERR_INVALID_PARAM);
    expect_rc(n("getsize_null"), sam_data_getsize(nullptr), CS_ERR_INVALID_PARAM);
    // store(NULL) deletes; then restore copies nothing and succeeds.
    expect_rc(n("store_null"), sam_data_store(nullptr, sizeof payload), CS_OK);
    size = 99;
    expect_rc(n("getsize_after_delete"), sam_data_getsize(&size), CS_OK);
    expect_rc(n("getsize_after_delete_value"), size == 0 ? CS_OK : CS_ERR_LIBRARY, CS_OK);
    std::memset(buf, 'x', sizeof buf);
    expect_rc(n("restore_nothing"), sam_data_restore(buf, sizeof buf), CS_OK);
    bool untouched = true;
    for (char c : buf)
        untouched = untouched && c == 'x';
    expect_rc(n("restore_nothing_untouched"), untouched ? CS_OK : CS_ERR_LIBRARY, CS_OK);
    expect_rc(n("restore_nothing_size0"), sam_data_restore(buf, 0), CS_OK);
}

void expect_warn_signal_rules(const char *state) {
    char name[64];
    auto n = [&](const char *what) {
        std::snprintf(name, sizeof name, "%s.%s", state, what);
        return name;
    };
    expect_rc(n("warn_signal_set_-1"), sam_warn_signal_set(-1), CS_ERR_INVALID_PARAM);
    expect_rc(n("warn_signal_set_1000"), sam_warn_signal_set(1000), CS_ERR_INVALID_PARAM);
    expect_rc(n("warn_signal_set_USR2"), sam_warn_signal_set(SIGUSR2), CS_OK);
}

} // namespace

PROGRAM_GROUP(States){};

// Before sam_initialize, after it, and after sam_finalize (no register).
TEST(States, BeforeInitInitializedAndFinalized) {
    prog.start([] {
        expect_all_bad_handle("before_init");
        expect_rc("init", sam_initialize(100, SAM_RECOVERY_POLICY_QUIT), CS_OK);
        expect_rc("init.initialize_again", sam_initialize(100, SAM_RECOVERY_POLICY_QUIT), CS_ERR_BAD_HANDLE);
        for (sam_recovery_policy_t p : kInvalidPolicies)
            expect_rc("init.initialize_invalid_policy", sam_initialize(100, p), CS_ERR_INVALID_PARAM);
        expect_rc("init.start", sam_start(), CS_ERR_BAD_HANDLE);
        expect_rc("init.stop", sam_stop(), CS_ERR_BAD_HANDLE);
        expect_rc("init.hc_send", sam_hc_send(), CS_ERR_BAD_HANDLE);
        expect_rc("init.hc_callback_register", sam_hc_callback_register(healthy_cb), CS_ERR_BAD_HANDLE);
        expect_rc("init.mark_failed", sam_mark_failed(), CS_ERR_BAD_HANDLE);
        expect_warn_signal_rules("init");
        expect_data_rules("init");
        expect_rc("init.finalize", sam_finalize(), CS_OK);
        expect_all_bad_handle("finalized");
        expect_rc("finalized.initialize", sam_initialize(100, SAM_RECOVERY_POLICY_QUIT), CS_ERR_BAD_HANDLE);
        it::emit("ev=end");
        return 0;
    });
    const it::Exit x = prog.wait_exit(5000);
    REQUIRE_EXIT(x, 0);
    REQUIRE(prog.wait_event("end", 0));
    REQUIRE_CHECKS(77);
}

// Every call in REGISTERED and STARTED, back and forth, then finalize.
TEST(States, RegisteredStartedStoppedFinalized) {
    prog.start([] {
        expect_rc("init", sam_initialize(300, SAM_RECOVERY_POLICY_RESTART), CS_OK);
        unsigned iid = 0;
        const cs_error_t reg = sam_register(&iid);
        expect_rc("register", reg, CS_OK);
        it::emit("ev=reg iid=%u", iid);
        if (iid != 1)
            return 1;
        unsigned iid2 = 0;
        expect_rc("reg.register", sam_register(&iid2), CS_ERR_BAD_HANDLE);
        expect_rc("reg.initialize", sam_initialize(100, SAM_RECOVERY_POLICY_QUIT), CS_ERR_BAD_HANDLE);
        expect_rc("reg.initialize_invalid_policy", sam_initialize(100, static_cast<sam_recovery_policy_t>(0)),
                  CS_ERR_INVALID_PARAM);
        expect_rc("reg.stop", sam_stop(), CS_ERR_BAD_HANDLE);
        expect_rc("reg.hc_send", sam_hc_send(), CS_ERR_BAD_HANDLE);
        expect_rc("reg.mark_failed_without_cmap", sam_mark_failed(), CS_ERR_INVALID_PARAM);
        expect_rc("reg.hc_callback_register_null_first", sam_hc_callback_register(nullptr), CS_ERR_INVALID_PARAM);
        expect_warn_signal_rules("reg");
        expect_data_rules("reg");
        expect_rc("reg.start", sam_start(), CS_OK);

        expect_rc("started.start", sam_start(), CS_ERR_BAD_HANDLE);
        expect_rc("started.register", sam_register(&iid2), CS_ERR_BAD_HANDLE);
        expect_rc("started.initialize", sam_initialize(100, SAM_RECOVERY_POLICY_QUIT), CS_ERR_BAD_HANDLE);
        expect_rc("started.hc_send", sam_hc_send(), CS_OK);
        expect_rc("started.hc_callback_register", sam_hc_callback_register(healthy_cb), CS_ERR_BAD_HANDLE);
        expect_rc("started.mark_failed_without_cmap", sam_mark_failed(), CS_ERR_INVALID_PARAM);
        expect_warn_signal_rules("started");
        expect_data_rules("started");
        expect_rc("started.stop", sam_stop(), CS_OK);

        expect_rc("stopped.stop", sam_stop(), CS_ERR_BAD_HANDLE);
        expect_rc("stopped.hc_send", sam_hc_send(), CS_ERR_BAD_HANDLE);
        expect_rc("stopped.hc_callback_register", sam_hc_callback_register(healthy_cb), CS_OK);
        expect_rc("stopped.hc_callback_replace_null", sam_hc_callback_register(nullptr), CS_OK);
        expect_rc("stopped.hc_callback_replace", sam_hc_callback_register(healthy_cb), CS_OK);
        expect_rc("stopped.start", sam_start(), CS_OK);
        expect_rc("restarted.hc_send", sam_hc_send(), CS_OK);
        // Finalize while started stops health checking: the instance may
        // then linger (here three intervals without a sign of life, the
        // absence of a kill being what is tested) and exit cleanly.
        expect_rc("restarted.finalize", sam_finalize(), CS_OK);
        expect_all_bad_handle("instance_finalized");
        const uint64_t linger_until = it::now_ns() + it::ms(900);
        while (it::now_ns() < linger_until)
            (void)it::command(static_cast<int>((linger_until - it::now_ns()) / 1000000 + 1));
        it::emit("ev=end");
        return 0;
    });
    const it::Exit x = prog.wait_exit(5000);
    REQUIRE(x.exited);
    REQUIRE_CHECKS(84);
    REQUIRE(prog.wait_event("end", 0));
    // Finalized, then exit 0: not a failure, so no second instance.
    REQUIRE_EXIT(x, 0);
    REQUIRE(prog.events_of("reg").size() == 1);
}

// T = 0: no deadline at all; an event-driven callback is refused.
TEST(States, IntervalZero) {
    prog.start([] {
        expect_rc("init", sam_initialize(0, SAM_RECOVERY_POLICY_QUIT), CS_OK);
        unsigned iid = 0;
        expect_rc("register", sam_register(&iid), CS_OK);
        expect_rc("reg.hc_callback_register_t0", sam_hc_callback_register(healthy_cb), CS_ERR_INVALID_PARAM);
        expect_rc("reg.start", sam_start(), CS_OK);
        // Nothing is timed: silent for a while, then fail on purpose.
        const uint64_t until = it::now_ns() + it::ms(400);
        while (it::now_ns() < until)
            (void)it::command(static_cast<int>((until - it::now_ns()) / 1000000 + 1));
        it::emit("ev=alive");
        return 5;
    });
    const it::Exit x = prog.wait_exit(5000);
    REQUIRE(x.exited);
    REQUIRE_CHECKS(3);
    REQUIRE(prog.wait_event("alive", 0));
    // QUIT: a failure after start ends the supervisor with the same code.
    REQUIRE_EXIT(x, 5);
}

PROGRAM_GROUP(InstanceIds){};

// RESTART: ids 1, 2, 3 over two recoveries, each in a new process whose
// parent is the supervisor (the program).
TEST(InstanceIds, CountUpAcrossRestarts) {
    prog.start([] {
        if (sam_initialize(1000, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
            return 90;
        unsigned iid = 0;
        const cs_error_t err = sam_register(&iid);
        it::emit("ev=reg iid=%u err=%d ppid=%d", iid, static_cast<int>(err), static_cast<int>(::getppid()));
        if (iid >= 3)
            return 0; // before start: the supervisor exits 0
        if (sam_start() != CS_OK)
            return 91;
        ::_exit(1); // a failure after start: restart
    });
    const it::Exit x = prog.wait_exit(5000);
    REQUIRE_EXIT(x, 0);
    const auto regs = prog.events_of("reg");
    REQUIRE(regs.size() == 3);
    for (size_t i = 0; i < regs.size(); ++i) {
        REQUIRE(regs[i].num("iid") == static_cast<long long>(i + 1));
        REQUIRE(regs[i].num("err") == CS_OK);
        REQUIRE(regs[i].num("ppid") == prog.pid());
        REQUIRE(regs[i].pid != prog.pid());
    }
    REQUIRE(regs[0].pid != regs[1].pid && regs[1].pid != regs[2].pid);
}

TEST(InstanceIds, NullInstanceIdPointer) {
    prog.start([] {
        if (sam_initialize(1000, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
            return 90;
        const cs_error_t err = sam_register(nullptr);
        it::emit("ev=reg err=%d", static_cast<int>(err));
        return 4;
    });
    const it::Exit x = prog.wait_exit(5000);
    REQUIRE_EXIT(x, 4);
    const auto regs = prog.events_of("reg");
    REQUIRE(regs.size() == 1 && regs[0].num("err") == CS_OK);
}
