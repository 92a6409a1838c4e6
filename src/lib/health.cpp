// health.cpp - creation of the shared heartbeat page; the instance's run delay.
#include "health.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include <sys/mman.h>
#include <unistd.h>

namespace sam {

std::optional<HeartbeatPage> HeartbeatPage::create() noexcept {
    const long page = ::sysconf(_SC_PAGESIZE);
    const size_t len = page > 0 ? static_cast<size_t>(page) : 4096;
    // MAP_SHARED|MAP_ANONYMOUS: the same physical page in supervisor and
    // instance after fork; nothing on disk, no descriptor to leak.
    void *addr = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (addr == MAP_FAILED)
        return std::nullopt;
    new (addr) HeartbeatShared{};
    static_cast<HeartbeatShared *>(addr)->last_beat_ns.store(0, std::memory_order_relaxed);
    return HeartbeatPage(Mapping(addr, len));
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
