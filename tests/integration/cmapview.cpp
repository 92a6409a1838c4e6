// SPDX-License-Identifier: BSD-3-Clause
// cmapview.cpp - see cmapview.hpp.
#include "cmapview.hpp"

#include <cstdio>
#include <cstdlib>

#include <poll.h>
#include <sys/wait.h>

#include "harness.hpp"

namespace it {

namespace {
void pause_ms(int n) {
    pollfd none{-1, 0, 0};
    (void)::poll(&none, 0, n);
}
// After these the handle is useless (corosync went away): drop it.
bool connection_lost(cs_error_t e) { return e == CS_ERR_LIBRARY || e == CS_ERR_BAD_HANDLE || e == CS_ERR_TRY_AGAIN; }
} // namespace

void CmapView::close() noexcept {
    if (handle_ != 0)
        (void)cmap_finalize(handle_);
    handle_ = 0;
}

bool CmapView::connect() {
    if (handle_ != 0)
        return true;
    cmap_handle_t h = 0;
    if (cmap_initialize(&h) != CS_OK)
        return false;
    handle_ = h;
    return true;
}

cs_error_t CmapView::get_string(const std::string &key, std::string &out) {
    if (!connect())
        return CS_ERR_LIBRARY;
    char *value = nullptr;
    const cs_error_t e = cmap_get_string(handle_, key.c_str(), &value);
    if (e == CS_OK) {
        out = value;
        std::free(value);
    } else if (connection_lost(e)) {
        close();
    }
    return e;
}

cs_error_t CmapView::get_u64(const std::string &key, uint64_t &out) {
    if (!connect())
        return CS_ERR_LIBRARY;
    const cs_error_t e = cmap_get_uint64(handle_, key.c_str(), &out);
    if (connection_lost(e))
        close();
    return e;
}

cs_error_t CmapView::remove(const std::string &key) {
    if (!connect())
        return CS_ERR_LIBRARY;
    return cmap_delete(handle_, key.c_str());
}

cs_error_t CmapView::set_u32(const std::string &key, uint32_t value) {
    if (!connect())
        return CS_ERR_LIBRARY;
    const cs_error_t e = cmap_set_uint32(handle_, key.c_str(), value);
    if (connection_lost(e))
        close();
    return e;
}

bool CmapView::wait_string(const std::string &key, const std::string &want, int timeout_ms, std::string *last) {
    const uint64_t deadline = now_ns() + ms(static_cast<uint64_t>(timeout_ms));
    for (;;) {
        std::string v;
        const cs_error_t e = get_string(key, v);
        if (e != CS_OK)
            v = "<error " + std::to_string(static_cast<int>(e)) + ">";
        if (last != nullptr)
            *last = v;
        if (e == CS_OK && v == want)
            return true;
        if (now_ns() >= deadline)
            return false;
        pause_ms(10);
    }
}

bool CmapView::wait_missing(const std::string &key, int timeout_ms) {
    const uint64_t deadline = now_ns() + ms(static_cast<uint64_t>(timeout_ms));
    for (;;) {
        std::string v;
        if (get_string(key, v) == CS_ERR_NOT_EXIST)
            return true;
        if (now_ns() >= deadline)
            return false;
        pause_ms(10);
    }
}

bool CmapView::wait_u64_above(const std::string &key, uint64_t than, int timeout_ms, uint64_t *got) {
    const uint64_t deadline = now_ns() + ms(static_cast<uint64_t>(timeout_ms));
    for (;;) {
        uint64_t v = 0;
        if (get_u64(key, v) == CS_OK && v > than) {
            if (got != nullptr)
                *got = v;
            return true;
        }
        if (now_ns() >= deadline)
            return false;
        pause_ms(10);
    }
}

int ctl(const std::string &args, std::string *out) {
    const char *c = std::getenv("COROSYNC_CTL");
    if (c == nullptr)
        return -1;
    const std::string cmd = std::string("'") + c + "' " + args;
    FILE *p = ::popen(cmd.c_str(), "r");
    if (p == nullptr)
        return -1;
    std::string text;
    char buf[256];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
        text.append(buf, n);
    const int st = ::pclose(p);
    if (out != nullptr)
        *out = text;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

pid_t corosync_pid() {
    std::string out;
    if (ctl("pid", &out) != 0)
        return -1;
    return static_cast<pid_t>(std::atol(out.c_str()));
}

bool inside_fixture() { return std::getenv("COROSYNC_CTL") != nullptr; }

} // namespace it
