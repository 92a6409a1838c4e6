// SPDX-License-Identifier: BSD-3-Clause
// run_record.cpp - see run_record.hpp.
#include <string.h>
#include <time.h>

#include "base.hpp"
#include "run_record.hpp"

namespace samrun {

namespace {

constexpr char kMagic[8] = {'s', 'a', 'm', 'r', 'u', 'n', '2', '\0'};

} // namespace

std::string describe_cause(FailureCause cause, int32_t value) {
    switch (cause) {
    case FailureCause::None:
        return "none";
    case FailureCause::Exit:
        return "exit " + std::to_string(value);
    case FailureCause::Signal:
        return "signal " + signal_name(value);
    case FailureCause::MissedDeadline:
        return "missed deadline";
    case FailureCause::QuorumLoss:
        return "quorum loss";
    case FailureCause::CheckFailed:
        return "check failed";
    case FailureCause::Triggered:
        return "WATCHDOG=trigger";
    case FailureCause::NotReady:
        return "start timeout";
    }
    return "unknown";
}

void RunRecord::begin_instance() {
    if (store_.load(&data_, sizeof data_) && memcmp(data_.magic, kMagic, sizeof kMagic) == 0) {
        restarted_ = true;
        switch (data_.last_kind) {
        case kRunning:
            previous_end_ = "killed by the supervisor";
            ++data_.failures;
            note_failure(data_.warned_cause != 0 ? static_cast<FailureCause>(data_.warned_cause)
                                                 : FailureCause::MissedDeadline,
                         0);
            break;
        case kExited:
            previous_end_ = "exit " + std::to_string(data_.last_value);
            break;
        case kSignaled:
            previous_end_ = "signal " + signal_name(data_.last_value);
            break;
        default:
            break;
        }
        ++data_.restarts;
    } else {
        data_ = Data{};
        memcpy(data_.magic, kMagic, sizeof kMagic);
    }
    data_.last_kind = kRunning;
    data_.last_value = 0;
    data_.warned_cause = 0;
    save();
}

bool RunRecord::over_restart_limit(unsigned long max_restarts, uint64_t window_ms) {
    if (!restarted_) {
        return false;
    }
    // A fixed window from its first restart, like systemd's start limit:
    // when it has passed, counting starts again with this restart.
    uint64_t now = clock_ms(CLOCK_MONOTONIC);
    if (data_.window_restarts == 0 || (window_ms != 0 && now - data_.window_start_ms >= window_ms)) {
        data_.window_start_ms = now;
        data_.window_restarts = 0;
    }
    if (data_.window_restarts >= max_restarts) {
        // Refused: this instance is not a restart that happened.
        --data_.restarts;
        save();
        return true;
    }
    ++data_.window_restarts;
    save();
    return false;
}

void RunRecord::record_end(const siginfo_t &info, bool failed, FailureCause cause) {
    data_.last_kind = info.si_code == CLD_EXITED ? kExited : kSignaled;
    data_.last_value = info.si_status;
    if (failed) {
        ++data_.failures;
        if (cause != FailureCause::None) {
            note_failure(cause, 0);
        } else {
            note_failure(info.si_code == CLD_EXITED ? FailureCause::Exit : FailureCause::Signal, info.si_status);
        }
    }
    save();
}

void RunRecord::record_exit_status(int status) {
    data_.last_kind = kExited;
    data_.last_value = status;
    note_failure(FailureCause::Exit, status);
    save();
}

void RunRecord::record_warning(FailureCause cause) {
    data_.warned_cause = static_cast<int32_t>(cause);
    save();
}

std::optional<std::string> RunRecord::last_failure() const {
    if (data_.cause == static_cast<int32_t>(FailureCause::None)) {
        return std::nullopt;
    }
    return describe_cause(static_cast<FailureCause>(data_.cause), data_.cause_value);
}

void RunRecord::note_failure(FailureCause cause, int32_t value) {
    data_.cause = static_cast<int32_t>(cause);
    data_.cause_value = value;
    data_.failed_at_ms = clock_ms(CLOCK_REALTIME);
}

void RunRecord::save() { store_.save(&data_, sizeof data_); }

} // namespace samrun
