// SPDX-License-Identifier: BSD-3-Clause
// test_data.cpp - the stored data lives in the supervisor and survives
// every restart, and large stores travel without a pipe, atomically.
#include <algorithm>
#include <csignal>
#include <cstdio>
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
#include "data_slot.hpp"
#include "fixture.hpp"

namespace {

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

PROGRAM_GROUP(Data){};

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
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
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
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
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
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
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
    REQUIRE_EXIT(prog.wait_exit(20000), 0);
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
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    it::Event seen;
    REQUIRE(prog.wait_event("seen", 0, &seen));
    REQUIRE(seen.num("getsize") == CS_OK && seen.num("restore") == CS_OK && seen.num("whole") == 1);
}

// Sizes around the switches between the ways data travels (the slot up to
// 64 KiB, the request itself where the slot cannot be used, up to 32 KiB,
// a read out of the instance, into huge-page memory from 4 MiB) and a
// single byte arrive byte for byte in the next instance.
TEST(Data, BoundarySizesAcrossRestart) {
    static const size_t kSizes[] = {1,          32 * 1024,      32 * 1024 + 1, 64 * 1024,     64 * 1024 + 1,
                                    256 * 1024, (4u << 20) - 1, 4u << 20,      (4u << 20) + 1};
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
    REQUIRE_EXIT(prog.wait_exit(10000), 0);
    const auto seen = prog.events_of("seen");
    REQUIRE(seen.size() == kCount);
    for (const it::Event &e : seen) {
        REQUIRE_MSG(e.num("getsize") == CS_OK && e.num("size") == e.num("want"), e.text);
        REQUIRE_MSG(e.num("restore") == CS_OK && e.num("first_diff") == e.num("want") && e.num("tail") == 1, e.text);
    }
}

// A medium store (64 KiB .. 64 MiB) is copied by the supervisor straight out
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
        REQUIRE_EXIT_OF(p, p.wait_exit(10000), 0);
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
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
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
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
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

// ---- small stores: the slot shared with the supervisor (data_slot.hpp) ----

namespace {

// The slot of this instance's page, found through /proc/self/maps: the
// mapping of the library's heartbeat memfd; the slot follows its first page.
sam::SlotShared *own_slot() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    while (std::getline(maps, line)) {
        if (line.find("memfd:sam-heartbeat") == std::string::npos)
            continue;
        unsigned long lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && hi - lo >= page + sizeof(sam::SlotShared))
            return reinterpret_cast<sam::SlotShared *>(lo + page);
    }
    return nullptr;
}

// Stores of the storm: store i has its own size and bytes, and says which
// it is in its first 8 bytes.
size_t storm_size(uint64_t i) { return 8 + static_cast<size_t>((i * 7919) % (sam::kSlotDataMax - 7)); }

void storm_fill(std::vector<unsigned char> &buf, uint64_t i) {
    buf.resize(storm_size(i));
    std::memcpy(buf.data(), &i, 8);
    fill_pattern(buf.data() + 8, buf.size() - 8, i);
}

} // namespace

// A small store, then death by SIGKILL right away: nothing but the slot
// holds that store when the instance dies, and the next instance gets it.
TEST(Data, SmallStoreThenKilledIsRestored) {
    prog.start([] {
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        if (iid == 1) {
            unsigned char data[64];
            fill_pattern(data, sizeof data, 64);
            if (sam_start() != CS_OK || sam_data_store(data, sizeof data) != CS_OK)
                return 93;
            ::raise(SIGKILL);
        }
        unsigned char got[64] = {};
        size_t size = 0;
        const cs_error_t g = sam_data_getsize(&size);
        const cs_error_t r = sam_data_restore(got, sizeof got);
        it::emit("ev=seen getsize=%d size=%zu restore=%d first_diff=%zu", static_cast<int>(g), size,
                 static_cast<int>(r), first_mismatch(got, sizeof got, 64));
        return 0;
    });
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    it::Event seen;
    REQUIRE(prog.wait_event("seen", 0, &seen));
    REQUIRE_MSG(seen.num("getsize") == CS_OK && seen.num("size") == 64 && seen.num("restore") == CS_OK &&
                    seen.num("first_diff") == 64,
                seen.text);
}

// SIGKILL lands somewhere in a storm of small stores of varying sizes: the
// next instance gets one whole store, one of those that had returned before
// the kill was sent or the one under way, never a mix.
TEST(Data, KilledDuringSmallStoreStormLeavesOneWholeStore) {
    prog.start([] {
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        if (iid == 1) {
            if (sam_start() != CS_OK)
                return 93;
            std::vector<unsigned char> buf;
            for (uint64_t i = 1;; ++i) {
                storm_fill(buf, i);
                if (sam_data_store(buf.data(), buf.size()) != CS_OK)
                    return 94;
                (void)sam_hc_send();
                if (i == 200)
                    it::emit("ev=storm");
            }
        }
        size_t size = 0;
        if (sam_data_getsize(&size) != CS_OK || size < 8)
            return 95;
        std::vector<unsigned char> got(size);
        if (sam_data_restore(got.data(), size) != CS_OK)
            return 96;
        uint64_t i = 0;
        std::memcpy(&i, got.data(), 8);
        const bool whole = size == storm_size(i) && first_mismatch(got.data() + 8, size - 8, i) == size - 8;
        it::emit("ev=seen i=%llu size=%zu whole=%d", static_cast<unsigned long long>(i), size, whole ? 1 : 0);
        return 0;
    });
    it::Event storm;
    REQUIRE_MSG(prog.wait_event("storm", 5000, &storm), prog.transcript());
    ::kill(storm.pid, SIGKILL);
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    it::Event seen;
    REQUIRE_MSG(prog.wait_event("seen", 0, &seen), prog.transcript());
    REQUIRE_MSG(seen.num("whole") == 1 && seen.num("i") >= 200, seen.text);
}

// An instance that scribbles on its own slot loses only its own small
// stores: the supervisor rejects the slot with a log line and goes on, and
// the next instance gets the data as it was before that instance's slot
// stores (here: what instance 1 stored).
TEST(Data, ScribbledSlotIsRejected) {
    prog.start([] {
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        it::emit("ev=seen iid=%u data=%s", iid, restored_text().c_str());
        if (iid == 1) {
            if (sam_data_store("before", 6) != CS_OK)
                return 93;
            fail_after_start();
        }
        if (iid == 4)
            return 0;
        sam::SlotShared *slot = own_slot();
        if (slot == nullptr)
            return 94;
        if (sam_data_store(iid == 2 ? "two" : "three", iid == 2 ? 3 : 5) != CS_OK)
            return 95;
        sam::SlotHalf &h = slot->half[slot->published.load() & 1];
        if (iid == 2)
            h.bytes[1] ^= 0x20; // a stray write into the stored bytes
        else
            h.len = sam::kSlotDataMax + 1; // an impossible length
        fail_after_start();
    });
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    const auto seen = prog.events_of("seen");
    REQUIRE_MSG(seen.size() == 4, prog.transcript());
    REQUIRE(seen[0].get("data") == "<none>");
    for (size_t i = 1; i < 4; ++i)
        REQUIRE_MSG(seen[i].get("data") == "before", seen[i].text);
    REQUIRE_MSG(prog.log().find("instance 2 left invalid data in its small-store slot (checksum") != std::string::npos,
                prog.log());
    REQUIRE_MSG(prog.log().find("instance 3 left invalid data in its small-store slot (length") != std::string::npos,
                prog.log());
}

// One sequence orders the slot and the other paths: the latest store wins
// whichever way each went, and so does a delete.
TEST(Data, SmallAndLargeStoresKeepTheirOrder) {
    prog.start([] {
        constexpr size_t kLarge = 1u << 20;
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        size_t size = 0;
        (void)sam_data_getsize(&size);
        std::vector<unsigned char> got(size);
        if (size > 0 && sam_data_restore(got.data(), size) != CS_OK)
            return 93;
        it::emit("ev=seen iid=%u size=%zu large=%d", iid, size,
                 size == kLarge && first_mismatch(got.data(), size, 5) == size ? 1 : 0);
        std::vector<unsigned char> large(kLarge);
        fill_pattern(large.data(), kLarge, 5);
        switch (iid) {
        case 1: // small, then large: the large one
            if (sam_data_store("small", 5) != CS_OK || sam_data_store(large.data(), kLarge) != CS_OK)
                return 94;
            fail_after_start();
        case 2: // large, then small: the small one
            if (sam_data_store(large.data(), kLarge) != CS_OK || sam_data_store("small", 5) != CS_OK)
                return 94;
            fail_after_start();
        case 3: // small, then a delete: nothing
            if (sam_data_store("small", 5) != CS_OK || sam_data_store(nullptr, 0) != CS_OK)
                return 94;
            fail_after_start();
        case 4: // a delete, then small: the small one
            if (sam_data_store(nullptr, 0) != CS_OK || sam_data_store("again", 5) != CS_OK)
                return 94;
            fail_after_start();
        default:
            return 0;
        }
    });
    REQUIRE_EXIT(prog.wait_exit(10000), 0);
    const auto seen = prog.events_of("seen");
    REQUIRE_MSG(seen.size() == 5, prog.transcript());
    REQUIRE(seen[0].num("size") == 0);
    REQUIRE_MSG(seen[1].num("large") == 1, seen[1].text);
    REQUIRE_MSG(seen[2].num("size") == 5, seen[2].text);
    REQUIRE_MSG(seen[3].num("size") == 0, seen[3].text);
    REQUIRE_MSG(seen[4].num("size") == 5, seen[4].text);
}

// In the instance itself, sam_data_getsize() and sam_data_restore() see a
// small store at once, also between stores that took other paths.
TEST(Data, GetsizeSeesSmallStoreAtOnce) {
    prog.start([] {
        unsigned iid = 0;
        if (const int e = restart_register(iid))
            return e;
        std::vector<unsigned char> large(100000, 'L');
        size_t a = 0, b = 0, c = 0, d = 0;
        if (sam_data_store("sixty-four", 10) != CS_OK || sam_data_getsize(&a) != CS_OK)
            return 93;
        const std::string first = restored_text();
        if (sam_data_store("abc", 3) != CS_OK || sam_data_getsize(&b) != CS_OK)
            return 94;
        const std::string second = restored_text();
        if (sam_data_store(large.data(), large.size()) != CS_OK || sam_data_getsize(&c) != CS_OK)
            return 95;
        if (sam_data_store("xy", 2) != CS_OK || sam_data_getsize(&d) != CS_OK)
            return 96;
        it::emit("ev=sizes a=%zu b=%zu c=%zu d=%zu first=%s second=%s last=%s", a, b, c, d, first.c_str(),
                 second.c_str(), restored_text().c_str());
        return 0;
    });
    REQUIRE_EXIT(prog.wait_exit(5000), 0);
    it::Event sizes;
    REQUIRE(prog.wait_event("sizes", 0, &sizes));
    REQUIRE_MSG(sizes.num("a") == 10 && sizes.num("b") == 3 && sizes.num("c") == 100000 && sizes.num("d") == 2,
                sizes.text);
    REQUIRE_MSG(sizes.get("first") == "sixty-four" && sizes.get("second") == "abc" && sizes.get("last") == "xy",
                sizes.text);
}
