// SPDX-License-Identifier: BSD-3-Clause
// cmapview.hpp - the test's own view of corosync: another cmap client that
// reads libsam's keys, and the fixture's corosync-ctl.sh.
//
// Reads reconnect by themselves, so a view survives a corosync restart.
#pragma once

#include <cstdint>
#include <string>

#include <sys/types.h>

#include <corosync/cmap.h>

namespace it {

class CmapView {
  public:
    CmapView() = default;
    CmapView(const CmapView &) = delete;
    CmapView &operator=(const CmapView &) = delete;
    ~CmapView() { close(); }

    void close() noexcept;
    cs_error_t get_string(const std::string &key, std::string &out);
    cs_error_t get_u64(const std::string &key, uint64_t &out);
    cs_error_t remove(const std::string &key);
    cs_error_t set_u32(const std::string &key, uint32_t value);

    // Polls until the string key equals want; false at the deadline.
    // `last` gets the last value read ("<error N>" when unreadable).
    bool wait_string(const std::string &key, const std::string &want, int timeout_ms, std::string *last = nullptr);
    // Polls until the key no longer exists.
    bool wait_missing(const std::string &key, int timeout_ms);
    // Polls until the u64 key is readable and above `than`.
    bool wait_u64_above(const std::string &key, uint64_t than, int timeout_ms, uint64_t *got = nullptr);

  private:
    bool connect();
    cmap_handle_t handle_ = 0;
};

// Runs "$COROSYNC_CTL args" and returns its exit status (-1 on error);
// its standard output goes to `out` when given.
int ctl(const std::string &args, std::string *out = nullptr);
pid_t corosync_pid();
bool inside_fixture();

} // namespace it
