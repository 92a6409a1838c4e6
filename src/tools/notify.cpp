// SPDX-License-Identifier: BSD-3-Clause
// notify.cpp - notify socket server and client (see notify.hpp).
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

#include "notify.hpp"

namespace samrun {

namespace {

// systemd reads datagrams into a buffer of this order; larger is misuse.
constexpr size_t kMaxDatagram = 4096;

// Fills `addr` from a path or "@abstract" name; returns the address length,
// or 0 if the name does not fit.
socklen_t make_address(const std::string &name, sockaddr_un &addr) {
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (name.empty() || name.size() >= sizeof addr.sun_path) {
        return 0;
    }
    memcpy(addr.sun_path, name.data(), name.size());
    if (name[0] == '@') {
        addr.sun_path[0] = '\0'; // abstract: no terminating NUL counted
        return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    }
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
}

[[noreturn]] void throw_errno(const std::string &what) {
    throw std::system_error(errno, std::generic_category(), what);
}

} // namespace

NotifyServer::NotifyServer(const std::string &address) : address_(address) {
    sockaddr_un addr;
    socklen_t len = make_address(address, addr);
    if (len == 0) {
        errno = ENAMETOOLONG;
        throw_errno("notify socket name '" + address + "'");
    }
    fd_.reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd_.valid()) {
        throw_errno("socket");
    }
    if (address[0] != '@') {
        // Replace a stale socket left by an earlier run, never another file.
        struct stat st;
        if (lstat(address.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(address.c_str());
        }
    }
    if (bind(fd_.get(), reinterpret_cast<sockaddr *>(&addr), len) != 0) {
        throw_errno("bind notify socket '" + address + "'");
    }
    // The kernel attaches the sender's real pid: we only believe messages
    // from the program we run and its descendants.
    int one = 1;
    if (setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
        throw_errno("setsockopt SO_PASSCRED");
    }
}

NotifyServer::Receive NotifyServer::receive(NotifyMessage &message, std::string &why, const SenderCheck &allowed) {
    char buffer[kMaxDatagram];
    // Room for every descriptor a datagram can carry: those that do not fit
    // would be dropped by the kernel in this process, a close() like any
    // other, that can block.
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
    iovec iov{buffer, sizeof buffer};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;

    ssize_t n = recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return Receive::Empty;
        }
        why = std::string("recvmsg: ") + strerror(errno);
        return Receive::Rejected;
    }
    bool have_creds = false;
    std::vector<int> passed;
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) {
            continue;
        }
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(ucred))) {
            ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            message.sender = cred.pid;
            message.sender_uid = cred.uid;
            have_creds = true;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; ++i) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                passed.push_back(fd);
            }
        }
    }
    // The sender's pid is 0 when it is already gone or lives in another
    // pid namespace: nobody we can vouch for.
    bool trusted = have_creds && message.sender > 0 && allowed(message.sender, message.sender_uid);
    bool accepted = trusted && (msg.msg_flags & MSG_TRUNC) == 0;
    if (!passed.empty() && !accepted) {
        sink_.dispose(passed, /* stranger= */ !trusted);
    }
    if (!have_creds || message.sender <= 0) {
        why = "no sender credentials";
        return Receive::Rejected;
    }
    if (!trusted) {
        why = "sender pid " + std::to_string(message.sender) + " is not the program (uid " +
              std::to_string(message.sender_uid) + ")";
        if (!passed.empty()) {
            why += "; " + std::to_string(passed.size()) + " passed descriptor(s) dropped";
        }
        return Receive::Rejected;
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0) {
        why = "datagram larger than " + std::to_string(kMaxDatagram) + " bytes";
        return Receive::Rejected;
    }
    message.fields = parse_notify_datagram(buffer, static_cast<size_t>(n));
    message.fds = std::move(passed);
    return Receive::Message;
}

UpstreamNotifier UpstreamNotifier::from_environment() {
    UpstreamNotifier notifier;
    const char *socket_name = getenv("NOTIFY_SOCKET");
    if (socket_name == nullptr || *socket_name == '\0') {
        return notifier;
    }
    sockaddr_un addr;
    if (make_address(socket_name, addr) == 0) {
        return notifier;
    }
    notifier.address_ = socket_name;
    notifier.fd_.reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const char *usec = getenv("WATCHDOG_USEC");
    if (usec != nullptr) {
        notifier.watchdog_usec_ = strtoull(usec, nullptr, 10);
    }
    return notifier;
}

void UpstreamNotifier::send(const std::string &text) const {
    if (!fd_.valid()) {
        return;
    }
    sockaddr_un addr;
    socklen_t len = make_address(address_, addr);
    // MSG_NOSIGNAL/MSG_DONTWAIT: a gone or stuck manager must neither kill
    // nor block the relay.
    (void)sendto(fd_.get(), text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT, reinterpret_cast<sockaddr *>(&addr),
                 len);
}

} // namespace samrun
