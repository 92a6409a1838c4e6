// SPDX-License-Identifier: BSD-3-Clause
// log.hpp - sam-run's own messages: one line each on stderr, prefixed with
// "sam-run[<supervisor pid>]" so they read well next to the program's output
// and in the journal.
#pragma once

#include <sys/types.h>

namespace samrun {

// Which pid the prefix shows; set once by main, again in the instance.
void log_set_pid(pid_t pid);
void log_set_instance(unsigned int instance_id);

__attribute__((format(printf, 1, 2))) void log_line(const char *format, ...);

} // namespace samrun
