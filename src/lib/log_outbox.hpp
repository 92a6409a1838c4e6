// SPDX-License-Identifier: BSD-3-Clause
// log_outbox.hpp - how the supervisor's log lines leave without ever
// blocking its loop.
//
// Lines wait in a LogRing and are written with non-blocking calls on
// descriptors of the supervisor's own:
//   - syslog: our own SOCK_DGRAM socket connected to /dev/log, sending
//     "<facility|priority>libsam[pid]: text" ourselves (no timestamp: syslog
//     daemons take the time of reception; libc's syslog() would block on a
//     full socket and formats the local time on every call);
//   - stderr: a new open file description of the same pipe, tty or device
//     (reopened through /proc/self/fd/2), so that O_NONBLOCK does not change
//     the instance's stderr; a socket is written with MSG_DONTWAIT; a
//     regular file never blocks and keeps its shared offset (a duplicate of
//     fd 2); anything else drops the lines (counted).
// When the descriptor is full the loop watches it for EPOLLOUT
// (blocked_fd()) and calls drain() again.
//
// Only the supervisor uses this; an instance and the plain library log
// through log_line().
#pragma once

#include <cstdarg>
#include <cstddef>
#include <sys/types.h>

#include "fd.hpp"
#include "log_ring.hpp"

namespace sam {

class LogOutbox {
  public:
    LogOutbox() = default;
    LogOutbox(const LogOutbox &) = delete;
    LogOutbox &operator=(const LogOutbox &) = delete;

    // Chooses the target (log_to_stderr()) and opens our descriptor. Also
    // blocks SIGPIPE in the calling thread: a reader of stderr that went
    // away must cost a line, not the supervisor.
    void open() noexcept;
    // In a new instance: the descriptors are the supervisor's.
    void close() noexcept;
    [[nodiscard]] bool is_open() const noexcept { return open_; }

    // Queues a line (before open(): written at once through log_line()).
    void vadd(int priority, const char *format, va_list ap) noexcept __attribute__((format(printf, 3, 0)));
    // Writes what the descriptor takes now; never waits.
    void drain() noexcept;
    // The descriptor to watch for EPOLLOUT while lines wait, else -1.
    [[nodiscard]] int blocked_fd() const noexcept { return blocked_ ? fd_.get() : -1; }
    // Before exiting: drain, waiting for the descriptor at most timeout_ms.
    void drain_before_exit(int timeout_ms) noexcept;

    [[nodiscard]] const LogRing &ring() const noexcept { return ring_; }

  private:
    enum class Target { Drop, Write, Send };
    enum class Sent { All, Partly, Blocked, Failed };
    void open_stderr() noexcept;
    void open_syslog() noexcept;
    bool connect_syslog() noexcept;
    Sent send_front() noexcept;
    Sent transmit(const char *data, size_t len) noexcept;

    LogRing ring_;
    UniqueFd fd_;
    Target target_ = Target::Drop;
    bool syslog_ = false;
    bool connected_ = false;
    bool open_ = false;
    bool blocked_ = false;
    size_t sent_ = 0; // bytes of the front line already written (streams)
    pid_t pid_ = 0;
};

} // namespace sam
