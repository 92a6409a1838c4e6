// health.cpp - creation of the shared heartbeat page.
#include "health.hpp"

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

} // namespace sam
