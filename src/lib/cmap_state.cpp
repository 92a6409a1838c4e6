// SPDX-License-Identifier: BSD-3-Clause
// cmap_state.cpp - writing, republishing and deleting the process keys.
#include "cmap_state.hpp"

#include <fcntl.h>

namespace sam {

namespace {
// The cmap descriptor must not leak into programs an instance executes.
void set_cloexec(cmap_handle_t h) noexcept {
    int fd = -1;
    if (cmap_fd_get(h, &fd) == CS_OK && fd >= 0)
        (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
}
} // namespace

std::unique_ptr<CmapState> CmapState::offline(long supervisor_pid, const char *recovery, uint64_t poll_period_ms) {
    std::unique_ptr<CmapState> s(new CmapState());
    s->prefix_ = "resources.process." + std::to_string(supervisor_pid) + ".";
    s->keys_ =
        Keys{s->prefix_ + "recovery", s->prefix_ + "poll_period", s->prefix_ + "last_updated", s->prefix_ + "state"};
    s->recovery_ = recovery;
    s->poll_period_ms_ = poll_period_ms;
    return s;
}

std::unique_ptr<CmapState> CmapState::create(long supervisor_pid, const char *recovery, uint64_t poll_period_ms,
                                             cs_error_t &error) {
    std::unique_ptr<CmapState> s = offline(supervisor_pid, recovery, poll_period_ms);
    error = s->connect();
    if (error == CS_OK)
        error = s->write_all();
    if (error != CS_OK) {
        if (s->connected())
            (void)s->delete_keys();
        return nullptr;
    }
    return s;
}

CmapState::~CmapState() { disconnect(); }

void CmapState::disconnect() noexcept {
    if (handle_ != 0)
        (void)cmap_finalize(handle_);
    handle_ = 0;
}

cs_error_t CmapState::connect() {
    cmap_handle_t h = 0;
    const cs_error_t err = cmap_initialize(&h);
    if (err != CS_OK)
        return err;
    set_cloexec(h);
    handle_ = h;
    return CS_OK;
}

cs_error_t CmapState::write_all() {
    cs_error_t err = cmap_set_string(handle_, keys_.recovery.c_str(), recovery_.c_str());
    if (err == CS_OK)
        err = cmap_set_uint64(handle_, keys_.poll_period.c_str(), poll_period_ms_);
    if (err == CS_OK && last_updated_ != 0)
        err = cmap_set_uint64(handle_, keys_.last_updated.c_str(), last_updated_);
    if (err == CS_OK && !state_.empty())
        err = cmap_set_string(handle_, keys_.state.c_str(), state_.c_str());
    return err;
}

cs_error_t CmapState::set_state(const char *state) {
    state_ = state; // remembered even on failure: a reconnect writes it
    if (handle_ == 0)
        return CS_ERR_LIBRARY;
    return cmap_set_string(handle_, keys_.state.c_str(), state);
}

cs_error_t CmapState::set_last_updated(uint64_t stamp_ns) {
    last_updated_ = stamp_ns;
    if (handle_ == 0)
        return CS_ERR_LIBRARY;
    return cmap_set_uint64(handle_, keys_.last_updated.c_str(), stamp_ns);
}

cs_error_t CmapState::delete_keys() {
    if (handle_ == 0)
        return CS_ERR_LIBRARY;
    cs_error_t result = CS_OK;
    for (const std::string *key : {&keys_.state, &keys_.last_updated, &keys_.poll_period, &keys_.recovery}) {
        const cs_error_t err = cmap_delete(handle_, key->c_str());
        if (err != CS_OK && err != CS_ERR_NOT_EXIST && result == CS_OK)
            result = err;
    }
    return result;
}

int CmapState::fd() const noexcept {
    int fd = -1;
    if (handle_ == 0 || cmap_fd_get(handle_, &fd) != CS_OK)
        return -1;
    return fd;
}

cs_error_t CmapState::dispatch() {
    if (handle_ == 0)
        return CS_ERR_BAD_HANDLE;
    const cs_error_t err = cmap_dispatch(handle_, CS_DISPATCH_ALL);
    return err == CS_ERR_TRY_AGAIN ? CS_OK : err;
}

cs_error_t CmapState::reconnect() {
    disconnect();
    cs_error_t err = connect();
    if (err != CS_OK)
        return err;
    err = write_all();
    if (err != CS_OK)
        disconnect();
    return err;
}

} // namespace sam
