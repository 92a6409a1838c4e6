// SPDX-License-Identifier: BSD-3-Clause
// link_wire.hpp - the messages between the supervisor and its link process.
//
// The link process owns every corosync connection (see link_process.hpp);
// the supervisor talks to it over a SOCK_SEQPACKET socket pair, one message
// per datagram, all of one fixed size. Neither side trusts the other's
// bytes blindly: decode() checks length, magic, type, the small enums and
// the descriptor count, and a message that does not decode ends the
// conversation (the supervisor restarts the link; the link exits).
//
// Supervisor -> link:
//   Update       the state cmap should show, whether the instance is healthy,
//                its last sign of life; with a token: write the state now and
//                answer Written before deadline_ns
//   Watch        the new instance's heartbeat page (one memfd, SCM_RIGHTS)
//   QuorumQuery  dispatch what corosync has queued, then ask whether we are
//                quorate, and answer QuorumAnswer with the token
//   Finish       the final write (flag 1: state "failed", 0: delete the keys),
//                then exit
// Link -> supervisor:
//   Ready        the keys exist (or error says why not); flag = quorate
//   Written      the awaited write of token ended with error
//   QuorumAnswer corosync's answer to the query of token (flag = quorate)
//   Quorum       a quorum notification changed the state (flag = quorate)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace sam::linkwire {

inline constexpr uint32_t kToLinkMagic = 0x53414d4c;   // "SAML"
inline constexpr uint32_t kFromLinkMagic = 0x53414d6c; // "SAMl"

enum class Type : uint16_t {
    // to the link
    Update = 1,
    Watch = 2,
    QuorumQuery = 3,
    Finish = 4,
    // from the link
    Ready = 11,
    Written = 12,
    QuorumAnswer = 13,
    Quorum = 14,
};

// The values of the state key, as a number on the wire.
enum class State : uint8_t { None = 0, Stopped = 1, Running = 2, WaitingForQuorum = 3, Failed = 4 };

struct Message {
    uint32_t magic;
    uint16_t type;
    uint8_t state;        // Update: a State
    uint8_t flag;         // 0 or 1: healthy (Update), mark failed (Finish), quorate (answers)
    int32_t error;        // a cs_error_t (Ready, Written, QuorumAnswer)
    uint32_t reserved;    // must be 0
    uint64_t token;       // Update with a write to answer, QuorumQuery and the answers
    uint64_t life_ns;     // Update: the instance's last message (CLOCK_MONOTONIC)
    uint64_t deadline_ns; // Update with a token: when the supervisor stops waiting
};
static_assert(sizeof(Message) == 40, "link message layout is fixed");

enum class Direction { ToLink, FromLink };

[[nodiscard]] Message make(Direction d, Type type) noexcept;

// Validates one datagram of `len` bytes that came with `fd_count`
// descriptors; nothing when it is not a well-formed message for `d`.
[[nodiscard]] std::optional<Message> decode(Direction d, const void *buf, size_t len, size_t fd_count) noexcept;

// Sends one message, with `pass_fd` when it is not -1. MSG_NOSIGNAL: a peer
// that has gone away must not kill us with SIGPIPE. Returns 0, or the errno
// value (EAGAIN when `dont_wait` and the socket is full).
[[nodiscard]] int send_message(int fd, const Message &m, int pass_fd, bool dont_wait) noexcept;

[[nodiscard]] const char *state_name(State s) noexcept;
// The State for a state key value; State::None for anything else.
[[nodiscard]] State state_from_name(const char *name) noexcept;

} // namespace sam::linkwire
