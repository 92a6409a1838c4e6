// SPDX-License-Identifier: BSD-3-Clause
// run_record_store.cpp - the run record kept in libsam's data store. Apart
// from run_record.cpp so that the record's logic links without libsam.
#include <corosync/sam.h>

#include "log.hpp"
#include "run_record.hpp"

namespace samrun {

RecordStore libsam_record_store() {
    RecordStore store;
    store.load = [](void *data, size_t size) {
        size_t stored = 0;
        return sam_data_getsize(&stored) == CS_OK && stored == size && sam_data_restore(data, size) == CS_OK;
    };
    store.save = [](const void *data, size_t size) {
        const cs_error_t err = sam_data_store(data, size);
        if (err != CS_OK) {
            log_line("cannot store the run record (sam_data_store error %d)", static_cast<int>(err));
        }
    };
    return store;
}

} // namespace samrun
