// SPDX-License-Identifier: BSD-3-Clause
// check_status_format.cpp - tests of the pure parts of `sam-run --status`
// (src/tools/status_format.hpp): hostile text never reaches a terminal or a
// JSON reader raw, key names become pids only when they are canonical, and
// the age and start-time arithmetic is exact at the edges of uint64_t.
#include <stdint.h>

#include <limits>
#include <string>

#include <CppUTest/TestHarness.h>

#include "status_format.hpp"

using namespace samrun;

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// True when no byte below 0x20 nor DEL is left in `s`.
bool no_control_bytes(const std::string &s) {
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

} // namespace

TEST_GROUP(TerminalSafe){};

TEST(TerminalSafe, PlainTextAndUtf8AreKept) {
    STRCMP_EQUAL("running", terminal_safe("running").c_str());
    STRCMP_EQUAL("waiting for quorum", terminal_safe("waiting for quorum").c_str());
    STRCMP_EQUAL("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                 terminal_safe("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80").c_str());
}

TEST(TerminalSafe, EscapeSequencesBecomeVisible) {
    // Clear the screen, move the cursor home, set the window title.
    std::string out = terminal_safe("\x1b[2J\x1b[H\x1b]0;pwned\x07ok");
    STRCMP_EQUAL("\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07ok", out.c_str());
    CHECK_TRUE(no_control_bytes(out));
    STRCMP_EQUAL("a\\x0ab\\x0dc\\x09d\\x7f", terminal_safe("a\nb\rc\td\x7f").c_str());
    STRCMP_EQUAL("\\x00", terminal_safe(std::string(1, '\0')).c_str());
}

TEST(TerminalSafe, C1ControlsAndBidiOverridesAreEscaped) {
    // U+009B is CSI for terminals that take C1 controls; U+202E reverses
    // the text that follows it on screen.
    STRCMP_EQUAL("\\u{009b}2J", terminal_safe("\xc2\x9b"
                                              "2J")
                                    .c_str());
    STRCMP_EQUAL("x\\u{202e}y\\u{2066}", terminal_safe("x\xe2\x80\xae"
                                                       "y\xe2\x81\xa6")
                                             .c_str());
}

TEST(TerminalSafe, InvalidUtf8BytesAreEscaped) {
    STRCMP_EQUAL("\\xff\\xfe", terminal_safe("\xff\xfe").c_str());
    // Overlong '/', a surrogate, above U+10FFFF, a truncated sequence.
    STRCMP_EQUAL("\\xc0\\xaf", terminal_safe("\xc0\xaf").c_str());
    STRCMP_EQUAL("\\xed\\xa0\\x80", terminal_safe("\xed\xa0\x80").c_str());
    STRCMP_EQUAL("\\xf4\\x90\\x80\\x80", terminal_safe("\xf4\x90\x80\x80").c_str());
    STRCMP_EQUAL("a\\xe2\\x82", terminal_safe("a\xe2\x82").c_str());
}

TEST(TerminalSafe, BackslashIsDoubledSoEscapesAreUnambiguous) {
    STRCMP_EQUAL("\\\\x1b", terminal_safe("\\x1b").c_str());
}

TEST_GROUP(JsonString){};

TEST(JsonString, QuotesBackslashesAndControls) {
    STRCMP_EQUAL("\"a\\\"b\\\\c\"", json_string("a\"b\\c").c_str());
    STRCMP_EQUAL("\"\\n\\t\\u001b[2J\\u0000\\u007f\"", json_string(std::string("\n\t\x1b[2J\0\x7f", 8)).c_str());
    STRCMP_EQUAL("\"\\u009b\\u202e\\u2028\"", json_string("\xc2\x9b\xe2\x80\xae\xe2\x80\xa8").c_str());
}

TEST(JsonString, ValidUtf8IsKeptInvalidBecomesReplacementCharacter) {
    STRCMP_EQUAL("\"caf\xc3\xa9\"", json_string("caf\xc3\xa9").c_str());
    STRCMP_EQUAL("\"\\ufffd\\ufffdx\"", json_string("\xff\xc0x").c_str());
    STRCMP_EQUAL("\"\\ufffd\\ufffd\"", json_string("\xe2\x82").c_str());
}

TEST(JsonString, EmptyString) { STRCMP_EQUAL("\"\"", json_string("").c_str()); }

TEST_GROUP(JsonObject){};

TEST(JsonObject, MembersInOrderNullsAndNumbers) {
    JsonObject o;
    o.add_string("name", std::string("0123"))
        .add_number("pid", std::nullopt)
        .add_number("age", int64_t{-5})
        .add_unsigned("big", kMax)
        .add_string("command", std::nullopt)
        .add_bool("stale", true);
    STRCMP_EQUAL("{\"name\": \"0123\", \"pid\": null, \"age\": -5, \"big\": 18446744073709551615, "
                 "\"command\": null, \"stale\": true}",
                 o.str().c_str());
}

TEST(JsonObject, EmptyObject) { STRCMP_EQUAL("{}", JsonObject().str().c_str()); }

TEST_GROUP(PidFromName){};

TEST(PidFromName, OnlyCanonicalPositiveDecimals) {
    LONGS_EQUAL(1234, *pid_from_name("1234"));
    LONGS_EQUAL(1, *pid_from_name("1"));
    LONGS_EQUAL(std::numeric_limits<pid_t>::max(), *pid_from_name("2147483647"));
    CHECK_FALSE(pid_from_name("0123").has_value());
    CHECK_FALSE(pid_from_name("0").has_value());
    CHECK_FALSE(pid_from_name("").has_value());
    CHECK_FALSE(pid_from_name("-1").has_value());
    CHECK_FALSE(pid_from_name("+1").has_value());
    CHECK_FALSE(pid_from_name(" 12").has_value());
    CHECK_FALSE(pid_from_name("12a").has_value());
    CHECK_FALSE(pid_from_name("1e3").has_value());
    CHECK_FALSE(pid_from_name("2147483648").has_value());
    CHECK_FALSE(pid_from_name("99999999999999999999999").has_value());
}

TEST_GROUP(AgeMs){};

TEST(AgeMs, NoStampIsNoAge) {
    CHECK_FALSE(age_ms(std::nullopt, 5).has_value());
    CHECK_FALSE(age_ms(uint64_t{0}, 5).has_value());
}

TEST(AgeMs, PastAndFuture) {
    LONGS_EQUAL(1500, *age_ms(uint64_t{1000000000}, 2500000000u));
    LONGS_EQUAL(0, *age_ms(uint64_t{7}, 7));
    LONGS_EQUAL(-1500, *age_ms(uint64_t{2500000000u}, 1000000000));
}

TEST(AgeMs, ExtremesDoNotOverflow) {
    // A stamp at or above 2^63 once went through int64_t: undefined.
    const int64_t span = static_cast<int64_t>((kMax - 1) / 1000000u);
    LONGLONGS_EQUAL(-span, *age_ms(kMax, 1));
    LONGLONGS_EQUAL(span, *age_ms(uint64_t{1}, kMax));
    LONGLONGS_EQUAL(0, *age_ms(kMax, kMax));
    const uint64_t half = uint64_t{1} << 63;
    LONGLONGS_EQUAL(-static_cast<int64_t>((half - 1000) / 1000000u), *age_ms(half, 1000));
    LONGLONGS_EQUAL(static_cast<int64_t>((half - 1) / 1000000u), *age_ms(uint64_t{1}, half));
}

TEST_GROUP(StartedAfter){};

TEST(StartedAfter, ComparesOnTheMonotonicClock) {
    CHECK_TRUE(started_after(2000, 0, 1000));
    CHECK_FALSE(started_after(1000, 0, 1000));
    CHECK_FALSE(started_after(500, 0, 1000));
}

TEST(StartedAfter, TimeSpentSuspendedIsNotHeldAgainstTheProcess) {
    // Started at boottime 5000 after 4500 suspended: possibly monotonic 500,
    // before a stamp of 1000. Never "after" when in doubt.
    CHECK_FALSE(started_after(5000, 4500, 1000));
    CHECK_TRUE(started_after(5000, 3000, 1000));
    CHECK_FALSE(started_after(100, kMax, 0));
    CHECK_TRUE(started_after(kMax, 0, kMax - 1));
    CHECK_FALSE(started_after(kMax, 0, kMax));
}

TEST_GROUP(StatsKey){};

TEST(StatsKey, ClientPidOfAnIpcConnection) {
    LONGS_EQUAL(13554, *client_pid_from_stats_key("stats.ipcs.service0.13554.0x5653ac733cf0.procname"));
    LONGS_EQUAL(7, *client_pid_from_stats_key("stats.ipcs.service12.7.0x1.queued"));
    CHECK_FALSE(client_pid_from_stats_key("stats.ipcs.global.active").has_value());
    CHECK_FALSE(client_pid_from_stats_key("stats.ipcs.service0.0123.0x1.queued").has_value());
    CHECK_FALSE(client_pid_from_stats_key("stats.ipcs.service0.13554").has_value());
    CHECK_FALSE(client_pid_from_stats_key("stats.ipcs.servicex.1.0x1.q").has_value());
    CHECK_FALSE(client_pid_from_stats_key("stats.knet.node1.link0.up").has_value());
}
