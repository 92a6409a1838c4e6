// SPDX-License-Identifier: BSD-3-Clause
// wire.hpp - the messages an instance sends to its supervisor and the replies
// it gets back, with their encoding and validation.
//
// Transport is a SOCK_SEQPACKET socket pair, so one message is one datagram.
// Every request is a fixed header, optionally followed by inline data bytes
// (small sam_data_store) or accompanied by one descriptor (a sealed memfd for
// large sam_data_store). A medium sam_data_store sends only the address and
// size of the caller's bytes: the supervisor copies them straight out of the
// instance with process_vm_readv(2) while the instance waits for the reply.
// The supervisor trusts nothing: decode_request() checks length, magic, type,
// sizes and descriptor count, and anything that does not decode is treated as
// a failure of the instance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sam::wire {

inline constexpr uint32_t kRequestMagic = 0x53414d31; // "SAM1"
inline constexpr uint32_t kReplyMagic = 0x53414d52;   // "SAMR"

// Data up to this size travels inside the datagram.
inline constexpr size_t kInlineDataMax = 32 * 1024;
// Data above kInlineDataMax and up to this size is read by the supervisor out
// of the instance's memory (one copy, no page-cache churn: about 4x faster
// than a fresh memfd per store at 1 MiB; from 4 MiB into memory offered for
// huge pages, see datastore.cpp: 64 MiB stores 2.4x faster than upstream and
// restored 2.4x faster in a fresh instance, against 1.7x and 0.77x through a
// memfd). Larger data goes through a sealed memfd, which the supervisor maps
// without copying (so it is not held twice), and so does all of it
// when the supervisor may not read the instance's memory (the reply is then
// CS_ERR_NOT_SUPPORTED and the instance stops asking), and so do bytes that
// can only be read from inside the instance, such as memfd_secret memory
// (the reply is CS_ERR_TRY_AGAIN: a memfd for this store only).
inline constexpr size_t kRemoteDataMax = 64 * 1024 * 1024;

enum class RequestType : uint16_t {
    Start = 1,
    Stop = 2,
    DataStoreInline = 3,
    DataStoreMemfd = 4,
    DataDelete = 5,
    WarnSignalSet = 6,
    MarkFailed = 7,
    DataStoreRemote = 8,
};

struct RequestHeader {
    uint32_t magic;
    uint16_t type;
    uint16_t reserved; // must be 0
    uint64_t arg;      // signal number for WarnSignalSet, address for DataStoreRemote, else 0
    uint64_t size;     // data size for the data-store requests, else 0
};
static_assert(sizeof(RequestHeader) == 24, "wire header layout is fixed");

struct Reply {
    uint32_t magic;
    int32_t status; // a cs_error_t
};
static_assert(sizeof(Reply) == 8, "wire reply layout is fixed");

// A request after validation. For DataStoreInline, `inline_data` points into
// the caller's receive buffer.
struct Request {
    RequestType type;
    uint64_t arg = 0;
    uint64_t size = 0;
    const unsigned char *inline_data = nullptr;
};

struct DecodeResult {
    std::optional<Request> request;
    std::string_view error; // why decoding failed, when request is empty
};

// Validates one received datagram of `len` bytes that came with `fd_count`
// descriptors (the caller closes any it got).
[[nodiscard]] DecodeResult decode_request(const void *buf, size_t len, size_t fd_count) noexcept;

[[nodiscard]] RequestHeader make_header(RequestType type, uint64_t arg = 0, uint64_t size = 0) noexcept;

// Checks a reply datagram; returns the status, or nothing when malformed.
[[nodiscard]] std::optional<int32_t> decode_reply(const void *buf, size_t len) noexcept;

[[nodiscard]] const char *request_name(RequestType type) noexcept;

} // namespace sam::wire
