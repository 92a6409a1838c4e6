// SPDX-License-Identifier: BSD-3-Clause
// private_dir.hpp - the default home of the --notify socket: a fresh
// directory that only sam-run's user can enter (mkdtemp() makes it 0700), so
// no other user can send to the socket at all. An abstract socket name, by
// contrast, is reachable by every process of the network namespace. The
// socket's path goes in NOTIFY_SOCKET, the form every sd_notify()
// implementation has always accepted.
//
// The directory must go when sam-run does, however it ends: the supervisor
// often dies of the program's signal, and runs no clean-up then. So a
// janitor, a child started before anything else, waits for the end of file
// on a pipe whose write end only sam-run's own processes hold (close-on-exec:
// not the program), then removes the socket and the directory.
#pragma once

#include <string>

#include "base.hpp"

namespace samrun {

class PrivateSocketDir {
  public:
    // Creates the directory under $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR, /run
    // (for root) or $TMPDIR or /tmp, the first that is usable; throws
    // std::system_error.
    static PrivateSocketDir create();

    PrivateSocketDir(PrivateSocketDir &&) = default;
    PrivateSocketDir &operator=(PrivateSocketDir &&) = default;
    ~PrivateSocketDir();

    [[nodiscard]] const std::string &socket_path() const { return socket_; }

    // Hands the removal over to a janitor process. Before it is started, or
    // if it cannot be, the destructor removes what it can (a clean exit of
    // this process, or a start-up failure).
    void start_janitor();

  private:
    PrivateSocketDir(std::string dir, std::string socket) : dir_(std::move(dir)), socket_(std::move(socket)) {}

    std::string dir_;
    std::string socket_;
    UniqueFd alive_; // write end held while sam-run lives
    bool handed_over_ = false;
};

} // namespace samrun
