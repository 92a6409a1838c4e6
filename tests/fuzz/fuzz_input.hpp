// SPDX-License-Identifier: BSD-3-Clause
// fuzz_input.hpp - the record format of the supervisor-input fuzzer, shared by
// the target and the seed-corpus generator.
//
// An input is a sequence of records, each starting with one byte whose value
// modulo 8 selects the kind:
//
//   kMessage: u8 flags, u16 length (little endian), `length` bytes of datagram.
//             flags bits 0-1: descriptor count; bit 2: send it through a real
//             SOCK_SEQPACKET pair and receive it with channel_receive(),
//             passing that many real descriptors (otherwise the count is only
//             claimed); bits 4-5: what the first descriptor is (see FdKind).
//   kTimer:   u64 nanoseconds the clock advances, u64 heartbeat page stamp.
//   kEnv:     u8 mask of the four SAM_RESTART_* variables present, then for
//             each present one u8 length (mod 32) and its bytes; then u64
//             health interval in ms (masked to 31 bits).
//   kReply:   u8 length (mod 16) and a reply datagram for decode_reply().
//   kLink:    u8: modulo 8, a quorum notification (0 yes, 1 no), corosync's
//             answer to the current quorum question (2 yes, 3 no), a stale
//             answer (4), the current awaited state write done (5) or failed
//             (6; bit 4: timeout), a stale write answer (7). Ignored
//             without a link (neither QUORUM nor CMAP).
//   kSignal:  u8: which stop signal reaches the supervisor (modulo 6).
//   kDeath:   u8: the instance ends on its own; bits 0-1: exited (bits 2-7
//             the status), killed by a signal, dumped core, reaped elsewhere.
//   kPolicy:  u8: a new supervisor; bit 0 QUIT (else RESTART), bit 1 QUORUM,
//             bit 2 CMAP; bits 4-5: its next restart's fork fails (none,
//             EAGAIN, ENOMEM, EPERM); bit 6: its first fork fails.
//
// kEnv and kPolicy start a new supervisor, as does one that ends (its
// instance died under QUIT, after a stop signal, ...).
//
// Integers are little endian; reads past the end of the input give zeros.
#pragma once

#include <cstdint>

namespace fuzzin {

enum RecordKind : uint8_t {
    kMessage = 0,
    kTimer = 1,
    kEnv = 2,
    kReply = 3,
    kLink = 4,
    kSignal = 5,
    kDeath = 6,
    kPolicy = 7,
};

constexpr uint8_t kFdCountMask = 0x03;
constexpr uint8_t kViaSocket = 0x04;
constexpr unsigned kFdKindShift = 4;

enum FdKind : unsigned { kFdSealedRight = 0, kFdUnsealed = 1, kFdWrongSize = 2, kFdPipe = 3 };

} // namespace fuzzin
