// SPDX-License-Identifier: BSD-3-Clause
// fd.hpp - small RAII and system helpers shared by the instance and the
// supervisor side: an owning memory mapping and EINTR retries, plus the
// base shared with sam-run (an owning file descriptor, the clocks and
// saturating time arithmetic, in src/common).
#pragma once

#include <cerrno>
#include <cstddef>
#include <utility>

#include <sys/mman.h>

#include "common/clock.hpp"
#include "common/unique_fd.hpp"

namespace sam {

// Owns one mmap() region; unmaps it when it goes out of scope.
class Mapping {
  public:
    Mapping() = default;
    Mapping(void *addr, size_t len) noexcept : addr_(addr), len_(len) {}
    Mapping(const Mapping &) = delete;
    Mapping &operator=(const Mapping &) = delete;
    Mapping(Mapping &&o) noexcept : addr_(std::exchange(o.addr_, nullptr)), len_(std::exchange(o.len_, 0)) {}
    Mapping &operator=(Mapping &&o) noexcept {
        if (this != &o) {
            reset();
            addr_ = std::exchange(o.addr_, nullptr);
            len_ = std::exchange(o.len_, 0);
        }
        return *this;
    }
    ~Mapping() { reset(); }

    [[nodiscard]] void *get() const noexcept { return addr_; }
    [[nodiscard]] size_t size() const noexcept { return len_; }
    void reset() noexcept {
        if (addr_ != nullptr)
            ::munmap(addr_, len_);
        addr_ = nullptr;
        len_ = 0;
    }

  private:
    void *addr_ = nullptr;
    size_t len_ = 0;
};

// Runs a system call again while it fails with EINTR.
template <typename F> auto retry_eintr(F &&call) {
    for (;;) {
        auto r = call();
        if (r != -1 || errno != EINTR)
            return r;
    }
}

} // namespace sam
