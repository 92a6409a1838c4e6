// SPDX-License-Identifier: BSD-3-Clause
// log_ring.cpp - fixed-size queue of log lines with drop accounting.
#include "log_ring.hpp"

#include <cstdio>

#include <syslog.h>

namespace sam {

bool LogRing::push(int priority, const char *format, ...) noexcept {
    va_list ap;
    va_start(ap, format);
    const bool ok = vpush(priority, format, ap);
    va_end(ap);
    return ok;
}

bool LogRing::vpush(int priority, const char *format, va_list ap) noexcept {
    note_drops();
    if (count_ == kSlots) {
        ++dropped_;
        ++dropped_total_;
        return false;
    }
    Line &line = append();
    line.priority = priority;
    std::vsnprintf(line.text, sizeof line.text, format, ap);
    return true;
}

void LogRing::pop() noexcept {
    if (count_ == 0)
        return;
    head_ = (head_ + 1) % kSlots;
    --count_;
    // Emptied: start again at the first slot, so that while the log reader
    // keeps up only the first few slots (one page) are ever written, and
    // the rest of the ring costs the supervisor no memory.
    if (count_ == 0)
        head_ = 0;
    note_drops();
}

LogRing::Line &LogRing::append() noexcept {
    Line &line = slots_[(head_ + count_) % kSlots];
    ++count_;
    return line;
}

void LogRing::note_drops() noexcept {
    if (dropped_ == 0 || count_ == kSlots)
        return;
    Line &line = append();
    line.priority = LOG_WARNING;
    std::snprintf(line.text, sizeof line.text, "%llu log lines dropped", static_cast<unsigned long long>(dropped_));
    dropped_ = 0;
}

} // namespace sam
