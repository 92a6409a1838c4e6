// SPDX-License-Identifier: BSD-3-Clause
// quorum_watch.cpp - quorum tracking with reconnect.
#include "quorum_watch.hpp"

#include <fcntl.h>

namespace sam {

std::shared_ptr<QuorumWatch> QuorumWatch::create(cs_error_t &error) {
    std::shared_ptr<QuorumWatch> q(new QuorumWatch());
    error = q->connect();
    if (error != CS_OK)
        return nullptr;
    return q;
}

std::shared_ptr<QuorumWatch> QuorumWatch::offline() { return std::shared_ptr<QuorumWatch>(new QuorumWatch()); }

QuorumWatch::~QuorumWatch() { disconnect(); }

void QuorumWatch::disconnect() noexcept {
    if (handle_ != 0)
        (void)quorum_finalize(handle_);
    handle_ = 0;
    fd_ = -1;
    quorate_ = false; // without corosync, safety first: not quorate
}

void QuorumWatch::on_notify(quorum_handle_t handle, uint32_t quorate, uint64_t, uint32_t, uint32_t *) {
    void *context = nullptr;
    if (quorum_context_get(handle, const_cast<const void **>(&context)) == CS_OK && context != nullptr)
        static_cast<QuorumWatch *>(context)->quorate_ = quorate != 0;
}

cs_error_t QuorumWatch::connect() {
    quorum_callbacks_t callbacks{};
    callbacks.quorum_notify_fn = &QuorumWatch::on_notify;
    uint32_t type = 0;
    quorum_handle_t h = 0;
    cs_error_t err = quorum_initialize(&h, &callbacks, &type);
    if (err != CS_OK)
        return err;
    int fd = -1;
    int quorate = 0;
    if ((err = quorum_context_set(h, this)) != CS_OK || (err = quorum_trackstart(h, CS_TRACK_CHANGES)) != CS_OK ||
        (err = quorum_fd_get(h, &fd)) != CS_OK || (err = quorum_getquorate(h, &quorate)) != CS_OK) {
        (void)quorum_finalize(h);
        return err;
    }
    (void)::fcntl(fd, F_SETFD, FD_CLOEXEC); // never inherited by executed programs
    handle_ = h;
    fd_ = fd;
    quorate_ = quorate != 0;
    return CS_OK;
}

cs_error_t QuorumWatch::dispatch() {
    if (handle_ == 0)
        return CS_ERR_BAD_HANDLE;
    const cs_error_t err = quorum_dispatch(handle_, CS_DISPATCH_ALL);
    return err == CS_ERR_TRY_AGAIN ? CS_OK : err;
}

cs_error_t QuorumWatch::check() {
    cs_error_t err = dispatch();
    if (err != CS_OK)
        return err;
    int quorate = 0;
    err = quorum_getquorate(handle_, &quorate);
    if (err == CS_OK)
        quorate_ = quorate != 0;
    return err;
}

cs_error_t QuorumWatch::reconnect() {
    disconnect();
    return connect();
}

} // namespace sam
