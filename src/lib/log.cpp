// SPDX-License-Identifier: BSD-3-Clause
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

bool log_to_stderr() noexcept { return to_stderr.load(std::memory_order_relaxed); }

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

} // namespace sam
