// SPDX-License-Identifier: BSD-3-Clause
// status.hpp - `sam-run --status`: what this node's corosync knows about
// SAM-supervised processes (cmap resources.process.*), for people or as JSON.
#pragma once

namespace samrun {

// Prints the table (or JSON) to stdout; returns the exit status: 0, or 1 when
// corosync cannot be reached.
[[nodiscard]] int print_status(bool json);

} // namespace samrun
