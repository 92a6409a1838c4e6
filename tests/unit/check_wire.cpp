// SPDX-License-Identifier: BSD-3-Clause
// check_wire.cpp - tests of wire.cpp: every request the supervisor accepts,
// and the truncated, oversized and garbage ones it must refuse.
#include <cstring>
#include <vector>

#include <CppUTest/TestHarness.h>

#include "wire.hpp"

using namespace sam::wire;

namespace {
std::vector<unsigned char> encode(const RequestHeader &h, size_t payload = 0) {
    std::vector<unsigned char> b(sizeof h + payload, 0xab);
    std::memcpy(b.data(), &h, sizeof h);
    return b;
}
} // namespace

TEST_GROUP(Wire){};

TEST(Wire, AcceptsEveryPlainRequest) {
    for (RequestType t : {RequestType::Start, RequestType::Stop, RequestType::DataDelete, RequestType::MarkFailed}) {
        auto b = encode(make_header(t));
        auto r = decode_request(b.data(), b.size(), 0);
        CHECK_TRUE(r.request.has_value());
        CHECK(r.request->type == t);
    }
}

TEST(Wire, InlineDataPointsIntoTheDatagram) {
    auto b = encode(make_header(RequestType::DataStoreInline, 0, 5), 5);
    std::memcpy(b.data() + sizeof(RequestHeader), "hello", 5);
    auto r = decode_request(b.data(), b.size(), 0);
    CHECK_TRUE(r.request.has_value());
    UNSIGNED_LONGS_EQUAL(5, r.request->size);
    MEMCMP_EQUAL("hello", r.request->inline_data, 5);
}

TEST(Wire, RejectsTruncatedHeader) {
    auto b = encode(make_header(RequestType::Start));
    for (size_t len = 0; len < sizeof(RequestHeader); ++len)
        CHECK_FALSE(decode_request(b.data(), len, 0).request.has_value());
    CHECK_FALSE(decode_request(nullptr, 0, 0).request.has_value());
}

TEST(Wire, RejectsInlineLengthMismatch) {
    auto b = encode(make_header(RequestType::DataStoreInline, 0, 10), 9);
    STRCMP_EQUAL("inline data length does not match its header",
                 std::string(decode_request(b.data(), b.size(), 0).error).c_str());
    auto c = encode(make_header(RequestType::DataStoreInline, 0, 10), 11);
    CHECK_FALSE(decode_request(c.data(), c.size(), 0).request.has_value());
}

TEST(Wire, RejectsInlineSizesOutOfRange) {
    auto zero = encode(make_header(RequestType::DataStoreInline, 0, 0));
    CHECK_FALSE(decode_request(zero.data(), zero.size(), 0).request.has_value());
    auto huge = encode(make_header(RequestType::DataStoreInline, 0, kInlineDataMax + 1), kInlineDataMax + 1);
    CHECK_FALSE(decode_request(huge.data(), huge.size(), 0).request.has_value());
    auto at_max = encode(make_header(RequestType::DataStoreInline, 0, kInlineDataMax), kInlineDataMax);
    CHECK_TRUE(decode_request(at_max.data(), at_max.size(), 0).request.has_value());
}

TEST(Wire, MemfdRequestNeedsExactlyOneDescriptorAndALargeSize) {
    auto b = encode(make_header(RequestType::DataStoreMemfd, 0, kInlineDataMax + 1));
    CHECK_TRUE(decode_request(b.data(), b.size(), 1).request.has_value());
    CHECK_FALSE(decode_request(b.data(), b.size(), 0).request.has_value());
    CHECK_FALSE(decode_request(b.data(), b.size(), 2).request.has_value());
    auto small = encode(make_header(RequestType::DataStoreMemfd, 0, 100));
    CHECK_FALSE(decode_request(small.data(), small.size(), 1).request.has_value());
}

TEST(Wire, RemoteRequestNeedsAnAddressAMediumSizeAndNothingElse) {
    auto ok = encode(make_header(RequestType::DataStoreRemote, 0x10000, kInlineDataMax + 1));
    const DecodeResult d = decode_request(ok.data(), ok.size(), 0);
    CHECK_TRUE(d.request.has_value());
    CHECK_EQUAL(0x10000u, d.request->arg);
    auto at_max = encode(make_header(RequestType::DataStoreRemote, 0x10000, kRemoteDataMax));
    CHECK_TRUE(decode_request(at_max.data(), at_max.size(), 0).request.has_value());
    CHECK_FALSE(decode_request(ok.data(), ok.size(), 1).request.has_value());
    auto trailing = encode(make_header(RequestType::DataStoreRemote, 0x10000, kInlineDataMax + 1), 4);
    CHECK_FALSE(decode_request(trailing.data(), trailing.size(), 0).request.has_value());
    for (uint64_t size : {uint64_t{0}, uint64_t{100}, uint64_t{kInlineDataMax}, uint64_t{kRemoteDataMax + 1}}) {
        auto b = encode(make_header(RequestType::DataStoreRemote, 0x10000, size));
        CHECK_FALSE(decode_request(b.data(), b.size(), 0).request.has_value());
    }
    auto null_address = encode(make_header(RequestType::DataStoreRemote, 0, kInlineDataMax + 1));
    CHECK_FALSE(decode_request(null_address.data(), null_address.size(), 0).request.has_value());
    auto wraps = encode(make_header(RequestType::DataStoreRemote, ~uint64_t{0} - 10, kInlineDataMax + 1));
    CHECK_FALSE(decode_request(wraps.data(), wraps.size(), 0).request.has_value());
}

TEST(Wire, DescriptorOnAPlainRequestIsRefused) {
    auto b = encode(make_header(RequestType::Start));
    CHECK_FALSE(decode_request(b.data(), b.size(), 1).request.has_value());
}

TEST(Wire, WarnSignalMustBeASignal) {
    auto ok = encode(make_header(RequestType::WarnSignalSet, 10));
    CHECK_TRUE(decode_request(ok.data(), ok.size(), 0).request.has_value());
    for (uint64_t bad : {0ULL, 65ULL, 1000ULL, ~0ULL}) {
        auto b = encode(make_header(RequestType::WarnSignalSet, bad));
        CHECK_FALSE(decode_request(b.data(), b.size(), 0).request.has_value());
    }
}

TEST(Wire, RejectsGarbage) {
    auto bad_magic = encode(make_header(RequestType::Start));
    bad_magic[0] ^= 0xff;
    CHECK_FALSE(decode_request(bad_magic.data(), bad_magic.size(), 0).request.has_value());
    RequestHeader unknown = make_header(RequestType::Start);
    unknown.type = 99;
    auto u = encode(unknown);
    CHECK_FALSE(decode_request(u.data(), u.size(), 0).request.has_value());
    RequestHeader reserved = make_header(RequestType::Stop);
    reserved.reserved = 1;
    auto r = encode(reserved);
    CHECK_FALSE(decode_request(r.data(), r.size(), 0).request.has_value());
    auto trailing = encode(make_header(RequestType::Start), 3);
    CHECK_FALSE(decode_request(trailing.data(), trailing.size(), 0).request.has_value());
    auto with_arg = encode(make_header(RequestType::Stop, 4));
    CHECK_FALSE(decode_request(with_arg.data(), with_arg.size(), 0).request.has_value());
}

TEST(Wire, ReplyRoundTripAndRejection) {
    Reply ok{kReplyMagic, 9};
    auto s = decode_reply(&ok, sizeof ok);
    CHECK_TRUE(s.has_value());
    LONGS_EQUAL(9, *s);
    CHECK_FALSE(decode_reply(&ok, sizeof ok - 1).has_value());
    Reply bad{0x1234, 1};
    CHECK_FALSE(decode_reply(&bad, sizeof bad).has_value());
}
