// SPDX-License-Identifier: BSD-3-Clause
/*
 * run_record.cpp - see run_record.hpp.
 */
#include <corosync/sam.h>
#include <string.h>

#include "log.hpp"
#include "options.hpp"
#include "run_record.hpp"

namespace samrun {

namespace {
constexpr char kMagic[8] = {'s', 'a', 'm', 'r', 'u', 'n', '1', '\0'};
} // namespace

void RunRecord::begin_instance() {
    size_t size = 0;
    if (sam_data_getsize(&size) == CS_OK && size == sizeof data_ && sam_data_restore(&data_, sizeof data_) == CS_OK &&
        memcmp(data_.magic, kMagic, sizeof kMagic) == 0) {
        switch (data_.last_kind) {
        case kRunning:
            previous_end_ = "killed by the supervisor";
            ++data_.failures;
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
    } else {
        data_ = Data{};
        memcpy(data_.magic, kMagic, sizeof kMagic);
    }
    data_.last_kind = kRunning;
    data_.last_value = 0;
    save();
}

void RunRecord::record_end(const siginfo_t &info, bool failed) {
    data_.last_kind = info.si_code == CLD_EXITED ? kExited : kSignaled;
    data_.last_value = info.si_status;
    if (failed) {
        ++data_.failures;
    }
    save();
}

void RunRecord::record_exit_status(int status) {
    data_.last_kind = kExited;
    data_.last_value = status;
    save();
}

void RunRecord::save() {
    cs_error_t err = sam_data_store(&data_, sizeof data_);
    if (err != CS_OK) {
        log_line("cannot store the run record (sam_data_store error %d)", static_cast<int>(err));
    }
}

} // namespace samrun
