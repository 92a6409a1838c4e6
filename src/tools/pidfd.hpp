// SPDX-License-Identifier: BSD-3-Clause
/*
 * pidfd.hpp - glibc 2.36 (Debian 12) ships <sys/pidfd.h> without the C++
 * linkage guard, so C++ would look for mangled names; include it here only.
 */
#ifndef SAMRUN_PIDFD_HPP
#define SAMRUN_PIDFD_HPP

#include <signal.h>

extern "C" {
#include <sys/pidfd.h>
}

#endif
