// SPDX-License-Identifier: BSD-3-Clause
// link_wire.cpp - encoding and validation of supervisor <-> link messages.
#include "link_wire.hpp"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>

#include <corosync/corotypes.h>

#include "common/fd_passing.hpp"
#include "fd.hpp"

namespace sam::linkwire {

Message make(Direction d, Type type) noexcept {
    Message m{};
    m.magic = d == Direction::ToLink ? kToLinkMagic : kFromLinkMagic;
    m.type = static_cast<uint16_t>(type);
    m.error = CS_OK; // not 0: CS_OK is 1
    return m;
}

std::optional<Message> decode(Direction d, const void *buf, size_t len, size_t fd_count) noexcept {
    if (buf == nullptr || len != sizeof(Message))
        return std::nullopt;
    Message m;
    std::memcpy(&m, buf, sizeof m); // the buffer need not be aligned
    if (m.magic != (d == Direction::ToLink ? kToLinkMagic : kFromLinkMagic) || m.reserved != 0 || m.flag > 1)
        return std::nullopt;
    const auto type = static_cast<Type>(m.type);
    const bool to_link =
        type == Type::Update || type == Type::Watch || type == Type::QuorumQuery || type == Type::Finish;
    const bool from_link =
        type == Type::Ready || type == Type::Written || type == Type::QuorumAnswer || type == Type::Quorum;
    if (d == Direction::ToLink ? !to_link : !from_link)
        return std::nullopt;
    if (fd_count != (type == Type::Watch ? 1U : 0U))
        return std::nullopt;
    if (m.state > static_cast<uint8_t>(State::Failed))
        return std::nullopt;
    if (type != Type::Update && m.state != 0)
        return std::nullopt;
    return m;
}

int send_message(int fd, const Message &m, int pass_fd, bool dont_wait) noexcept {
    const iovec iov{const_cast<Message *>(&m), sizeof m};
    const int flags = MSG_NOSIGNAL | (dont_wait ? MSG_DONTWAIT : 0);
    const ssize_t n = send_with_fd(fd, &iov, 1, pass_fd, flags);
    if (n == static_cast<ssize_t>(sizeof m))
        return 0;
    return n < 0 ? errno : EIO;
}

const char *state_name(State s) noexcept {
    switch (s) {
    case State::Stopped:
        return "stopped";
    case State::Running:
        return "running";
    case State::WaitingForQuorum:
        return "waiting for quorum";
    case State::Failed:
        return "failed";
    case State::None:
        break;
    }
    return "";
}

State state_from_name(const char *name) noexcept {
    for (State s : {State::Stopped, State::Running, State::WaitingForQuorum, State::Failed})
        if (std::strcmp(name, state_name(s)) == 0)
            return s;
    return State::None;
}

} // namespace sam::linkwire
