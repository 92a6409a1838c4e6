// SPDX-License-Identifier: BSD-3-Clause
// history.cpp - see history.hpp.
#include <corosync/cmap.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "history.hpp"
#include "log.hpp"

namespace samrun {

struct HistoryPublisher::Connection {
    cmap_handle_t handle = 0;
};

HistoryPublisher::HistoryPublisher(pid_t supervisor)
    : prefix_(std::string(kHistoryPrefix) + std::to_string(supervisor) + ".") {
    auto connection = std::make_unique<Connection>();
    if (cmap_initialize(&connection->handle) == CS_OK) {
        cmap_ = std::move(connection);
    }
}

HistoryPublisher::~HistoryPublisher() {
    if (cmap_) {
        cmap_finalize(cmap_->handle);
    }
}

void HistoryPublisher::publish(const History &h) {
    if (!cmap_) {
        return;
    }
    cmap_handle_t c = cmap_->handle;
    cs_error_t err = cmap_set_uint32(c, (prefix_ + "instance").c_str(), h.instance);
    if (err == CS_OK) {
        err = cmap_set_uint32(c, (prefix_ + "restarts").c_str(), h.restarts);
    }
    if (err == CS_OK) {
        err = cmap_set_string(c, (prefix_ + "containment").c_str(), h.containment.c_str());
    }
    if (err == CS_OK) {
        err = cmap_set_uint64(c, (prefix_ + "instance_started").c_str(), h.instance_started_ns);
    }
    if (err == CS_OK && h.last_failure) {
        err = cmap_set_string(c, (prefix_ + "last_failure").c_str(), h.last_failure->c_str());
        if (err == CS_OK) {
            err = cmap_set_uint64(c, (prefix_ + "last_failure_time").c_str(), h.last_failure_ns);
        }
    }
    if (err == CS_OK && h.state) {
        err = cmap_set_string(c, (prefix_ + "state").c_str(), h.state->c_str());
    }
    if (err != CS_OK) {
        log_line("cannot publish the history in cmap (error %d)", static_cast<int>(err));
    }
}

void remove_history(pid_t supervisor) {
    cmap_handle_t c;
    if (cmap_initialize(&c) != CS_OK) {
        return;
    }
    std::string pid = std::to_string(supervisor);
    std::string prefix = std::string(kHistoryPrefix) + pid + ".";
    char *state = nullptr;
    bool kept = cmap_get_string(c, ("resources.process." + pid + ".state").c_str(), &state) == CS_OK;
    free(state);
    state = nullptr;
    if (cmap_get_string(c, (prefix + "state").c_str(), &state) == CS_OK && state != nullptr &&
        strcmp(state, "failed") == 0) {
        kept = true;
    }
    free(state);
    if (!kept) {
        std::vector<std::string> keys;
        cmap_iter_handle_t iter;
        if (cmap_iter_init(c, prefix.c_str(), &iter) == CS_OK) {
            char key[CMAP_KEYNAME_MAXLEN + 1];
            size_t len;
            cmap_value_types_t type;
            while (cmap_iter_next(c, iter, key, &len, &type) == CS_OK) {
                keys.emplace_back(key);
            }
            cmap_iter_finalize(c, iter);
        }
        for (const std::string &key : keys) {
            (void)cmap_delete(c, key.c_str());
        }
    }
    cmap_finalize(c);
}

} // namespace samrun
