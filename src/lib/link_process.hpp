// SPDX-License-Identifier: BSD-3-Clause
// link_process.hpp - the process that holds every corosync connection.
//
// cmap and quorum calls block while corosync is slow, stopped or shutting
// down, and libcmap/libquorum map libqb's shared-memory rings read-write
// into whoever connects. So neither the supervisor nor any instance ever
// connects: the supervisor forks this small single-threaded process, and
// talks to it over a socket pair (link_wire.hpp). It creates and writes the
// keys, refreshes `last_updated` from the instance's heartbeat page (mapped
// read-only; coalesced to at most four writes per poll period), dispatches
// quorum notifications, answers quorum questions with corosync's current
// answer, and reconnects with back-off when corosync goes away.
//
// It dies with the supervisor (PR_SET_PDEATHSIG, and the socket's hang-up)
// without touching cmap; asked to finish, it makes the final write on its
// own, bounded by an alarm, and exits.
#pragma once

#include <cstdint>

namespace sam {

struct LinkConfig {
    long supervisor_pid = 0;
    bool cmap = false;
    bool quorum = false;
    // First start: the keys are created before anything else, and failing to
    // create them is reported (Ready with the error) and ends the link. A
    // restarted link keeps retrying instead.
    bool first = true;
    const char *recovery = "restart"; // the `recovery` key
    uint64_t interval_ms = 0;         // the `poll_period` key
};

// Runs in a freshly forked child; `sock` is its end of the socket pair.
// Never returns.
[[noreturn]] void run_link_process(int sock, const LinkConfig &cfg) noexcept;

} // namespace sam
