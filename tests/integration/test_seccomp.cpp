// SPDX-License-Identifier: BSD-3-Clause
// test_seccomp.cpp - libsam and sam-run under the system call filter of a
// hardened systemd unit: SystemCallFilter=@system-service without
// SystemCallErrorNumber= kills the process at its first call outside the
// set. Each scenario puts that set (service_filter.hpp) on its program and
// walks the normal paths: a call outside the set shows up as a program
// killed by SIGSYS. The corosync paths: test_seccomp_corosync.cpp.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"
#include "fixture.hpp"
#include "service_filter.hpp"

namespace {

// Bytes that depend on the size and the position: a restore that returns
// another store's data, or a torn one, does not match.
unsigned char pattern_byte(size_t size, size_t i) { return static_cast<unsigned char>((i * 131 + size * 7) >> 3); }

// One store of each way the data reaches the supervisor: the slot shared
// with it (up to 64 KiB), read out of the instance (process_vm_readv, up to
// 64 MiB; from 4 MiB into memory offered for huge pages), and a sealed memfd
// (above 64 MiB).
constexpr size_t kSlotSize = 1000;
constexpr size_t kRemoteSize = 6 * 1024 * 1024;
constexpr size_t kMemfdSize = 65 * 1024 * 1024;

bool store_pattern(size_t size) {
    std::vector<unsigned char> data(size);
    for (size_t i = 0; i < size; ++i)
        data[i] = pattern_byte(size, i);
    return sam_data_store(data.data(), size) == CS_OK;
}

// Emits what this instance finds stored: its size and whether every byte
// is the pattern of that size.
void emit_restored(unsigned iid) {
    size_t size = 0;
    if (sam_data_getsize(&size) != CS_OK) {
        it::emit("ev=restored iid=%u size=-1 intact=0", iid);
        return;
    }
    std::vector<unsigned char> data(size);
    bool intact = size == 0 || sam_data_restore(data.data(), size) == CS_OK;
    for (size_t i = 0; intact && i < size; ++i)
        intact = data[i] == pattern_byte(size, i);
    it::emit("ev=restored iid=%u size=%zu intact=%d", iid, size, intact ? 1 : 0);
}

std::atomic<int> g_callback_beats{0};

int count_beat() {
    g_callback_beats.fetch_add(1);
    return 0;
}

void sleep_ms(long n) {
    timespec ts{n / 1000, (n % 1000) * 1000000L};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

// Instance 1: health checks from the library's callback thread, a small
// store, then a failure.
[[noreturn]] void beat_by_callback_then_fail() {
    if (sam_hc_callback_register(count_beat) != CS_OK || sam_start() != CS_OK)
        ::_exit(92);
    const uint64_t deadline = it::now_ns() + it::ms(5000);
    while (g_callback_beats.load() < 3 && it::now_ns() < deadline)
        sleep_ms(10);
    it::emit("ev=callback beats=%d", g_callback_beats.load());
    if (!store_pattern(kSlotSize))
        ::_exit(93);
    ::_exit(1);
}

// Instance 2: a store read out of this process, then no more health checks:
// the supervisor's deadline passes and it kills this instance.
[[noreturn]] void store_then_hang() {
    if (sam_start() != CS_OK)
        ::_exit(92);
    if (!store_pattern(kRemoteSize))
        ::_exit(93);
    const uint64_t deadline = it::now_ns() + it::ms(10000);
    while (it::now_ns() < deadline)
        sleep_ms(50);
    ::_exit(94); // never killed: the supervisor did not keep its deadline
}

bool can_filter() {
    if (it::kAuditArch != 0)
        return true;
    UT_PRINT("skipped: no seccomp architecture value for this machine in the test");
    return false;
}

} // namespace

PROGRAM_GROUP(Seccomp){};

// Restarts after a failure and after a missed health check, the callback
// thread, the three ways of storing data and their restore in the next
// instance, all under @system-service.
TEST(Seccomp, LibraryPathsStayInsideSystemService) {
    if (!can_filter())
        return;
    prog.start([] {
        if (!it::allow_only_system_service())
            return 89;
        if (sam_initialize(300, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
            return 90;
        unsigned iid = 0;
        if (sam_register(&iid) != CS_OK)
            return 91;
        emit_restored(iid);
        switch (iid) {
        case 1:
            beat_by_callback_then_fail();
        case 2:
            store_then_hang();
        case 3:
            // Stored before the start: making and storing 65 MiB is not
            // timed by the 300 ms interval (under ThreadSanitizer it took
            // longer than that).
            if (!store_pattern(kMemfdSize))
                return 93;
            if (sam_start() != CS_OK)
                return 92;
            ::_exit(1);
        default:
            return 0;
        }
    });
    const it::Exit x = prog.wait_exit(20000);
    REQUIRE_MSG(it::exited_with(x, 0), it::outcome(x));
    const auto callback = prog.events_of("callback");
    REQUIRE_MSG(callback.size() == 1 && callback[0].num("beats") >= 3, prog.transcript());
    const auto restored = prog.events_of("restored");
    REQUIRE_MSG(restored.size() == 4, prog.transcript());
    const long long want[] = {0, kSlotSize, kRemoteSize, kMemfdSize};
    for (size_t i = 0; i < 4; ++i) {
        REQUIRE_MSG(restored[i].num("size") == want[i] && restored[i].num("intact") == 1, prog.transcript());
    }
}

// sam-run --notify: a daemon that speaks the notify protocol is started,
// health-checked by its WATCHDOG=1 messages past several deadlines, and its
// exit status passed on.
TEST(Seccomp, SamRunNotifyStaysInsideSystemService) {
    if (!can_filter())
        return;
    const std::string tool = it::env_or("NOTIFY_TOOL", "../samrun/notify-tool");
    std::vector<std::string> args = {"--notify", "--interval", "300", "--policy", "quit", "--", tool, "send:READY=1"};
    for (int i = 0; i < 12; ++i) { // 1.2 s: four deadlines
        args.push_back("sleep:100");
        args.push_back("send:WATCHDOG=1");
    }
    args.push_back("exit:7");
    prog.start([&args] { return it::exec_sam_run_filtered(args); });
    const it::Exit x = prog.wait_exit(15000);
    REQUIRE_MSG(it::exited_with(x, 7), it::outcome(x));
}

// sam-run --check: the health command runs from the library's callback
// thread at every interval; the program ends once it has run three times.
TEST(Seccomp, SamRunCheckStaysInsideSystemService) {
    if (!can_filter())
        return;
    char dir[] = "/tmp/integ-seccomp.XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string runs = std::string(dir) + "/runs";
    std::ofstream(runs).close();
    const std::vector<std::string> args = {"--check", "echo run >> " + runs, "--interval", "100", "--policy", "quit",
                                           "--", "/bin/sh", "-c",
                                           // Polls the file the check writes; sam-run's deadline below bounds it.
                                           "until [ \"$(wc -l < " + runs + ")\" -ge 3 ]; do sleep 0.05; done"};
    prog.start([&args] { return it::exec_sam_run_filtered(args); });
    const it::Exit x = prog.wait_exit(15000);
    std::ifstream in(runs);
    int lines = 0;
    for (std::string line; std::getline(in, line);)
        ++lines;
    (void)::unlink(runs.c_str());
    (void)::rmdir(dir);
    REQUIRE_MSG(it::exited_with(x, 0), it::outcome(x));
    REQUIRE_MSG(lines >= 3, prog.transcript());
}
