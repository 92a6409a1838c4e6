// SPDX-License-Identifier: BSD-3-Clause
// listen.cpp - see listen.hpp.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>

#include "listen.hpp"

namespace samrun {

namespace {

constexpr const char *kExpected = "tcp:HOST:PORT (numeric IPv4 or [IPv6] host, port 1 to 65535), unix:PATH or "
                                  "@NAME, optionally followed by ,name=NAME";

bool parse_port(const std::string &text, in_port_t &port) {
    const std::optional<uint64_t> value = parse_decimal(text.c_str(), 65535);
    if (!value || *value == 0) {
        return false; // 0 would be a port nobody can know
    }
    port = htons(static_cast<in_port_t>(*value));
    return true;
}

bool parse_tcp(const std::string &rest, ListenAddress &out) {
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos) {
        return false;
    }
    std::string host = rest.substr(0, colon);
    in_port_t port = 0;
    if (!parse_port(rest.substr(colon + 1), port)) {
        return false;
    }
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = port;
        if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a.sin6_addr) != 1) {
            return false;
        }
        memcpy(&out.addr, &a, sizeof a);
        out.addr_len = sizeof a;
        return true;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = port;
    if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
        return false;
    }
    memcpy(&out.addr, &a, sizeof a);
    out.addr_len = sizeof a;
    return true;
}

// "PATH" or "@NAME" into a sockaddr_un; false if empty or too long.
bool parse_unix(const std::string &name, ListenAddress &out) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (name.empty() || name == "@" || name.size() >= sizeof a.sun_path || name.find('\0') != std::string::npos) {
        return false;
    }
    memcpy(a.sun_path, name.data(), name.size());
    if (name[0] == '@') {
        a.sun_path[0] = '\0'; // abstract: the length says where it ends
        out.kind = ListenAddress::Kind::Abstract;
        out.addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    } else {
        out.kind = ListenAddress::Kind::Unix;
        out.path = name;
        out.addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
    }
    memcpy(&out.addr, &a, sizeof a);
    return true;
}

std::string describe_errno(const std::string &spec, const char *what, int err) {
    return "--listen " + spec + ": " + what + ": " + strerror(err);
}

// A unix path may hold a socket left by an earlier run. It is stale when
// nobody accepts on it: only then is it removed.
bool clear_unix_path(const std::string &spec, const std::string &path, std::string &error) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            return true;
        }
        error = describe_errno(spec, "stat", errno);
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        error = "--listen " + spec + ": " + path + " exists and is not a socket";
        return false;
    }
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!probe.valid()) {
        error = describe_errno(spec, "socket", errno);
        return false;
    }
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, path.data(), path.size());
    if (connect(probe.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 || errno == EAGAIN ||
        errno == EINPROGRESS) {
        error = "--listen " + spec + ": another process listens on " + path;
        return false;
    }
    if (errno != ECONNREFUSED) {
        error = describe_errno(spec, "connect to the existing socket", errno);
        return false;
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        error = describe_errno(spec, "remove the stale socket", errno);
        return false;
    }
    return true;
}

} // namespace

bool valid_fd_name(const std::string &name) {
    if (name.empty() || name.size() > 255) {
        return false;
    }
    for (unsigned char c : name) {
        if (c < 0x20 || c > 0x7e || c == ':') {
            return false;
        }
    }
    return true;
}

bool parse_listen_address(const std::string &value, ListenAddress &out, std::string &error) {
    out = ListenAddress{};
    std::string spec = value;
    out.name = kDefaultListenName;
    // The last ",name=" wins: a unix path may hold commas of its own.
    if (size_t at = value.rfind(",name="); at != std::string::npos) {
        spec = value.substr(0, at);
        out.name = value.substr(at + 6);
        if (!valid_fd_name(out.name)) {
            error = "a name of 1 to 255 printable characters without ':'";
            return false;
        }
    }
    out.spec = spec;
    bool ok = false;
    if (spec.compare(0, 4, "tcp:") == 0) {
        out.kind = ListenAddress::Kind::Tcp;
        ok = parse_tcp(spec.substr(4), out);
    } else if (spec.compare(0, 5, "unix:") == 0) {
        ok = parse_unix(spec.substr(5), out);
    } else if (!spec.empty() && spec[0] == '@') {
        ok = parse_unix(spec, out);
    }
    if (!ok) {
        error = kExpected;
    }
    return ok;
}

void remove_socket_file(const SocketFile &file) {
    struct stat st;
    if (lstat(file.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == file.dev && st.st_ino == file.ino) {
        (void)unlink(file.path.c_str());
    }
}

ListenSockets::~ListenSockets() {
    if (!handed_over_) {
        for (const SocketFile &file : files_) {
            remove_socket_file(file);
        }
    }
}

bool ListenSockets::open(const std::vector<ListenAddress> &addresses, std::string &error) {
    for (const ListenAddress &address : addresses) {
        const std::string &spec = address.spec;
        int family = address.kind == ListenAddress::Kind::Tcp ? address.addr.ss_family : AF_UNIX;
        UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd.valid()) {
            error = describe_errno(spec, "socket", errno);
            return false;
        }
        if (address.kind == ListenAddress::Kind::Tcp) {
            // sam-run itself restarted: connections of the last run in
            // TIME_WAIT must not keep the port.
            int one = 1;
            if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
                error = describe_errno(spec, "setsockopt SO_REUSEADDR", errno);
                return false;
            }
        }
        if (address.kind == ListenAddress::Kind::Unix && !clear_unix_path(spec, address.path, error)) {
            return false;
        }
        if (bind(fd.get(), reinterpret_cast<const sockaddr *>(&address.addr), address.addr_len) != 0) {
            error = describe_errno(spec, "bind", errno);
            return false;
        }
        if (address.kind == ListenAddress::Kind::Unix) {
            struct stat st;
            if (lstat(address.path.c_str(), &st) == 0) {
                files_.push_back({address.path, st.st_dev, st.st_ino});
            }
        }
        // The kernel's largest backlog: it holds the connections that come
        // while no program runs, between a crash and the next start.
        if (listen(fd.get(), SOMAXCONN) != 0) {
            error = describe_errno(spec, "listen", errno);
            return false;
        }
        fds_.push_back(std::move(fd));
        names_.push_back(address.name);
    }
    return true;
}

} // namespace samrun
