// SPDX-License-Identifier: BSD-3-Clause
// base.hpp - the base sam-run shares with the library (src/common), under
// the names sam-run's code uses: one UniqueFd, one clock, one signal list
// and one set of signal names, one strict number parser, one way to die
// like the program died.
#pragma once

#include "common/clock.hpp"
#include "common/fd_passing.hpp"
#include "common/parse.hpp"
#include "common/signals.hpp"
#include "common/unique_fd.hpp"

namespace samrun {

using sam::clock_ms;
using sam::clock_ns;
using sam::die_by_signal;
using sam::kForwardedSignals;
using sam::monotonic_ms;
using sam::parse_decimal;
using sam::parse_signal;
using sam::send_with_fd;
using sam::send_with_fds;
using sam::signal_name;
using sam::UniqueFd;

} // namespace samrun
