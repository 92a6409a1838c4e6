// SPDX-License-Identifier: BSD-3-Clause
// check_notify_datagram.cpp - tests of the notify datagram parser
// (src/tools/notify_datagram.cpp): fields in order, and garbage of every
// kind dropped rather than handed on as a field.
#include <string>

#include <CppUTest/TestHarness.h>

#include "notify_datagram.hpp"

using namespace samrun;

namespace {

NotifyFields parse(const std::string &datagram) { return parse_notify_datagram(datagram.data(), datagram.size()); }

void check_field(const NotifyFields &fields, size_t i, const char *key, const char *value) {
    CHECK_TRUE(i < fields.size());
    STRCMP_EQUAL(key, fields[i].first.c_str());
    STRCMP_EQUAL(value, fields[i].second.c_str());
}

} // namespace

TEST_GROUP(NotifyDatagram){};

TEST(NotifyDatagram, FieldsInOrder) {
    NotifyFields f = parse("READY=1\nSTATUS=serving 3 clients\nWATCHDOG=1");
    LONGS_EQUAL(3, f.size());
    check_field(f, 0, "READY", "1");
    check_field(f, 1, "STATUS", "serving 3 clients");
    check_field(f, 2, "WATCHDOG", "1");
}

TEST(NotifyDatagram, TrailingNewlineEmptyValueAndEqualsInTheValue) {
    NotifyFields f = parse("STATUS=\nX=a=b\n");
    LONGS_EQUAL(2, f.size());
    check_field(f, 0, "STATUS", "");
    check_field(f, 1, "X", "a=b");
}

TEST(NotifyDatagram, RepeatedKeysAreAllKept) {
    NotifyFields f = parse("WATCHDOG=1\nWATCHDOG=1");
    LONGS_EQUAL(2, f.size());
}

TEST(NotifyDatagram, EmptyDatagramHasNoField) {
    LONGS_EQUAL(0, parse("").size());
    LONGS_EQUAL(0, parse_notify_datagram(nullptr, 0).size());
    LONGS_EQUAL(0, parse("\n\n\n").size());
}

TEST(NotifyDatagram, GarbageLinesAreDropped) {
    NotifyFields f = parse("no equals sign\n=no key\nREADY=1\n\xff\xfe\x01");
    LONGS_EQUAL(1, f.size());
    check_field(f, 0, "READY", "1");
}

TEST(NotifyDatagram, ALineWithANulByteIsDroppedNotCutShort) {
    // "READY=1\0junk" must not become READY=1: the sender said something else.
    const std::string datagram("READY=1\0junk\nSTATUS=ok", 22);
    NotifyFields f = parse(datagram);
    LONGS_EQUAL(1, f.size());
    check_field(f, 0, "STATUS", "ok");
}

TEST(NotifyDatagram, BinaryNoiseNeverBecomesAField) {
    std::string noise;
    for (int i = 0; i < 4096; ++i) {
        noise.push_back(static_cast<char>((i * 7919) & 0xff));
    }
    for (const auto &[key, value] : parse(noise)) {
        CHECK_FALSE(key.empty());
        CHECK_TRUE(key.find('=') == std::string::npos);
        CHECK_TRUE(key.find('\n') == std::string::npos);
        CHECK_TRUE(value.find('\n') == std::string::npos);
        CHECK_TRUE(key.find('\0') == std::string::npos && value.find('\0') == std::string::npos);
    }
}
