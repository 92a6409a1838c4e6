// SPDX-License-Identifier: BSD-3-Clause
// health.cpp - the shared heartbeat page: creation, and the robust mutex
// through which an instance sees its supervisor's death; the instance's run
// delay.
#include "health.hpp"

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sam {

// The instance reads the mutex's lock word directly instead of calling
// pthread_mutex_trylock() (a system call when the owner died). That word is
// the futex the kernel's robust-list code marks with FUTEX_OWNER_DIED when
// the owner ends; in glibc it is pthread_mutex_t::__data.__lock, an int at
// offset 0. Elsewhere the layout is unknown, so death is not reported there.
#if defined(__GLIBC__)
static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0, "glibc: the lock word opens pthread_mutex_t");
static_assert(std::is_same_v<decltype(std::declval<pthread_mutex_t &>().__data.__lock), int>,
              "glibc: the lock word is the 32-bit futex");
#endif

namespace {
size_t page_size() noexcept {
    const long page = ::sysconf(_SC_PAGESIZE);
    return page > 0 ? static_cast<size_t>(page) : 4096;
}
} // namespace

std::optional<HeartbeatPage> HeartbeatPage::create() noexcept {
    const size_t page = page_size();
    // The slot follows the heartbeat page. Pages of a memfd cost memory only
    // once written: an instance that never stores small data never pays.
    const size_t len = page + (sizeof(SlotShared) + page - 1) / page * page;
    // A memfd rather than anonymous memory: the link process must see the
    // same page, and a descriptor is the way to hand it over. Sealed at its
    // size, so nobody holding the descriptor can shrink it under a mapping.
    UniqueFd fd(::memfd_create("sam-heartbeat", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(len)) != 0 ||
        ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        return std::nullopt;
    void *addr = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (addr == MAP_FAILED)
        return std::nullopt;
    HeartbeatPage result{Mapping(addr, len), std::move(fd), DataSlot(static_cast<char *>(addr) + page)};
    auto *shared = new (addr) HeartbeatShared{};
    shared->last_beat_ns.store(0, std::memory_order_relaxed);
    pthread_mutexattr_t attr;
    if (::pthread_mutexattr_init(&attr) != 0)
        return std::nullopt;
    const bool ok = ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) == 0 &&
                    ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) == 0 &&
                    ::pthread_mutex_init(&shared->supervisor_alive, &attr) == 0;
    (void)::pthread_mutexattr_destroy(&attr);
    if (!ok)
        return std::nullopt;
    return result;
}

std::optional<HeartbeatPage> HeartbeatPage::map_readonly(int fd) noexcept {
    const size_t len = page_size();
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) < len ||
        (::fcntl(fd, F_GET_SEALS) & F_SEAL_SHRINK) == 0)
        return std::nullopt;
    void *addr = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED)
        return std::nullopt;
    return HeartbeatPage(Mapping(addr, len), UniqueFd());
}

bool HeartbeatPage::hold() noexcept {
    if (held_)
        return true;
    if (::pthread_mutex_lock(&shared()->supervisor_alive) != 0)
        return false;
    held_ = true;
    return true;
}

void HeartbeatPage::let_go() noexcept {
    if (!held_ || !valid())
        return;
    held_ = false;
    // From any thread but the owner this is EPERM and changes nothing
    // (robust mutexes check their owner).
    (void)::pthread_mutex_unlock(&shared()->supervisor_alive);
}

bool HeartbeatPage::supervisor_gone() const noexcept {
#if defined(__GLIBC__)
    // Owner died: the kernel cleared the owner's id and set the bit. No
    // owner at all: the supervisor unlocked it (it no longer watches us).
    const int word = __atomic_load_n(&shared()->supervisor_alive.__data.__lock, __ATOMIC_ACQUIRE);
    return (word & FUTEX_OWNER_DIED) != 0 || (word & FUTEX_TID_MASK) == 0;
#else
    return false;
#endif
}

namespace {

// Reads a small /proc file from its start; false if it cannot.
bool read_proc(int fd, char *buf, size_t cap) noexcept {
    if (fd < 0)
        return false;
    const ssize_t n = ::pread(fd, buf, cap - 1, 0);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

} // namespace

CpuSample read_cpu_sample(int schedstat_fd, int stat_fd, uint64_t now_ns) noexcept {
    CpuSample s;
    s.at_ns = now_ns;
    // schedstat: "<ns on a CPU> <ns waiting for one> <timeslices>".
    char text[512];
    if (!read_proc(schedstat_fd, text, sizeof text))
        return s;
    char *end = nullptr;
    const unsigned long long cpu = std::strtoull(text, &end, 10);
    if (end == text || *end != ' ')
        return s;
    const char *second = end + 1;
    const unsigned long long delay = std::strtoull(second, &end, 10);
    if (end == second)
        return s;
    // stat: "pid (comm) S ...": the state follows the last ')', since the
    // command name may itself hold parentheses and spaces.
    if (!read_proc(stat_fd, text, sizeof text))
        return s;
    const char *paren = std::strrchr(text, ')');
    if (paren == nullptr || paren[1] != ' ' || paren[2] == '\0')
        return s;
    s.known = true;
    s.runnable = paren[2] == 'R';
    s.cpu_ns = static_cast<uint64_t>(cpu);
    s.run_delay_ns = static_cast<uint64_t>(delay);
    return s;
}

uint64_t starved_between(const CpuSample &before, const CpuSample &now) noexcept {
    if (!before.known || !now.known || now.at_ns < before.at_ns)
        return 0;
    uint64_t starved = now.run_delay_ns > before.run_delay_ns ? now.run_delay_ns - before.run_delay_ns : 0;
    const uint64_t elapsed = now.at_ns - before.at_ns;
    const uint64_t ran = now.cpu_ns > before.cpu_ns ? now.cpu_ns - before.cpu_ns : 0;
    // "Almost no CPU": under a tenth of the time. A runnable instance that
    // did run (a busy loop, say) is not starved, whatever it is doing.
    if (now.runnable && ran < elapsed / 10 && elapsed > starved)
        starved = elapsed;
    return starved;
}

} // namespace sam
