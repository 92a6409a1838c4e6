// SPDX-License-Identifier: BSD-3-Clause
// signals.cpp - see signals.hpp.
#include "signals.hpp"

#include <cstring>

#include <pthread.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "parse.hpp"

namespace sam {

std::string signal_name(int sig) {
    if (sig > 0 && sig < SIGRTMIN) {
        const char *abbrev = ::sigabbrev_np(sig);
        if (abbrev != nullptr) {
            return abbrev;
        }
    }
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        return sig == SIGRTMIN ? "RTMIN" : "RTMIN+" + std::to_string(sig - SIGRTMIN);
    }
    return std::to_string(sig);
}

int parse_signal(const std::string &text) {
    if (text.empty()) {
        return -1;
    }
    if (std::optional<uint64_t> number = parse_decimal(text.c_str(), static_cast<uint64_t>(SIGRTMAX))) {
        return *number == 0 ? -1 : static_cast<int>(*number);
    }
    std::string name = text;
    if (::strncasecmp(name.c_str(), "SIG", 3) == 0) {
        name.erase(0, 3);
    }
    for (int sig = 1; sig < SIGRTMIN; ++sig) {
        const char *abbrev = ::sigabbrev_np(sig);
        if (abbrev != nullptr && ::strcasecmp(abbrev, name.c_str()) == 0) {
            return sig;
        }
    }
    // Real-time signals: RTMIN, RTMIN+n, RTMAX, RTMAX-n.
    const bool from_min = ::strncasecmp(name.c_str(), "RTMIN", 5) == 0;
    const bool from_max = ::strncasecmp(name.c_str(), "RTMAX", 5) == 0;
    if (!from_min && !from_max) {
        return -1;
    }
    uint64_t offset = 0;
    if (name.size() > 5) {
        const char sign = name[5];
        std::optional<uint64_t> n = parse_decimal(name.c_str() + 6, static_cast<uint64_t>(SIGRTMAX - SIGRTMIN));
        if (sign != (from_min ? '+' : '-') || !n) {
            return -1;
        }
        offset = *n;
    }
    return from_min ? SIGRTMIN + static_cast<int>(offset) : SIGRTMAX - static_cast<int>(offset);
}

void die_by_signal(int sig) noexcept {
    rlimit no_core{0, 0};
    (void)::setrlimit(RLIMIT_CORE, &no_core);
    (void)::signal(sig, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, sig);
    // Unblocked in this thread alone, raised at this thread: delivered here,
    // now, whatever the other threads block.
    (void)::pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
    (void)::raise(sig);
    ::_exit(128 + sig);
}

} // namespace sam
