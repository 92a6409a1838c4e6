// log.hpp - the supervisor's one-line log messages.
//
// Lines go to syslog (facility daemon) by default, or to stderr when
// SAM_LOG_STDERR=1 is set at sam_initialize(). We call syslog() without
// openlog(): the application's ident and options stay as it set them.
// (qb_log is not used because configuring it from a library would take over
// logging the application may have set up itself.)
#pragma once

#include <syslog.h>

namespace sam {

void log_configure_from_env() noexcept;
void log_line(int priority, const char *format, ...) noexcept __attribute__((format(printf, 2, 3)));

} // namespace sam
