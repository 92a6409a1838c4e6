// SPDX-License-Identifier: BSD-3-Clause
// test_data.cpp - the stored data lives in the supervisor and survives
// every restart, and large stores travel without a pipe, atomically.
#include <algorithm>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include <cerrno>
#include <fstream>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"

namespace {

bool exited_with(const it::Exit &x, int code) {
    return x.exited && WIFEXITED(x.status) && WEXITSTATUS(x.status) == code;
}

// Deterministic bytes, different for every seed and position, generated
// as a stream so the checker needs no second copy.
struct Pattern {
    uint64_t x;
    explicit Pattern(uint64_t seed) : x(seed * 0x9e3779b97f4a7c15ULL + 1) {}
    uint64_t next() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
    }
};

void fill_pattern(unsigned char *buf, size_t len, uint64_t seed) {
    Pattern p(seed);
    for (size_t i = 0; i < len; i += 8) {
        const uint64_t v = p.next();
        std::memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
}

// Offset of the first byte that differs from the pattern, or len.
size_t first_mismatch(const unsigned char *buf, size_t len, uint64_t seed) {
    Pattern p(seed);
    for (size_t i = 0; i < len; i += 8) {
        const uint64_t v = p.next();
        const size_t n = len - i < 8 ? len - i : 8;
        if (std::memcmp(buf + i, &v, n) != 0)
            return i;
    }
    return len;
}

// What the instance finds stored, as text (small data only).
std::string restored_text() {
    size_t size = 0;
    if (sam_data_getsize(&size) != CS_OK)
        return "<getsize failed>";
    if (size == 0)
        return "<none>";
    std::string s(size, '\0');
    if (sam_data_restore(&s[0], size) != CS_OK)
        return "<restore failed>";
    return s;
}

int restart_register(unsigned &iid) {
    if (sam_initialize(1000, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
        return 90;
    if (sam_register(&iid) != CS_OK)
        return 91;
    return 0;
}

// An instance failure after start: the RESTART supervisor starts the next.
[[noreturn]] void fail_after_start() {
    if (sam_start() != CS_OK)
        ::_exit(92);
    ::_exit(1);
}

// Whether this process maps one of the library's data memfds.
bool maps_data_memfd() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        if (line.find("memfd:libsam-data") != std::string::npos)
            return true;
    return false;
}

// From here on process_vm_readv(2) fails with EPERM in this thread and the
// processes it forks, as under a container profile that forbids it.
bool deny_process_vm_readv() {
    static const sock_filter body[] = {
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    return it::install_seccomp_filter(body, sizeof body / sizeof body[0], SECCOMP_RET_ALLOW);
}

} // namespace

TEST_GROUP(Data) {
    it::Program prog;
    void teardown() override { prog.cleanup(); }
};

// Stored before sam_register: instance 1 sees it. Stored by instance N:
// instance N+1 sees it.
TEST(Data, HandedFromInstanceToInstance) {
    prog.start([] {
        if (sam_initialize(1000, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
            return 90;
        if (sam_data_store("before-register", 15) != CS_OK)
            return 93;
        unsigned iid = 0;
        if (sam_register(&iid) != CS_OK)
            return 91;
        it::emit("ev=seen iid=%u data=%s", iid, restored_text().c_str());
        if (iid >= 3)
            return 0;
        const std::string mine = "from-" + std::to_string(iid);
        if (sam_data_store(mine.data(), mine.size()) != CS_OK)
            return 94;
        fail_after_start();
    });
    REQUIRE(exited_with(prog.wait_exit(5000), 0));
    const auto seen = prog.events_of("seen");
    REQUIRE(seen.size() == 3);
    REQUIRE(seen[0].get("data") == "before-register");
    REQUIRE(seen[1].get("data") == "from-1");
    REQUIRE(seen[2].get("data") == "from-2");
}

// store(NULL, n) deletes whatever n is, also for the next instance; with
// nothing stored, restore returns CS_OK and leaves the buffer alone.
TEST(Data, StoreNullDeletesForTheNextInstance) {
    prog.start([] {
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        if (iid == 1) {
            if (sam_data_store("doomed", 6) != CS_OK || sam_data_store(nullptr, 10) != CS_OK)
                return 93;
            fail_after_start();
        }
        size_t size = 99;
        char buf[8];
        std::memset(buf, 'x', sizeof buf);
        const cs_error_t g = sam_data_getsize(&size);
        const cs_error_t r = sam_data_restore(buf, sizeof buf);
        it::emit("ev=seen iid=%u getsize=%d size=%zu restore=%d untouched=%d", iid, static_cast<int>(g), size,
                 static_cast<int>(r), std::memcmp(buf, "xxxxxxxx", 8) == 0 ? 1 : 0);
        return 0;
    });
    REQUIRE(exited_with(prog.wait_exit(5000), 0));
    it::Event seen;
    REQUIRE(prog.wait_event("seen", 0, &seen));
    REQUIRE(seen.num("iid") == 2);
    REQUIRE(seen.num("getsize") == CS_OK && seen.num("size") == 0);
    REQUIRE(seen.num("restore") == CS_OK && seen.num("untouched") == 1);
}

// In the next instance too: a buffer below the stored size is refused and
// left alone; NULL arguments are refused.
TEST(Data, RestoreTooSmallAfterRestart) {
    prog.start([] {
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        if (iid == 1) {
            if (sam_data_store("0123456789", 10) != CS_OK)
                return 93;
            fail_after_start();
        }
        char buf[16];
        std::memset(buf, 'x', sizeof buf);
        const cs_error_t small = sam_data_restore(buf, 9);
        const bool untouched = std::memcmp(buf, "xxxxxxxxx", 9) == 0;
        const cs_error_t null_restore = sam_data_restore(nullptr, 10);
        const cs_error_t null_size = sam_data_getsize(nullptr);
        const cs_error_t exact = sam_data_restore(buf, 10);
        it::emit("ev=seen small=%d untouched=%d null_restore=%d null_size=%d exact=%d same=%d", static_cast<int>(small),
                 untouched ? 1 : 0, static_cast<int>(null_restore), static_cast<int>(null_size),
                 static_cast<int>(exact), std::memcmp(buf, "0123456789", 10) == 0);
        return 0;
    });
    REQUIRE(exited_with(prog.wait_exit(5000), 0));
    it::Event seen;
    REQUIRE(prog.wait_event("seen", 0, &seen));
    REQUIRE(seen.num("small") == CS_ERR_INVALID_PARAM && seen.num("untouched") == 1);
    REQUIRE(seen.num("null_restore") == CS_ERR_INVALID_PARAM && seen.num("null_size") == CS_ERR_INVALID_PARAM);
    REQUIRE(seen.num("exact") == CS_OK && seen.num("same") == 1);
}

// 64 MiB stored by instance 1 reach instance 2 byte for byte.
TEST(Data, SixtyFourMebibytesAcrossRestart) {
    prog.start([] {
        constexpr size_t kSize = 64u << 20;
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        if (iid == 1) {
            std::vector<unsigned char> data(kSize);
            fill_pattern(data.data(), data.size(), 42);
            const cs_error_t err = sam_data_store(data.data(), data.size());
            it::emit("ev=stored err=%d", static_cast<int>(err));
            fail_after_start();
        }
        size_t size = 0;
        const cs_error_t g = sam_data_getsize(&size);
        std::vector<unsigned char> got(kSize + 16, 0xee);
        const cs_error_t r = sam_data_restore(got.data(), got.size());
        const size_t first_diff = first_mismatch(got.data(), kSize, 42);
        const bool tail_untouched = got[kSize] == 0xee && got[kSize + 15] == 0xee;
        it::emit("ev=seen iid=%u getsize=%d size=%zu restore=%d first_diff=%zu tail=%d", iid, static_cast<int>(g), size,
                 static_cast<int>(r), first_diff, tail_untouched ? 1 : 0);
        return 0;
    });
    REQUIRE(exited_with(prog.wait_exit(20000), 0));
    it::Event stored, seen;
    REQUIRE(prog.wait_event("stored", 0, &stored));
    REQUIRE(stored.num("err") == CS_OK);
    REQUIRE(prog.wait_event("seen", 0, &seen));
    REQUIRE(seen.num("iid") == 2 && seen.num("getsize") == CS_OK && seen.num("size") == (64LL << 20));
    REQUIRE(seen.num("restore") == CS_OK);
    REQUIRE(seen.num("first_diff") == (64LL << 20));
    REQUIRE(seen.num("tail") == 1);
}

// An instance killed while storing leaves whole data behind: the previous
// blob or the new one, never a mix.
TEST(Data, KilledMidStoreLeavesWholeData) {
    prog.start([] {
        constexpr size_t kSize = 8u << 20;
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        if (iid == 1) {
            std::vector<unsigned char> a(kSize, 'A'), b(kSize, 'B');
            if (sam_data_store(a.data(), a.size()) != CS_OK || sam_start() != CS_OK)
                return 93;
            it::emit("ev=storing");
            for (unsigned i = 0;; ++i) {
                (void)sam_hc_send();
                const std::vector<unsigned char> &blob = i % 2 == 0 ? b : a;
                (void)sam_data_store(blob.data(), blob.size());
                it::emit("ev=stored_one i=%u", i);
            }
        }
        size_t size = 0;
        std::vector<unsigned char> got(kSize);
        const cs_error_t g = sam_data_getsize(&size);
        const cs_error_t r = sam_data_restore(got.data(), got.size());
        bool whole = size == kSize && (got[0] == 'A' || got[0] == 'B');
        for (size_t i = 1; i < kSize && whole; ++i)
            whole = got[i] == got[0];
        it::emit("ev=seen getsize=%d restore=%d whole=%d", static_cast<int>(g), static_cast<int>(r), whole ? 1 : 0);
        return 0;
    });
    it::Event storing;
    REQUIRE(prog.wait_event("storing", 5000, &storing));
    // Two stores went through: the kill lands in the middle of the third.
    REQUIRE(prog.wait_event([](const it::Event &e) { return e.is("stored_one") && e.num("i") >= 1; }, 5000));
    ::kill(storing.pid, SIGKILL);
    REQUIRE(exited_with(prog.wait_exit(5000), 0));
    it::Event seen;
    REQUIRE(prog.wait_event("seen", 0, &seen));
    REQUIRE(seen.num("getsize") == CS_OK && seen.num("restore") == CS_OK && seen.num("whole") == 1);
}

// Sizes around the switch from inline messages to the large-data path
// (and a single byte) arrive byte for byte in the next instance.
TEST(Data, BoundarySizesAcrossRestart) {
    static const size_t kSizes[] = {1, 32 * 1024 - 1, 32 * 1024, 32 * 1024 + 1, 256 * 1024, 4u << 20, (4u << 20) + 1};
    constexpr unsigned kCount = sizeof kSizes / sizeof kSizes[0];
    prog.start([] {
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        if (iid > 1) {
            // Check what the previous instance stored.
            const size_t want = kSizes[iid - 2];
            size_t size = 0;
            std::vector<unsigned char> got(want + 8, 0xee);
            const cs_error_t g = sam_data_getsize(&size);
            const cs_error_t r = sam_data_restore(got.data(), got.size());
            const size_t diff = first_mismatch(got.data(), want, iid - 1);
            it::emit("ev=seen want=%zu getsize=%d size=%zu restore=%d first_diff=%zu tail=%d", want,
                     static_cast<int>(g), size, static_cast<int>(r), diff, got[want] == 0xee ? 1 : 0);
        }
        if (iid > kCount)
            return 0;
        std::vector<unsigned char> data(kSizes[iid - 1]);
        fill_pattern(data.data(), data.size(), iid);
        if (sam_data_store(data.data(), data.size()) != CS_OK)
            return 93;
        fail_after_start();
    });
    REQUIRE(exited_with(prog.wait_exit(10000), 0));
    const auto seen = prog.events_of("seen");
    REQUIRE(seen.size() == kCount);
    for (const it::Event &e : seen) {
        REQUIRE_MSG(e.num("getsize") == CS_OK && e.num("size") == e.num("want"), e.text);
        REQUIRE_MSG(e.num("restore") == CS_OK && e.num("first_diff") == e.num("want") && e.num("tail") == 1, e.text);
    }
}

// A medium store (32 KiB .. 4 MiB) is copied by the supervisor straight out
// of the instance, with no memfd; where the supervisor may not read the
// instance's memory it falls back to a memfd, and nothing is lost either way.
TEST(Data, MediumStoreReadFromTheInstanceOrSentAsMemfd) {
    for (const bool denied : {false, true}) {
        it::Program p;
        p.start([denied] {
            if (denied && !deny_process_vm_readv())
                return 89;
            unsigned iid = 0;
            if (const int e = restart_register(iid))
                return e;
            constexpr size_t kSize = 1u << 20;
            std::vector<unsigned char> data(kSize);
            if (iid == 1) {
                // Twice: the second store after a refusal goes straight to a memfd.
                for (uint64_t seed : {5, 6}) {
                    fill_pattern(data.data(), kSize, seed);
                    if (sam_data_store(data.data(), kSize) != CS_OK)
                        return 93;
                }
                std::fill(data.begin(), data.end(), 0);
                const cs_error_t r = sam_data_restore(data.data(), kSize);
                it::emit("ev=stored restore=%d first_diff=%zu memfd=%d", static_cast<int>(r),
                         first_mismatch(data.data(), kSize, 6), maps_data_memfd() ? 1 : 0);
                fail_after_start();
            }
            const cs_error_t r = sam_data_restore(data.data(), kSize);
            it::emit("ev=seen restore=%d first_diff=%zu", static_cast<int>(r), first_mismatch(data.data(), kSize, 6));
            return 0;
        });
        REQUIRE_MSG(exited_with(p.wait_exit(10000), 0), p.transcript());
        it::Event stored, seen;
        REQUIRE(p.wait_event("stored", 1000, &stored));
        REQUIRE(p.wait_event("seen", 1000, &seen));
        p.cleanup();
        REQUIRE_MSG(stored.num("restore") == CS_OK && stored.num("first_diff") == (1LL << 20), stored.text);
        REQUIRE_MSG(stored.num("memfd") == (denied ? 1 : 0), stored.text + (denied ? " (denied)" : " (allowed)"));
        REQUIRE_MSG(seen.num("restore") == CS_OK && seen.num("first_diff") == (1LL << 20), seen.text);
    }
}

// 64 KiB in memfd_secret(2) memory: the instance reads it, process_vm_readv
// cannot. It is stored (through a memfd) like any other data, and the
// instance is not taken for one that lies about its data.
TEST(Data, StoreFromSecretMemory) {
    const int probe = static_cast<int>(::syscall(SYS_memfd_secret, 0));
    if (probe < 0) {
        UT_PRINT((std::string("skipped: memfd_secret unavailable: ") + std::strerror(errno) +
                  " (may need secretmem.enable=1)")
                     .c_str());
        return;
    }
    ::close(probe);
    prog.start([] {
        constexpr size_t kSize = 64 * 1024;
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        if (iid == 1) {
            const int fd = static_cast<int>(::syscall(SYS_memfd_secret, 0));
            void *p = fd >= 0 && ::ftruncate(fd, kSize) == 0
                          ? ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                          : MAP_FAILED;
            if (p == MAP_FAILED)
                return 89;
            auto *secret = static_cast<unsigned char *>(p);
            fill_pattern(secret, kSize, 7);
            it::emit("ev=stored err=%d", static_cast<int>(sam_data_store(secret, kSize)));
            fail_after_start();
        }
        std::vector<unsigned char> got(kSize);
        const cs_error_t r = sam_data_restore(got.data(), kSize);
        it::emit("ev=seen restore=%d first_diff=%zu", static_cast<int>(r), first_mismatch(got.data(), kSize, 7));
        return 0;
    });
    REQUIRE(exited_with(prog.wait_exit(5000), 0));
    it::Event stored, seen;
    REQUIRE(prog.wait_event("stored", 0, &stored));
    REQUIRE(stored.num("err") == CS_OK);
    REQUIRE(prog.wait_event("seen", 0, &seen));
    REQUIRE(seen.num("restore") == CS_OK && seen.num("first_diff") == 64 * 1024);
    REQUIRE(prog.log().find("sending SIGKILL") == std::string::npos);
}

// Data at an address the instance itself cannot read (PROT_NONE), at every
// size class: sam_data_store returns CS_ERR_LIBRARY, as upstream does for a
// pointer its write() cannot follow; the instance lives on and the previous
// data stays whole, also for the next instance.
TEST(Data, StoreFromUnreadableMemoryFails) {
    prog.start([] {
        static const size_t kSizes[] = {1000, 64 * 1024, 1u << 20, 8u << 20};
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        if (iid == 1) {
            void *p = ::mmap(nullptr, 8u << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED || sam_data_store("previous", 8) != CS_OK)
                return 89;
            for (size_t size : kSizes)
                it::emit("ev=refused size=%zu err=%d", size, static_cast<int>(sam_data_store(p, size)));
            it::emit("ev=after data=%s", restored_text().c_str());
            fail_after_start();
        }
        it::emit("ev=seen data=%s", restored_text().c_str());
        return 0;
    });
    REQUIRE(exited_with(prog.wait_exit(5000), 0));
    const auto refused = prog.events_of("refused");
    REQUIRE(refused.size() == 4);
    for (const it::Event &e : refused)
        REQUIRE_MSG(e.num("err") == CS_ERR_LIBRARY, e.text);
    it::Event after, seen;
    REQUIRE(prog.wait_event("after", 0, &after));
    REQUIRE(after.get("data") == "previous");
    REQUIRE(prog.wait_event("seen", 0, &seen));
    REQUIRE(seen.get("data") == "previous");
    REQUIRE(prog.log().find("sending SIGKILL") == std::string::npos);
}
