// SPDX-License-Identifier: BSD-3-Clause
// cmap_keys.hpp - the names of the cmap keys the tests read and write, in
// one place: what a supervisor with SAM_RECOVERY_POLICY_CMAP publishes under
// resources.process.<supervisor pid>., and the quorum key the corosync
// scenarios turn to take quorum away and give it back.
#pragma once

#include <string>

#include <sys/types.h>

namespace it {

// The leaves under resources.process.<supervisor pid>.
inline constexpr const char kLeafRecovery[] = "recovery";
inline constexpr const char kLeafPollPeriod[] = "poll_period";
inline constexpr const char kLeafLastUpdated[] = "last_updated";
inline constexpr const char kLeafState[] = "state";
// All of them: what a supervisor publishes, and what a test removes after it.
inline constexpr const char *const kProcessLeaves[] = {kLeafRecovery, kLeafPollPeriod, kLeafLastUpdated, kLeafState};

// votequorum's expected votes: 2 on a one-node cluster takes quorum away.
inline constexpr const char kExpectedVotesKey[] = "quorum.expected_votes";

// "resources.process.<pid>.<leaf>"
inline std::string process_key(pid_t supervisor, const char *leaf) {
    return "resources.process." + std::to_string(static_cast<long>(supervisor)) + "." + leaf;
}

} // namespace it
