// log.cpp - syslog or stderr sink for the supervisor's messages.
#include "log.hpp"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

namespace sam {
namespace {
std::atomic<bool> to_stderr{false};
}

void log_configure_from_env() noexcept {
    const char *v = std::getenv("SAM_LOG_STDERR");
    to_stderr.store(v != nullptr && std::strcmp(v, "0") != 0 && *v != '\0');
}

void log_line(int priority, const char *format, ...) noexcept {
    va_list ap;
    va_start(ap, format);
    vlog_line(priority, format, ap);
    va_end(ap);
}

void vlog_line(int priority, const char *format, va_list ap) noexcept {
    char text[512];
    std::vsnprintf(text, sizeof text, format, ap);
    if (to_stderr.load(std::memory_order_relaxed)) {
        char line[600];
        const int n = std::snprintf(line, sizeof line, "libsam[%ld]: %s\n", static_cast<long>(::getpid()), text);
        if (n > 0) {
            // One write() per line so lines from several processes do not interleave.
            ssize_t ignored = ::write(STDERR_FILENO, line, static_cast<size_t>(n) < sizeof line ? n : sizeof line - 1);
            (void)ignored;
        }
        return;
    }
    ::syslog(LOG_DAEMON | priority, "libsam[%ld]: %s", static_cast<long>(::getpid()), text);
}

void LogQueue::later(int priority, const char *format, ...) noexcept {
    va_list ap;
    va_start(ap, format);
    vlater(priority, format, ap);
    va_end(ap);
}

void LogQueue::vlater(int priority, const char *format, va_list ap) noexcept {
    if (count_ == kSlots)
        flush();
    Line &line = lines_[count_++];
    line.priority = priority;
    std::vsnprintf(line.text, sizeof line.text, format, ap);
}

void LogQueue::flush() noexcept {
    for (size_t i = 0; i < count_; ++i)
        log_line(lines_[i].priority, "%s", lines_[i].text);
    count_ = 0;
}

} // namespace sam
