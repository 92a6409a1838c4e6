// SPDX-License-Identifier: BSD-3-Clause
// script.hpp - a scripted libsam program for the integration tests.
//
// run_script() is a program body (see harness.hpp): it initializes libsam,
// registers, and every instance emits "ev=reg iid=N err=E", then obeys the
// test's commands, one per line:
//
//   start | stop          sam_start() / sam_stop(); emits ev=started / ev=stopped err=E
//   hang | beat           stop / resume calling sam_hc_send() while started
//   exit N                emits ev=exiting, then _exit(N)
//   crash SIG             emits ev=exiting, then kills itself with SIG
//   mark_failed           emits ev=marking, then ev=marked err=E if it returns
//   hc N                  N calls to sam_hc_send(); emits ev=hc_done n=N ok=K
//   execfds               emits ev=execfds fds=A,B,...: what a program the
//                         instance executes inherits (descriptors above 2)
//   store N               sam_data_store() of N bytes; emits ev=stored err=E
//   qbmaps                emits ev=qbmaps n=N: mappings of libqb's shared
//                         memory (/dev/shm/qb-*) in /proc/self/maps
//   scribble              overwrites every writable shared mapping except
//                         the heartbeat page; emits ev=scribbled n=N
//   idle                  nothing (keeps the command loop honest)
//
// While started and not hung it calls sam_hc_send() every hc_period_ms.
// Signals listed in `record` are caught and emitted (ev=signal sig=S iid=N);
// SIGTERM can be made to end the instance with exit 0.
#pragma once

#include <vector>

#include <corosync/sam.h>

namespace it {

struct Script {
    int interval_ms = 200;
    int policy = SAM_RECOVERY_POLICY_RESTART;
    int warn_signal = 0;       // 0: keep the default (SIGTERM); set from the instance
    std::vector<int> record;   // signals caught and emitted
    bool exit_on_term = false; // SIGTERM: emit, then _exit(0)
    bool auto_start = false;   // every instance calls sam_start() right after reg
    int hc_period_ms = -1;     // -1: interval / 3
};

int run_script(const Script &s);

} // namespace it
