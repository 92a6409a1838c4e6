// SPDX-License-Identifier: BSD-3-Clause
// fdstore.hpp - the file descriptor store of the notify protocol. A program
// run with --notify may hand descriptors to sam-run (FDSTORE=1, FDNAME=
// with SCM_RIGHTS); they are kept while the program is restarted and passed
// to every later instance after the --listen sockets, their names in
// LISTEN_FDNAMES. FDSTOREREMOVE=1 with FDNAME= drops them again.
//
// The relay that received them ends with its program, so the store lives
// in a small process of its own, forked before libsam starts: each relay
// hands it a link (one end of a socket pair), fetches what is stored before
// the program starts, and sends additions and removals as they come. The
// store keeps at most --fdstore-max descriptors (one copy of each open file)
// and never closes one itself: a close() may block on the file's release
// (descriptor_sink.hpp). It ends with sam-run's supervisor.
#pragma once

#include <string>
#include <vector>

#include "base.hpp"

namespace samrun {

// Name of a stored descriptor sent without FDNAME= (as systemd names it).
constexpr const char *kDefaultStoredName = "stored";

struct StoredFd {
    UniqueFd fd;
    std::string name;
};

// Forks the store (call while this process has one thread) and returns the
// channel relays hand their links to. Throws std::system_error.
[[nodiscard]] UniqueFd start_fd_store(unsigned long max_fds);

// A relay's end of its link to the store.
class FdStoreLink {
  public:
    // Hands a new link to the store over `channel`; false on failure.
    [[nodiscard]] bool connect(int channel);
    [[nodiscard]] bool connected() const { return link_.valid(); }
    // What is stored, oldest first; false if the store did not answer in
    // time (then nothing is passed on).
    [[nodiscard]] bool fetch(std::vector<StoredFd> &out);
    // Sends `fds` to be stored under `name`; the caller keeps its copies
    // (to dispose of). The store logs what it refuses.
    [[nodiscard]] bool add(const std::string &name, const std::vector<int> &fds);
    // Drops every descriptor stored under `name`.
    [[nodiscard]] bool remove(const std::string &name);

  private:
    UniqueFd link_;
};

} // namespace samrun
