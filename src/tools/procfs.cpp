// SPDX-License-Identifier: BSD-3-Clause
// procfs.cpp - see procfs.hpp.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>

#include "base.hpp"
#include "procfs.hpp"

namespace samrun {

std::optional<std::string> read_small_file(const std::string &path, size_t limit) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) {
        return std::nullopt;
    }
    std::string content;
    char buf[4096];
    while (content.size() < limit) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return std::nullopt; // ESRCH: the process ended under us
        }
        if (n == 0) {
            break;
        }
        content.append(buf, std::min(static_cast<size_t>(n), limit - content.size()));
    }
    return content;
}

std::optional<pid_t> parent_from_stat(const std::string &stat) {
    size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) {
        return std::nullopt;
    }
    char state = 0;
    int ppid = -1;
    if (sscanf(stat.c_str() + close_paren + 1, " %c %d", &state, &ppid) != 2 || ppid < 0) {
        return std::nullopt;
    }
    return static_cast<pid_t>(ppid);
}

std::optional<unsigned long long> start_ticks_from_stat(const std::string &stat) {
    size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) {
        return std::nullopt;
    }
    // After "comm)": state is field 3, so starttime is the 20th word.
    const char *p = stat.c_str() + close_paren + 1;
    for (int word = 1; word < 20; ++word) {
        while (*p == ' ') {
            ++p;
        }
        while (*p != ' ' && *p != '\0') {
            ++p;
        }
        if (*p == '\0') {
            return std::nullopt;
        }
    }
    unsigned long long ticks = 0;
    int consumed = 0;
    if (sscanf(p, " %llu%n", &ticks, &consumed) != 1) {
        return std::nullopt;
    }
    return ticks;
}

} // namespace samrun
