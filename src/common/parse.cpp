// SPDX-License-Identifier: BSD-3-Clause
// parse.cpp - see parse.hpp.
#include "parse.hpp"

#include <cerrno>
#include <cstdlib>

namespace sam {

std::optional<uint64_t> parse_decimal(const char *text, uint64_t max) noexcept {
    if (text == nullptr || *text < '0' || *text > '9') {
        return std::nullopt;
    }
    errno = 0;
    char *end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > max) {
        return std::nullopt;
    }
    return static_cast<uint64_t>(value);
}

} // namespace sam
