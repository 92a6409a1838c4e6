// SPDX-License-Identifier: BSD-3-Clause
// notify_datagram.hpp - the text of one notify datagram, taken apart: the
// systemd notify protocol sends newline-separated KEY=VALUE lines.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace samrun {

using NotifyFields = std::vector<std::pair<std::string, std::string>>;

// Splits a datagram into KEY=VALUE fields, in order; lines without '=', with
// an empty key or with a NUL byte are dropped, so garbage never reaches the
// caller as a field.
[[nodiscard]] NotifyFields parse_notify_datagram(const char *data, size_t size);

} // namespace samrun
