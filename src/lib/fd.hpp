// SPDX-License-Identifier: BSD-3-Clause
// fd.hpp - small RAII and system helpers shared by the instance and the
// supervisor side: an owning file descriptor, an owning memory mapping, the
// monotonic clock in nanoseconds, and saturating time arithmetic.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <limits>
#include <utility>

#include <sys/mman.h>
#include <unistd.h>

namespace sam {

// Owns one file descriptor; closes it when it goes out of scope.
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(const UniqueFd &) = delete;
    UniqueFd &operator=(const UniqueFd &) = delete;
    UniqueFd(UniqueFd &&other) noexcept : fd_(other.release()) {}
    UniqueFd &operator=(UniqueFd &&other) noexcept {
        if (this != &other)
            reset(other.release());
        return *this;
    }
    ~UniqueFd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        int old = std::exchange(fd_, fd);
        if (old >= 0)
            ::close(old); // EINTR on Linux still closes; nothing to retry
    }

  private:
    int fd_ = -1;
};

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

// CLOCK_MONOTONIC in nanoseconds: the same clock corosync's cs_timestamp_get()
// reads, so values can be published in cmap as they are. Served by the vDSO:
// no system call.
inline uint64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// a + b, clamped at the largest value instead of wrapping.
constexpr uint64_t saturating_add(uint64_t a, uint64_t b) noexcept {
    return (a > std::numeric_limits<uint64_t>::max() - b) ? std::numeric_limits<uint64_t>::max() : a + b;
}

constexpr uint64_t ms_to_ns(uint64_t ms) noexcept {
    return (ms > std::numeric_limits<uint64_t>::max() / 1000000ULL) ? std::numeric_limits<uint64_t>::max()
                                                                    : ms * 1000000ULL;
}

// Runs a system call again while it fails with EINTR.
template <typename F> auto retry_eintr(F &&call) {
    for (;;) {
        auto r = call();
        if (r != -1 || errno != EINTR)
            return r;
    }
}

} // namespace sam
