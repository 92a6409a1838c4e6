// SPDX-License-Identifier: BSD-3-Clause
// check_signals.cpp - tests of the shared signal names and strict number
// parser (src/common): names both ways, real-time signals, and everything
// that must be refused.
#include <signal.h>

#include <CppUTest/TestHarness.h>

#include "common/parse.hpp"
#include "common/signals.hpp"

using sam::parse_decimal;
using sam::parse_signal;
using sam::signal_name;

TEST_GROUP(SignalName){};

TEST(SignalName, ClassicSignalsByTheirShortName) {
    STRCMP_EQUAL("TERM", signal_name(SIGTERM).c_str());
    STRCMP_EQUAL("KILL", signal_name(SIGKILL).c_str());
    STRCMP_EQUAL("USR1", signal_name(SIGUSR1).c_str());
    STRCMP_EQUAL("SEGV", signal_name(SIGSEGV).c_str());
}

TEST(SignalName, RealTimeSignalsCountFromRtmin) {
    STRCMP_EQUAL("RTMIN", signal_name(SIGRTMIN).c_str());
    STRCMP_EQUAL("RTMIN+2", signal_name(SIGRTMIN + 2).c_str());
    STRCMP_EQUAL(("RTMIN+" + std::to_string(SIGRTMAX - SIGRTMIN)).c_str(), signal_name(SIGRTMAX).c_str());
}

TEST(SignalName, NoSignalIsItsNumber) {
    STRCMP_EQUAL("0", signal_name(0).c_str());
    STRCMP_EQUAL("-3", signal_name(-3).c_str());
    STRCMP_EQUAL(std::to_string(SIGRTMAX + 1).c_str(), signal_name(SIGRTMAX + 1).c_str());
}

TEST_GROUP(ParseSignal){};

TEST(ParseSignal, NamesWithOrWithoutSigInAnyCase) {
    LONGS_EQUAL(SIGTERM, parse_signal("TERM"));
    LONGS_EQUAL(SIGTERM, parse_signal("SIGTERM"));
    LONGS_EQUAL(SIGTERM, parse_signal("sigterm"));
    LONGS_EQUAL(SIGUSR2, parse_signal("usr2"));
}

TEST(ParseSignal, Numbers) {
    LONGS_EQUAL(9, parse_signal("9"));
    LONGS_EQUAL(SIGRTMAX, parse_signal(std::to_string(SIGRTMAX)));
    LONGS_EQUAL(-1, parse_signal(std::to_string(SIGRTMAX + 1)));
    LONGS_EQUAL(-1, parse_signal("0"));
    LONGS_EQUAL(-1, parse_signal("-9"));
    LONGS_EQUAL(-1, parse_signal("+9"));
}

TEST(ParseSignal, RealTimeFromEitherEnd) {
    LONGS_EQUAL(SIGRTMIN, parse_signal("RTMIN"));
    LONGS_EQUAL(SIGRTMIN + 2, parse_signal("SIGRTMIN+2"));
    LONGS_EQUAL(SIGRTMAX, parse_signal("rtmax"));
    LONGS_EQUAL(SIGRTMAX - 1, parse_signal("RTMAX-1"));
    LONGS_EQUAL(SIGRTMAX, parse_signal("RTMIN+" + std::to_string(SIGRTMAX - SIGRTMIN)));
}

TEST(ParseSignal, NamesThatAreNotSignalsAreRefused) {
    LONGS_EQUAL(-1, parse_signal(""));
    LONGS_EQUAL(-1, parse_signal("SIG"));
    LONGS_EQUAL(-1, parse_signal("TERMX"));
    LONGS_EQUAL(-1, parse_signal(" TERM"));
    LONGS_EQUAL(-1, parse_signal("RTMIN-1"));
    LONGS_EQUAL(-1, parse_signal("RTMAX+1"));
    LONGS_EQUAL(-1, parse_signal("RTMIN+"));
    LONGS_EQUAL(-1, parse_signal("RTMIN+x"));
    LONGS_EQUAL(-1, parse_signal("RTMIN+" + std::to_string(SIGRTMAX - SIGRTMIN + 1)));
}

TEST(ParseSignal, EveryNameComesBack) {
    for (int sig = 1; sig <= SIGRTMAX; ++sig) {
        const std::string name = signal_name(sig);
        if (name == std::to_string(sig)) {
            continue; // a number without a name (none on Linux today)
        }
        LONGS_EQUAL(sig, parse_signal(name));
    }
}

TEST_GROUP(ParseDecimal){};

TEST(ParseDecimal, DigitsOnlyUpToTheMaximum) {
    CHECK_TRUE(parse_decimal("0", 5) == uint64_t{0});
    CHECK_TRUE(parse_decimal("5", 5) == uint64_t{5});
    CHECK_FALSE(parse_decimal("6", 5).has_value());
    CHECK_TRUE(parse_decimal("18446744073709551615", UINT64_MAX) == UINT64_MAX);
    CHECK_FALSE(parse_decimal("18446744073709551616", UINT64_MAX).has_value()); // ERANGE
}

TEST(ParseDecimal, AnythingElseIsRefused) {
    CHECK_FALSE(parse_decimal(nullptr, 10).has_value());
    CHECK_FALSE(parse_decimal("", 10).has_value());
    CHECK_FALSE(parse_decimal(" 1", 10).has_value());
    CHECK_FALSE(parse_decimal("1 ", 10).has_value());
    CHECK_FALSE(parse_decimal("+1", 10).has_value());
    CHECK_FALSE(parse_decimal("-1", 10).has_value());
    CHECK_FALSE(parse_decimal("1x", 10).has_value());
    CHECK_FALSE(parse_decimal("0x1", 10).has_value());
}
