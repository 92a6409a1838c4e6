// SPDX-License-Identifier: BSD-3-Clause
// notify_datagram.cpp - see notify_datagram.hpp.
#include "notify_datagram.hpp"

#include <cstring>

namespace samrun {

NotifyFields parse_notify_datagram(const char *data, size_t size) {
    NotifyFields fields;
    size_t start = 0;
    while (start < size) {
        const void *nl = std::memchr(data + start, '\n', size - start);
        size_t end = nl != nullptr ? static_cast<size_t>(static_cast<const char *>(nl) - data) : size;
        std::string line(data + start, end - start);
        start = end + 1;
        size_t eq = line.find('=');
        if (eq == std::string::npos || eq == 0 || line.find('\0') != std::string::npos) {
            continue;
        }
        fields.emplace_back(line.substr(0, eq), line.substr(eq + 1));
    }
    return fields;
}

} // namespace samrun
