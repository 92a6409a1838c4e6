// SPDX-License-Identifier: BSD-3-Clause
// service_filter.hpp - the system call filter of a hardened systemd unit
// (SystemCallFilter=@system-service without SystemCallErrorNumber=), for
// the scenarios of integ-seccomp and integ-seccomp-corosync: any call
// outside the set kills the process, as under such a unit.
#pragma once

#include <string>
#include <vector>

#include "harness.hpp"

namespace it {

// From here on this process and everything it forks or executes may make
// only the calls of @system-service (system_service_calls.hpp); any other
// one kills the whole process (SECCOMP_RET_KILL_PROCESS). clone3 fails with
// ENOSYS, as under systemd's RestrictNamespaces=. False if the filter could
// not be set (kAuditArch == 0: skip the test).
bool allow_only_system_service();

// How a filtered program ended, for failure messages: SIGSYS is named as a
// call outside the set.
std::string outcome(const Exit &x);

// For Program::start: the program becomes sam-run (SAM_RUN, or the build
// tree's) with these arguments, under the filter; stdout goes to the
// program's stderr so the test can read both. Returns only on failure.
int exec_sam_run_filtered(const std::vector<std::string> &args);

// getenv(name), or fallback when unset or empty.
std::string env_or(const char *name, const char *fallback);

} // namespace it
