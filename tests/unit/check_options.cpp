// SPDX-License-Identifier: BSD-3-Clause
// check_options.cpp - tests of sam-run's command line (src/tools/options.cpp):
// what each option sets, its default, and every message a bad command line
// gets, word for word, since scripts and users read them.
#include <string>
#include <vector>

#include <signal.h>

#include <CppUTest/TestHarness.h>

#include "options.hpp"

using namespace samrun;

namespace {

// parse_options() over a command line given as words ("sam-run" first).
ParseResult parse(const std::vector<const char *> &words) {
    std::vector<std::string> storage(words.begin(), words.end());
    std::vector<char *> argv;
    for (std::string &w : storage) {
        argv.push_back(w.data());
    }
    argv.push_back(nullptr);
    return parse_options(static_cast<int>(storage.size()), argv.data());
}

// The parse failed, with exactly `message`.
void check_rejected(const ParseResult &r, const char *message) {
    CHECK_TRUE(r.outcome == ParseOutcome::Error);
    STRCMP_EQUAL(message, r.error.c_str());
}

} // namespace

TEST_GROUP(Options){};

TEST(Options, DefaultsWithOnlyACommand) {
    ParseResult r = parse({"sam-run", "--", "sleep", "1"});
    CHECK_TRUE(r.outcome == ParseOutcome::Run);
    const Options &o = r.options;
    LONGS_EQUAL(1000, o.interval_ms);
    CHECK_TRUE(o.policy == Policy::Restart);
    CHECK_FALSE(o.quorum);
    CHECK_FALSE(o.cmap);
    LONGS_EQUAL(0, o.warn_signal);
    LONGS_EQUAL(SIGTERM, o.warn_signal_or_default());
    CHECK_FALSE(o.max_restarts.has_value());
    LONGS_EQUAL(0, o.restart_window_s);
    CHECK_FALSE(o.start_timeout_ms.has_value());
    CHECK_FALSE(o.check_timeout_ms.has_value());
    LONGS_EQUAL(10000, o.event_timeout_ms);
    CHECK_FALSE(o.notify);
    LONGS_EQUAL(2, o.command.size());
    STRCMP_EQUAL("sleep", o.command[0].c_str());
    STRCMP_EQUAL("1", o.command[1].c_str());
}

TEST(Options, EveryOptionSetsItsField) {
    ParseResult r = parse({"sam-run",  "-i",
                           "250",      "-p",
                           "quit",     "-q",
                           "-c",       "-w",
                           "SIGUSR1",  "--restart-burst",
                           "3",        "--restart-delay",
                           "100",      "--restart-delay-max",
                           "800",      "--restart-reset",
                           "5000",     "--max-restarts",
                           "4",        "--restart-window",
                           "60",       "--start-timeout",
                           "900",      "--on-event",
                           "logger x", "--event-timeout",
                           "700",      "--check",
                           "true",     "--check-timeout",
                           "50",       "--notify-socket",
                           "@sock",    "--",
                           "prog",     "--its-own-option"});
    CHECK_TRUE(r.outcome == ParseOutcome::Run);
    const Options &o = r.options;
    LONGS_EQUAL(250, o.interval_ms);
    CHECK_TRUE(o.policy == Policy::Quit);
    CHECK_TRUE(o.quorum);
    CHECK_TRUE(o.cmap);
    LONGS_EQUAL(SIGUSR1, o.warn_signal);
    LONGS_EQUAL(SIGUSR1, o.warn_signal_or_default());
    LONGS_EQUAL(3, *o.restart_burst);
    LONGS_EQUAL(100, *o.restart_delay_ms);
    LONGS_EQUAL(800, *o.restart_delay_max_ms);
    LONGS_EQUAL(5000, *o.restart_reset_ms);
    LONGS_EQUAL(4, *o.max_restarts);
    LONGS_EQUAL(60, o.restart_window_s);
    LONGS_EQUAL(900, *o.start_timeout_ms);
    STRCMP_EQUAL("logger x", o.on_event->c_str());
    LONGS_EQUAL(700, o.event_timeout_ms);
    STRCMP_EQUAL("true", o.check_command->c_str());
    LONGS_EQUAL(50, *o.check_timeout_ms);
    CHECK_TRUE(o.notify); // --notify-socket implies --notify
    STRCMP_EQUAL("@sock", o.notify_socket->c_str());
    LONGS_EQUAL(2, o.command.size());
    STRCMP_EQUAL("--its-own-option", o.command[1].c_str());
}

TEST(Options, TheCommandsOwnOptionsAreNotOursEvenWithoutDashDash) {
    ParseResult r = parse({"sam-run", "-q", "prog", "-q", "--help"});
    CHECK_TRUE(r.outcome == ParseOutcome::Run);
    LONGS_EQUAL(3, r.options.command.size());
}

TEST(Options, HelpVersionAndStatus) {
    CHECK_TRUE(parse({"sam-run", "--help"}).outcome == ParseOutcome::Help);
    CHECK_TRUE(parse({"sam-run", "-h", "--", "x"}).outcome == ParseOutcome::Help);
    CHECK_TRUE(parse({"sam-run", "--version"}).outcome == ParseOutcome::Version);
    ParseResult r = parse({"sam-run", "--status", "--json"});
    CHECK_TRUE(r.outcome == ParseOutcome::Status);
    CHECK_TRUE(r.options.json);
    CHECK_TRUE(parse({"sam-run", "-s"}).outcome == ParseOutcome::Status);
}

namespace {

// A command line and the one message it must get.
struct Rejection {
    std::vector<const char *> words;
    const char *message;
};

void check_all_rejected(const std::vector<Rejection> &cases) {
    for (const Rejection &c : cases) {
        std::string line;
        for (const char *w : c.words) {
            line += std::string(line.empty() ? "" : " ") + "'" + w + "'";
        }
        const ParseResult r = parse(c.words);
        CHECK_TEXT(r.outcome == ParseOutcome::Error, line.c_str());
        STRCMP_EQUAL_TEXT(c.message, r.error.c_str(), line.c_str());
    }
}

const char *const kInterval = "milliseconds, 0 to 2147483647";

std::string interval_message(const char *value) {
    return std::string("invalid value '") + value + "' for --interval: expected " + kInterval;
}

} // namespace

TEST(Options, NumbersAreStrict) {
    for (const char *bad : {"-5", " 5", "+5", "5ms", "0x5", "2147483648", ""}) {
        const ParseResult r = parse({"sam-run", "-i", bad, "--", "x"});
        CHECK_TRUE(r.outcome == ParseOutcome::Error);
        STRCMP_EQUAL(interval_message(bad).c_str(), r.error.c_str());
    }
    CHECK_TRUE(parse({"sam-run", "-i", "2147483647", "--", "x"}).outcome == ParseOutcome::Run);
    CHECK_TRUE(parse({"sam-run", "-i", "0", "--", "x"}).outcome == ParseOutcome::Run);
}

TEST(Options, EveryBadValueMessage) {
    const std::string long_name(101, 'a');
    check_all_rejected({
        {{"sam-run", "-p", "again", "--", "x"}, "invalid value 'again' for --policy: expected 'restart' or 'quit'"},
        {{"sam-run", "-w", "NOPE", "--", "x"},
         "invalid value 'NOPE' for --warn-signal: expected a signal name (TERM, SIGUSR1, ...) or number, not STOP"},
        {{"sam-run", "-w", "STOP", "--", "x"},
         "invalid value 'STOP' for --warn-signal: expected a signal name (TERM, SIGUSR1, ...) or number, not STOP"},
        {{"sam-run", "-w", "0", "--", "x"},
         "invalid value '0' for --warn-signal: expected a signal name (TERM, SIGUSR1, ...) or number, not STOP"},
        {{"sam-run", "--restart-burst", "x", "--", "x"},
         "invalid value 'x' for --restart-burst: expected a number from 0 to 2147483647"},
        {{"sam-run", "--restart-delay", "x", "--", "x"},
         "invalid value 'x' for --restart-delay: expected a number from 0 to 2147483647"},
        {{"sam-run", "--restart-delay-max", "x", "--", "x"},
         "invalid value 'x' for --restart-delay-max: expected a number from 0 to 2147483647"},
        {{"sam-run", "--restart-reset", "x", "--", "x"},
         "invalid value 'x' for --restart-reset: expected a number from 0 to 2147483647"},
        {{"sam-run", "--max-restarts", "-1", "--", "x"},
         "invalid value '-1' for --max-restarts: expected a number from 0 to 2147483647"},
        {{"sam-run", "--max-restarts", "1", "--restart-window", "0", "--", "x"},
         "invalid value '0' for --restart-window: expected seconds, 1 to 1000000000"},
        {{"sam-run", "--max-restarts", "1", "--restart-window", "1000000001", "--", "x"},
         "invalid value '1000000001' for --restart-window: expected seconds, 1 to 1000000000"},
        {{"sam-run", "--start-timeout", "0", "--", "x"},
         "invalid value '0' for --start-timeout: expected milliseconds, 1 to 2147483647"},
        {{"sam-run", "--event-timeout", "0", "--", "x"},
         "invalid value '0' for --event-timeout: expected milliseconds, 1 to 2147483647"},
        {{"sam-run", "--check-timeout", "0", "--", "x"},
         "invalid value '0' for --check-timeout: expected milliseconds, at least 1"},
        {{"sam-run", "--notify-socket", "", "--", "x"},
         "invalid value '' for --notify-socket: expected a socket path or @name of 1 to 100 bytes"},
        {{"sam-run", "-q", "--quorum-loss", "exit", "--", "x"},
         "invalid value 'exit' for --quorum-loss: expected 'wait' or 'give-up'"},
    });
    const ParseResult r = parse({"sam-run", "--notify-socket", long_name.c_str(), "--", "x"});
    CHECK_TRUE(r.outcome == ParseOutcome::Error);
    STRCMP_EQUAL(
        ("invalid value '" + long_name + "' for --notify-socket: expected a socket path or @name of 1 to 100 bytes")
            .c_str(),
        r.error.c_str());
}

TEST(Options, EveryOtherRejection) {
    check_all_rejected({
        {{"sam-run", "--on-event", "", "--", "x"}, "--on-event needs a command"},
        {{"sam-run", "--check", "", "--", "x"}, "--check needs a command"},
        {{"sam-run", "-Z", "--", "x"}, "unknown option '-Z'"},
        {{"sam-run", "--frobnicate", "--", "x"}, "unknown option '--frobnicate'"},
        {{"sam-run", "--interval"}, "option '--interval' needs a value"},
        {{"sam-run", "-i"}, "option '-i' needs a value"},
        {{"sam-run", "--status", "--", "x"}, "--status takes no command"},
        {{"sam-run", "--json", "--", "x"}, "--json is only valid with --status"},
        {{"sam-run"}, "missing command: sam-run [OPTIONS] -- COMMAND [ARGS...]"},
        {{"sam-run", "-q", "--"}, "missing command: sam-run [OPTIONS] -- COMMAND [ARGS...]"},
        {{"sam-run", "--", ""}, "the command name is empty"},
        {{"sam-run", "-i", "0", "--check", "true", "--", "x"},
         "--check needs a health-check interval: --interval must be above 0"},
        {{"sam-run", "--event-timeout", "5", "--", "x"}, "--event-timeout is only valid with --on-event"},
        {{"sam-run", "--restart-window", "5", "--", "x"}, "--restart-window is only valid with --max-restarts"},
        {{"sam-run", "--start-timeout", "5", "--", "x"},
         "--start-timeout needs --check or --notify: without them a running program is healthy"},
        {{"sam-run", "-i", "0", "-n", "--start-timeout", "5", "--", "x"},
         "--start-timeout needs a health-check interval: --interval must be above 0"},
        {{"sam-run", "--check-timeout", "5", "--", "x"}, "--check-timeout is only valid with --check"},
        {{"sam-run", "--quorum-loss", "give-up", "--", "x"}, "--quorum-loss is only valid with --quorum"},
    });
}

TEST(Options, QuorumLoss) {
    CHECK_FALSE(parse({"sam-run", "-q", "--", "x"}).options.quorum_loss_gives_up);
    CHECK_FALSE(parse({"sam-run", "-q", "--quorum-loss", "wait", "--", "x"}).options.quorum_loss_gives_up);
    const ParseResult r = parse({"sam-run", "-q", "--quorum-loss", "give-up", "--", "x"});
    CHECK_TRUE(r.outcome == ParseOutcome::Run);
    CHECK_TRUE(r.options.quorum_loss_gives_up);
}

TEST(Options, ListenAndFdstore) {
    ParseResult r = parse({"sam-run", "-n", "--listen", "tcp:127.0.0.1:8080", "--listen", "unix:/run/x.sock,name=web",
                           "--listen", "@abstract", "--fdstore-max", "10", "--", "x"});
    CHECK_TRUE(r.outcome == ParseOutcome::Run);
    LONGS_EQUAL(3, r.options.listen.size());
    STRCMP_EQUAL("web", r.options.listen[1].name.c_str());
    LONGS_EQUAL(10, r.options.fdstore_max);

    const std::string address = "tcp:HOST:PORT (numeric IPv4 or [IPv6] host, port 1 to 65535), unix:PATH or "
                                "@NAME, optionally followed by ,name=NAME";
    for (const char *bad : {"tcp:127.0.0.1:0", "tcp:127.0.0.1:65536", "tcp:127.0.0.1:+80",
                            "tcp:127.0.0.1:", "tcp:localhost:80", "udp:1.2.3.4:5", "@", ""}) {
        const ParseResult rejected = parse({"sam-run", "--listen", bad, "--", "x"});
        CHECK_TRUE(rejected.outcome == ParseOutcome::Error);
        STRCMP_EQUAL_TEXT(("invalid value '" + std::string(bad) + "' for --listen: expected " + address).c_str(),
                          rejected.error.c_str(), bad);
    }
    check_all_rejected({
        {{"sam-run", "--listen", "@x,name=a:b", "--", "x"},
         "invalid value '@x,name=a:b' for --listen: expected a name of 1 to 255 printable characters without ':'"},
        {{"sam-run", "-n", "--fdstore-max", "1025", "--", "x"},
         "invalid value '1025' for --fdstore-max: expected a number from 0 to 1024"},
        {{"sam-run", "--fdstore-max", "1", "--", "x"},
         "--fdstore-max is only valid with --notify: descriptors are stored with FDSTORE=1"},
    });
    std::vector<std::string> many;
    for (size_t i = 0; i <= kMaxListen; ++i) {
        many.push_back("@s" + std::to_string(i));
    }
    std::vector<const char *> words{"sam-run"};
    for (const std::string &m : many) {
        words.push_back("--listen");
        words.push_back(m.c_str());
    }
    words.push_back("--");
    words.push_back("x");
    check_all_rejected({{words, ("at most " + std::to_string(kMaxListen) + " --listen sockets").c_str()}});
}

TEST(Options, OneParseDoesNotLeakIntoTheNext) {
    check_rejected(parse({"sam-run", "-qZ", "--", "x"}), "unknown option '-Z'");
    ParseResult r = parse({"sam-run", "-c", "--", "x"});
    CHECK_TRUE(r.outcome == ParseOutcome::Run);
    CHECK_FALSE(r.options.quorum);
    CHECK_TRUE(r.options.cmap);
}
