// SPDX-License-Identifier: BSD-3-Clause
// log.hpp - the library's one-line log messages, the simple path.
//
// Lines go to syslog (facility daemon) by default, or to stderr when
// SAM_LOG_STDERR=1 is set at sam_initialize(). We call syslog() without
// openlog(): the application's ident and options stay as it set them.
// (qb_log is not used because configuring it from a library would take over
// logging the application may have set up itself.)
//
// These calls may block (a full stderr pipe, a stalled syslog reader): they
// serve the plain library and instances. The supervisor's loop writes its
// lines through a LogOutbox (log_outbox.hpp), which never blocks.
#pragma once

#include <cstdarg>

#include <syslog.h>

namespace sam {

void log_configure_from_env() noexcept;
// SAM_LOG_STDERR was set (else syslog).
[[nodiscard]] bool log_to_stderr() noexcept;
void log_line(int priority, const char *format, ...) noexcept __attribute__((format(printf, 2, 3)));
void vlog_line(int priority, const char *format, va_list ap) noexcept __attribute__((format(printf, 2, 0)));

} // namespace sam
