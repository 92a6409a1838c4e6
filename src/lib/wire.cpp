// SPDX-License-Identifier: BSD-3-Clause
// wire.cpp - encoding and validation of instance <-> supervisor messages.
#include "wire.hpp"

#include <csignal>
#include <cstring>

namespace sam::wire {

RequestHeader make_header(RequestType type, uint64_t arg, uint64_t size) noexcept {
    RequestHeader h{};
    h.magic = kRequestMagic;
    h.type = static_cast<uint16_t>(type);
    h.arg = arg;
    h.size = size;
    return h;
}

namespace {

DecodeResult reject(std::string_view why) noexcept { return DecodeResult{std::nullopt, why}; }

bool is_known(uint16_t type) noexcept {
    return type >= static_cast<uint16_t>(RequestType::Start) &&
           type <= static_cast<uint16_t>(RequestType::DataStoreRemote);
}

} // namespace

DecodeResult decode_request(const void *buf, size_t len, size_t fd_count) noexcept {
    if (buf == nullptr || len < sizeof(RequestHeader))
        return reject("truncated header");
    RequestHeader h;
    std::memcpy(&h, buf, sizeof h); // the buffer need not be aligned
    if (h.magic != kRequestMagic)
        return reject("bad magic");
    if (h.reserved != 0)
        return reject("reserved field set");
    if (!is_known(h.type))
        return reject("unknown request type");

    Request r{static_cast<RequestType>(h.type), h.arg, h.size, nullptr};
    const size_t payload = len - sizeof(RequestHeader);
    const bool wants_fd = r.type == RequestType::DataStoreMemfd;
    if (fd_count != (wants_fd ? 1U : 0U))
        return reject("unexpected descriptor count");

    switch (r.type) {
    case RequestType::DataStoreInline:
        if (r.size == 0 || r.size > kInlineDataMax)
            return reject("inline data size out of range");
        if (payload != r.size)
            return reject("inline data length does not match its header");
        if (r.arg != 0)
            return reject("argument set on data request");
        r.inline_data = static_cast<const unsigned char *>(buf) + sizeof(RequestHeader);
        break;
    case RequestType::DataStoreMemfd:
        if (r.size <= kInlineDataMax)
            return reject("memfd data size out of range");
        if (payload != 0 || r.arg != 0)
            return reject("trailing bytes on memfd request");
        break;
    case RequestType::DataStoreRemote:
        if (r.size <= kInlineDataMax || r.size > kRemoteDataMax)
            return reject("remote data size out of range");
        if (payload != 0)
            return reject("trailing bytes on remote data request");
        if (r.arg == 0 || r.arg + r.size < r.arg)
            return reject("remote data address out of range");
        break;
    case RequestType::WarnSignalSet:
        if (payload != 0 || r.size != 0)
            return reject("trailing bytes on signal request");
        if (r.arg < 1 || r.arg >= static_cast<uint64_t>(NSIG))
            return reject("signal number out of range");
        break;
    case RequestType::Start:
    case RequestType::Stop:
    case RequestType::DataDelete:
    case RequestType::MarkFailed:
        if (payload != 0 || r.size != 0 || r.arg != 0)
            return reject("arguments on a request that takes none");
        break;
    }
    return DecodeResult{r, {}};
}

std::optional<int32_t> decode_reply(const void *buf, size_t len) noexcept {
    if (buf == nullptr || len != sizeof(Reply))
        return std::nullopt;
    Reply r;
    std::memcpy(&r, buf, sizeof r);
    if (r.magic != kReplyMagic)
        return std::nullopt;
    return r.status;
}

const char *request_name(RequestType type) noexcept {
    switch (type) {
    case RequestType::Start:
        return "start";
    case RequestType::Stop:
        return "stop";
    case RequestType::DataStoreInline:
    case RequestType::DataStoreMemfd:
    case RequestType::DataStoreRemote:
        return "data store";
    case RequestType::DataDelete:
        return "data delete";
    case RequestType::WarnSignalSet:
        return "warn signal set";
    case RequestType::MarkFailed:
        return "mark failed";
    }
    return "unknown";
}

} // namespace sam::wire
