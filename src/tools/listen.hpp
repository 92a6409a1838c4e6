// SPDX-License-Identifier: BSD-3-Clause
// listen.hpp - --listen: listening sockets that sam-run opens once, before
// the first instance, and hands to every instance of the program by the
// socket-activation protocol (descriptors from 3 on, LISTEN_FDS, LISTEN_PID,
// LISTEN_FDNAMES). sam-run's own process keeps them open across restarts, so
// while no program runs the kernel still accepts connections into the
// backlog, and clients never see "connection refused".
//
// Addresses: tcp:HOST:PORT (a numeric IPv4 address, or [IPv6]), unix:PATH,
// @NAME (an abstract socket), each optionally followed by ",name=NAME", the
// name the program finds in LISTEN_FDNAMES.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "base.hpp"

namespace samrun {

// Name given to a --listen socket without ",name=".
constexpr const char *kDefaultListenName = "listen";

struct ListenAddress {
    enum class Kind { Tcp, Unix, Abstract };
    Kind kind = Kind::Tcp;
    std::string spec; // as given, without ",name="
    std::string name; // for LISTEN_FDNAMES
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    std::string path; // Kind::Unix only
};

// Parses one --listen value; false and `error` (what was expected) if it is
// not a valid address. Nothing is opened here.
[[nodiscard]] bool parse_listen_address(const std::string &value, ListenAddress &out, std::string &error);

// A name that may go into LISTEN_FDNAMES: 1 to 255 printable ASCII
// characters, no ':' (the separator).
[[nodiscard]] bool valid_fd_name(const std::string &name);

// A unix socket file sam-run created, to be removed when sam-run ends, and
// only if it is still that file (an operator may have replaced it).
struct SocketFile {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
};

// Removes `file` if the path still names the socket sam-run bound.
void remove_socket_file(const SocketFile &file);

class ListenSockets {
  public:
    ListenSockets() = default;
    ListenSockets(const ListenSockets &) = delete;
    ListenSockets &operator=(const ListenSockets &) = delete;
    ListenSockets(ListenSockets &&) = default;
    ListenSockets &operator=(ListenSockets &&) = default;
    // Removes the unix socket files, unless handed over.
    ~ListenSockets();

    // Binds and listens on every address, in order (close-on-exec: only the
    // program's spawn passes them on). false and `error` naming the
    // address on the first failure; what was opened is closed again. A
    // stale socket file (nobody accepts on it) is replaced; any other file
    // at a unix path is an error and left alone.
    [[nodiscard]] bool open(const std::vector<ListenAddress> &addresses, std::string &error);

    [[nodiscard]] const std::vector<UniqueFd> &fds() const { return fds_; }
    [[nodiscard]] const std::vector<std::string> &names() const { return names_; }
    [[nodiscard]] const std::vector<SocketFile> &files() const { return files_; }
    // From now on the keeper removes the files when sam-run ends: the
    // supervisor often ends by a signal, without running destructors.
    void hand_over_files() { handed_over_ = true; }

  private:
    std::vector<UniqueFd> fds_;
    std::vector<std::string> names_;
    std::vector<SocketFile> files_;
    bool handed_over_ = false;
};

} // namespace samrun
