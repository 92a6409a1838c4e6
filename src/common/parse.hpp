// SPDX-License-Identifier: BSD-3-Clause
// parse.hpp - the one strict number parser for everything a user types
// (command-line options, SAM_RESTART_* tunables).
#pragma once

#include <cstdint>
#include <optional>

namespace sam {

// Decimal digits only: no sign, no space, no trailing text, no empty text,
// nothing above `max`. strtoul() alone would take " -5" as a huge number.
[[nodiscard]] std::optional<uint64_t> parse_decimal(const char *text, uint64_t max) noexcept;

} // namespace sam
