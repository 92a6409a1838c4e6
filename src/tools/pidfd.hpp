// SPDX-License-Identifier: BSD-3-Clause
// pidfd.hpp - glibc 2.36 (Debian 12) ships <sys/pidfd.h> without the C++
// linkage guard, so C++ would look for mangled names; include it here only.
#pragma once

#include <signal.h>

extern "C" {
#include <sys/pidfd.h>
}
