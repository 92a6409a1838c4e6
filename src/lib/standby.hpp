// SPDX-License-Identifier: BSD-3-Clause
// standby.hpp - the next instance, forked ahead of time.
//
// A restart that forks pays for the fork while no instance runs. The
// supervisor therefore forks the next instance once the current one has
// started (before sam_start() returns to it): that process, the standby,
// holds the next instance's channel and heartbeat page and blocks on the
// channel. When the instance dies, the supervisor sends the standby one
// datagram (its instance id, the warn signal, and the stored data if it
// changed since the standby's fork) and the standby returns from
// sam_register() as the new instance. No fork is left on the restart path.
//
// A standby is a copy of the supervisor at its own fork. The supervisor's
// one thread never touches the application's memory, so that copy equals
// the supervisor at the death in everything the application can see, except
// what the wake message carries; the supervisor forks a standby only when it
// runs no other thread (an application thread started before sam_register
// stays in the supervisor and may change anything meanwhile). The data is
// kept if unchanged since the fork (a generation count), else sent in the
// message up to 32 KiB, in a sealed memfd up to 256 KiB; above that the
// standby is killed and the restart forks, as it does when the standby died
// before use or SAM_STANDBY=0 is set.
//
// While it waits the standby ignores the stop signals (a signal sent to the
// process group is the supervisor's to pass on), is killed by the kernel when
// the supervisor's thread ends (PR_SET_PDEATHSIG) and exits when its channel
// hangs up; it is named "sam-standby" (comm, what ps -o comm and pgrep show)
// and takes back the program's name when woken. It never runs application
// code before that: it only ever leaves with _exit().
#pragma once

#include <cstddef>
#include <cstdint>

#include <sys/types.h>

#include "datastore.hpp"
#include "fd.hpp"

namespace sam {

struct Library;

// False when SAM_STANDBY=0 is in the environment.
[[nodiscard]] bool standby_enabled_by_env() noexcept;

// True when the calling process runs one thread only (/proc/self/status);
// false when it runs more or cannot tell.
[[nodiscard]] bool only_thread_in_process() noexcept;

// The supervisor's side of one standby process.
class Standby {
  public:
    Standby() = default;
    Standby(const Standby &) = delete;
    Standby &operator=(const Standby &) = delete;
    ~Standby() { discard(-1); }

    // Takes the freshly forked child `pid`: opens its pidfd and watches it
    // in `epoll_fd` with `tag` (readable when the standby ends before use).
    // `data_generation` is the stored data's generation at the fork. On
    // failure (errno set) the child is killed and reaped.
    [[nodiscard]] bool adopt(pid_t pid, int epoll_fd, uint64_t tag, uint64_t data_generation) noexcept;

    [[nodiscard]] bool waiting() const noexcept { return pidfd_.valid(); }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    // Whether the wake message can give the standby `data` as it is now.
    [[nodiscard]] bool can_carry(const DataStore &data) const noexcept;

    // Sends the wake message on the supervisor's end of the standby's
    // channel. False (errno set) when the standby is gone.
    [[nodiscard]] bool wake(int channel_fd, unsigned instance_id, int warn_signal, const DataStore &data) noexcept;

    // After a successful wake the standby is the instance: its pidfd, now
    // watched in `epoll_fd` with `instance_tag`, and its /proc/PID/schedstat
    // and stat, opened at adopt() so that no restart waits for them (either
    // may be invalid, as when opened at a fork).
    struct Handover {
        UniqueFd pidfd, schedstat, stat;
        bool watched = false; // false: the caller must add the pidfd to epoll
    };
    [[nodiscard]] Handover release(int epoll_fd, uint64_t instance_tag) noexcept;

    // A pidfd watched with the standby's tag was readable: reaps a retired
    // standby that has ended (silently), then the waiting one if it has
    // ended, describing how in `how`. True only for the waiting one.
    [[nodiscard]] bool reap_ended(int epoll_fd, char *how, size_t how_size) noexcept;

    // Kills the waiting standby without waiting for its end, which can take
    // as long as a process's exit: reap_ended() reaps it once its pidfd says
    // so. Used on the restart path.
    void retire(int epoll_fd) noexcept;

    // Kills and reaps the standby and a retired one, if any (epoll_fd -1:
    // not watched any more).
    void discard(int epoll_fd) noexcept;

    // In a child forked by the supervisor: forgets the standby, which is
    // the supervisor's, without touching it.
    void abandon_in_child() noexcept;

  private:
    void forget(int epoll_fd) noexcept;
    void reap_retired(int epoll_fd, int options) noexcept;
    UniqueFd pidfd_, schedstat_, stat_;
    pid_t pid_ = -1;
    UniqueFd retired_pidfd_; // killed, not reaped yet (still watched)
    pid_t retired_pid_ = -1;
    uint64_t data_generation_ = 0;
};

// After a fork every page of this process is shared with the child until
// one of them writes to it, and the first write copies it (a page fault).
// Writes one byte of [addr, addr + len) on each page it spans back
// unchanged, so the copies are made now rather than on the restart path. The caller's thread
// must be the only one writing there.
void own_pages(const void *addr, size_t len) noexcept;

// The standby's side. Blocks until woken on `channel_fd` (its instance end
// of the channel) and applies the wake message to `lib`: instance id, warn
// signal, data. False when the channel hung up or the message is not valid:
// the caller then _exit()s.
[[nodiscard]] bool standby_wait(int channel_fd, Library &lib) noexcept;

// The process's name (comm) while it waits as a standby.
class StandbyName {
  public:
    void enter() noexcept;
    void leave() noexcept;

  private:
    char saved_[17] = {};
    bool changed_ = false;
};

} // namespace sam
