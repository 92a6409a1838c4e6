// log.hpp - the supervisor's one-line log messages.
//
// Lines go to syslog (facility daemon) by default, or to stderr when
// SAM_LOG_STDERR=1 is set at sam_initialize(). We call syslog() without
// openlog(): the application's ident and options stay as it set them.
// (qb_log is not used because configuring it from a library would take over
// logging the application may have set up itself.)
#pragma once

#include <cstdarg>
#include <cstddef>

#include <syslog.h>

namespace sam {

void log_configure_from_env() noexcept;
void log_line(int priority, const char *format, ...) noexcept __attribute__((format(printf, 2, 3)));
void vlog_line(int priority, const char *format, va_list ap) noexcept __attribute__((format(printf, 2, 0)));

// Lines formatted now and written later, in order. The supervisor queues the
// lines of a restart so that syslog() (which formats the local time and talks
// to a socket) runs after the new instance is on its way, not before.
class LogQueue {
  public:
    static constexpr size_t kSlots = 4;
    static constexpr size_t kLineMax = 256; // longer lines are cut

    // When the queue is full, what it holds is written first.
    void later(int priority, const char *format, ...) noexcept __attribute__((format(printf, 3, 4)));
    void vlater(int priority, const char *format, va_list ap) noexcept __attribute__((format(printf, 3, 0)));
    void flush() noexcept;
    [[nodiscard]] bool empty() const noexcept { return count_ == 0; }

  private:
    struct Line {
        int priority;
        char text[kLineMax];
    };
    Line lines_[kSlots];
    size_t count_ = 0;
};

} // namespace sam
