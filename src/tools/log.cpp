// SPDX-License-Identifier: BSD-3-Clause
// log.cpp - see log.hpp. One write(2) per line, so lines from the relay, the
// health-check thread and the library never interleave mid-line.
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>

#include "log.hpp"

namespace samrun {

namespace {
std::atomic<pid_t> g_log_pid{0};
std::atomic<unsigned int> g_log_instance{0};
} // namespace

void log_set_pid(pid_t pid) { g_log_pid = pid; }
void log_set_instance(unsigned int instance_id) { g_log_instance = instance_id; }

void log_line(const char *format, ...) {
    char line[1024];
    int used;
    unsigned int instance = g_log_instance;
    if (instance != 0) {
        used = snprintf(line, sizeof line, "sam-run[%d] instance %u: ", static_cast<int>(g_log_pid), instance);
    } else {
        used = snprintf(line, sizeof line, "sam-run[%d]: ", static_cast<int>(g_log_pid));
    }
    if (used < 0 || static_cast<size_t>(used) >= sizeof line) {
        return;
    }
    va_list ap;
    va_start(ap, format);
    int more = vsnprintf(line + used, sizeof line - static_cast<size_t>(used) - 1, format, ap);
    va_end(ap);
    if (more < 0) {
        return;
    }
    size_t len = static_cast<size_t>(used) + static_cast<size_t>(more);
    if (len > sizeof line - 2) {
        len = sizeof line - 2;
    }
    line[len++] = '\n';
    // Nothing sensible to do if stderr is gone.
    (void)!write(STDERR_FILENO, line, len);
}

} // namespace samrun
