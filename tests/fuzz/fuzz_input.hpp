// SPDX-License-Identifier: BSD-3-Clause
// fuzz_input.hpp - the record format of the supervisor-input fuzzer, shared by
// the target and the seed-corpus generator.
//
// An input is a sequence of records, each starting with one byte whose value
// modulo 4 selects the kind:
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
//
// Integers are little endian; reads past the end of the input give zeros.
#pragma once

#include <cstdint>

namespace fuzzin {

enum RecordKind : uint8_t { kMessage = 0, kTimer = 1, kEnv = 2, kReply = 3 };

constexpr uint8_t kFdCountMask = 0x03;
constexpr uint8_t kViaSocket = 0x04;
constexpr unsigned kFdKindShift = 4;

enum FdKind : unsigned { kFdSealedRight = 0, kFdUnsealed = 1, kFdWrongSize = 2, kFdPipe = 3 };

} // namespace fuzzin
