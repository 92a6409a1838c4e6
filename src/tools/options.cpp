// SPDX-License-Identifier: BSD-3-Clause
// options.cpp - parsing and validation of sam-run's command line.
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "options.hpp"

namespace samrun {

namespace {

enum LongOnly {
    OPT_RESTART_BURST = 256,
    OPT_RESTART_DELAY,
    OPT_RESTART_DELAY_MAX,
    OPT_RESTART_RESET,
    OPT_CHECK_TIMEOUT,
    OPT_MAX_RESTARTS,
    OPT_RESTART_WINDOW,
    OPT_QUORUM_LOSS,
    OPT_START_TIMEOUT,
    OPT_ON_EVENT,
    OPT_EVENT_TIMEOUT,
    OPT_NOTIFY_SOCKET,
    OPT_LISTEN,
    OPT_FDSTORE_MAX,
    OPT_JSON,
    OPT_VERSION,
};

const struct option kLongOptions[] = {
    {"interval", required_argument, nullptr, 'i'},
    {"policy", required_argument, nullptr, 'p'},
    {"quorum", no_argument, nullptr, 'q'},
    {"cmap", no_argument, nullptr, 'c'},
    {"warn-signal", required_argument, nullptr, 'w'},
    {"restart-burst", required_argument, nullptr, OPT_RESTART_BURST},
    {"restart-delay", required_argument, nullptr, OPT_RESTART_DELAY},
    {"restart-delay-max", required_argument, nullptr, OPT_RESTART_DELAY_MAX},
    {"restart-reset", required_argument, nullptr, OPT_RESTART_RESET},
    {"max-restarts", required_argument, nullptr, OPT_MAX_RESTARTS},
    {"restart-window", required_argument, nullptr, OPT_RESTART_WINDOW},
    {"quorum-loss", required_argument, nullptr, OPT_QUORUM_LOSS},
    {"start-timeout", required_argument, nullptr, OPT_START_TIMEOUT},
    {"on-event", required_argument, nullptr, OPT_ON_EVENT},
    {"event-timeout", required_argument, nullptr, OPT_EVENT_TIMEOUT},
    {"check", required_argument, nullptr, 'C'},
    {"check-timeout", required_argument, nullptr, OPT_CHECK_TIMEOUT},
    {"notify", no_argument, nullptr, 'n'},
    {"notify-socket", required_argument, nullptr, OPT_NOTIFY_SOCKET},
    {"listen", required_argument, nullptr, OPT_LISTEN},
    {"fdstore-max", required_argument, nullptr, OPT_FDSTORE_MAX},
    {"status", no_argument, nullptr, 's'},
    {"json", no_argument, nullptr, OPT_JSON},
    {"help", no_argument, nullptr, 'h'},
    {"version", no_argument, nullptr, OPT_VERSION},
    {nullptr, 0, nullptr, 0},
};

// The one strict parser (src/common), at the width the options use.
bool parse_number(const char *text, unsigned long max, unsigned long &out) {
    std::optional<uint64_t> value = parse_decimal(text, max);
    if (!value) {
        return false;
    }
    out = static_cast<unsigned long>(*value);
    return true;
}

std::string bad_value(const char *option, const char *value, const char *expected) {
    return std::string("invalid value '") + value + "' for --" + option + ": expected " + expected;
}

} // namespace

void print_usage(FILE *out) {
    fputs("Usage: sam-run [OPTIONS] -- COMMAND [ARGS...]\n"
          "       sam-run --status [--json]\n"
          "\n"
          "Run COMMAND under corosync's Simple Availability Manager (libsam): restart it\n"
          "or exit with it when it dies or stops answering health checks, optionally only\n"
          "while the cluster is quorate, and publish its state in corosync's cmap.\n"
          "\n"
          "Supervision:\n"
          "  -i, --interval MS          health-check deadline in milliseconds (default 1000;\n"
          "                             0 = only watch that the program is alive)\n"
          "  -p, --policy POLICY        restart (default) or quit, on failure\n"
          "  -q, --quorum               run the program only while the cluster is quorate\n"
          "      --quorum-loss ACTION   after a quorum loss stopped the program: wait\n"
          "                             (default: start it again once quorate) or\n"
          "                             give-up (exit 199; for a cluster manager)\n"
          "  -c, --cmap                 publish state in cmap resources.process.<pid>.*\n"
          "                             and the history in samrun.<pid>.*\n"
          "  -w, --warn-signal SIG      signal sent before the kill when a deadline is\n"
          "                             missed (name or number; default TERM)\n"
          "      --restart-burst N      quick failures restarted without delay (default 3)\n"
          "      --restart-delay MS     first back-off delay, doubled each time (default\n"
          "                             100; 0 disables the back-off)\n"
          "      --restart-delay-max MS longest back-off delay (default 10000)\n"
          "      --restart-reset MS     run time that forgets earlier failures (default\n"
          "                             10000)\n"
          "      --max-restarts N       give up after N restarts (default: unlimited):\n"
          "                             stop, leave cmap state failed, exit 199\n"
          "      --restart-window S     count only restarts within S seconds (default:\n"
          "                             the whole run)\n"
          "      --start-timeout MS     time a starting program has before its first\n"
          "                             health signal (READY=1, a passing check);\n"
          "                             default: the interval\n"
          "\n"
          "Health:\n"
          "  -C, --check CMD            run 'sh -c CMD' every interval; exit 0 = healthy\n"
          "      --check-timeout MS     kill a check still running after MS (default:\n"
          "                             half the interval); a killed check is unhealthy\n"
          "  -n, --notify               offer NOTIFY_SOCKET (systemd notify protocol):\n"
          "                             READY=1 starts health checking, WATCHDOG=1 is a\n"
          "                             health check, STOPPING=1 stops it,\n"
          "                             WATCHDOG=trigger is an immediate failure\n"
          "      --notify-socket PATH   socket path for --notify ('@name' = abstract);\n"
          "                             implies --notify (default: a path in a new\n"
          "                             directory only this user can enter)\n"
          "\n"
          "Sockets (passed as in systemd socket activation: LISTEN_FDS, LISTEN_PID,\n"
          "LISTEN_FDNAMES, descriptors from 3 on):\n"
          "      --listen ADDR[,name=NAME]\n"
          "                             listen on ADDR once, before the first start, and\n"
          "                             pass the socket to every instance: tcp:HOST:PORT\n"
          "                             (numeric IPv4, or [IPv6]), unix:PATH or @NAME\n"
          "                             (abstract); repeatable, at most 64\n"
          "      --fdstore-max N        with --notify: descriptors kept for the next\n"
          "                             instances (FDSTORE=1), at most N (default 64,\n"
          "                             0 = none, up to 1024)\n"
          "\n"
          "Events:\n"
          "      --on-event CMD         run 'sh -c CMD' on each state change (started,\n"
          "                             failed, restarting, gave-up, quorum-lost,\n"
          "                             stopped), facts in SAM_* variables; never delays\n"
          "                             supervision, a failing hook is only logged\n"
          "      --event-timeout MS     kill a hook still running after MS (default 10000)\n"
          "\n"
          "Information:\n"
          "  -s, --status               list the processes supervised on this node (cmap)\n"
          "      --json                 with --status: print JSON\n"
          "  -h, --help                 show this help\n"
          "      --version              show the version\n"
          "\n"
          "Exit status: the program's (its code, or 128+N when killed by signal N; sam-run\n"
          "dies by the same signal), 2 for usage errors, 125 if sam-run itself fails,\n"
          "126 if COMMAND cannot be executed, 127 if it is not found, 199 when\n"
          "--max-restarts or --quorum-loss give-up gave up.\n"
          "See sam-run(8).\n",
          out);
}

ParseResult parse_options(int argc, char **argv) {
    ParseResult result;
    Options &opts = result.options;
    bool help = false;
    bool version = false;
    bool event_timeout_given = false;
    bool quorum_loss_given = false;
    bool fdstore_max_given = false;
    auto fail = [&result](std::string message) {
        result.outcome = ParseOutcome::Error;
        result.error = std::move(message);
        return result;
    };

    opterr = 0; // our own messages, one per error
    optind = 0; // 0, not 1: glibc then also forgets where it was inside a previous "-abc"
    int opt;
    // '+': stop at the first non-option, COMMAND's own options are not ours.
    while ((opt = getopt_long(argc, argv, "+:i:p:qcw:C:nsh", kLongOptions, nullptr)) != -1) {
        unsigned long number = 0;
        switch (opt) {
        case 'i':
            if (!parse_number(optarg, INT_MAX, number)) {
                return fail(bad_value("interval", optarg, "milliseconds, 0 to 2147483647"));
            }
            opts.interval_ms = static_cast<int>(number);
            break;
        case 'p':
            if (strcmp(optarg, "restart") == 0) {
                opts.policy = Policy::Restart;
            } else if (strcmp(optarg, "quit") == 0) {
                opts.policy = Policy::Quit;
            } else {
                return fail(bad_value("policy", optarg, "'restart' or 'quit'"));
            }
            break;
        case 'q':
            opts.quorum = true;
            break;
        case 'c':
            opts.cmap = true;
            break;
        case OPT_QUORUM_LOSS:
            if (strcmp(optarg, "wait") == 0) {
                opts.quorum_loss_gives_up = false;
            } else if (strcmp(optarg, "give-up") == 0) {
                opts.quorum_loss_gives_up = true;
            } else {
                return fail(bad_value("quorum-loss", optarg, "'wait' or 'give-up'"));
            }
            quorum_loss_given = true;
            break;
        case 'w': {
            int sig = parse_signal(optarg);
            if (sig <= 0 || sig == SIGSTOP) {
                return fail(bad_value("warn-signal", optarg, "a signal name (TERM, SIGUSR1, ...) or number, not STOP"));
            }
            opts.warn_signal = sig;
            break;
        }
        case OPT_RESTART_BURST:
        case OPT_RESTART_DELAY:
        case OPT_RESTART_DELAY_MAX:
        case OPT_RESTART_RESET: {
            const char *name = opt == OPT_RESTART_BURST       ? "restart-burst"
                               : opt == OPT_RESTART_DELAY     ? "restart-delay"
                               : opt == OPT_RESTART_DELAY_MAX ? "restart-delay-max"
                                                              : "restart-reset";
            if (!parse_number(optarg, INT_MAX, number)) {
                return fail(bad_value(name, optarg, "a number from 0 to 2147483647"));
            }
            (opt == OPT_RESTART_BURST       ? opts.restart_burst
             : opt == OPT_RESTART_DELAY     ? opts.restart_delay_ms
             : opt == OPT_RESTART_DELAY_MAX ? opts.restart_delay_max_ms
                                            : opts.restart_reset_ms) = number;
            break;
        }
        case OPT_MAX_RESTARTS:
            if (!parse_number(optarg, INT_MAX, number)) {
                return fail(bad_value("max-restarts", optarg, "a number from 0 to 2147483647"));
            }
            opts.max_restarts = number;
            break;
        case OPT_RESTART_WINDOW:
            // Seconds, kept below what milliseconds in 64 bits could hold.
            if (!parse_number(optarg, 1000000000UL, number) || number == 0) {
                return fail(bad_value("restart-window", optarg, "seconds, 1 to 1000000000"));
            }
            opts.restart_window_s = number;
            break;
        case OPT_START_TIMEOUT:
            if (!parse_number(optarg, INT_MAX, number) || number == 0) {
                return fail(bad_value("start-timeout", optarg, "milliseconds, 1 to 2147483647"));
            }
            opts.start_timeout_ms = static_cast<int>(number);
            break;
        case OPT_ON_EVENT:
            if (*optarg == '\0') {
                return fail("--on-event needs a command");
            }
            opts.on_event = optarg;
            break;
        case OPT_EVENT_TIMEOUT:
            if (!parse_number(optarg, INT_MAX, number) || number == 0) {
                return fail(bad_value("event-timeout", optarg, "milliseconds, 1 to 2147483647"));
            }
            opts.event_timeout_ms = static_cast<int>(number);
            event_timeout_given = true;
            break;
        case 'C':
            if (*optarg == '\0') {
                return fail("--check needs a command");
            }
            opts.check_command = optarg;
            break;
        case OPT_CHECK_TIMEOUT:
            if (!parse_number(optarg, INT_MAX, number) || number == 0) {
                return fail(bad_value("check-timeout", optarg, "milliseconds, at least 1"));
            }
            opts.check_timeout_ms = static_cast<int>(number);
            break;
        case 'n':
            opts.notify = true;
            break;
        case OPT_NOTIFY_SOCKET:
            if (*optarg == '\0' || strlen(optarg) > 100) {
                return fail(bad_value("notify-socket", optarg, "a socket path or @name of 1 to 100 bytes"));
            }
            opts.notify = true;
            opts.notify_socket = optarg;
            break;
        case OPT_LISTEN: {
            ListenAddress address;
            std::string expected;
            if (!parse_listen_address(optarg, address, expected)) {
                return fail(bad_value("listen", optarg, expected.c_str()));
            }
            if (opts.listen.size() == kMaxListen) {
                return fail("at most " + std::to_string(kMaxListen) + " --listen sockets");
            }
            opts.listen.push_back(std::move(address));
            break;
        }
        case OPT_FDSTORE_MAX:
            if (!parse_number(optarg, kMaxFdStore, number)) {
                return fail(bad_value("fdstore-max", optarg, "a number from 0 to 1024"));
            }
            opts.fdstore_max = number;
            fdstore_max_given = true;
            break;
        case 's':
            opts.status = true;
            break;
        case OPT_JSON:
            opts.json = true;
            break;
        case 'h':
            help = true;
            break;
        case OPT_VERSION:
            version = true;
            break;
        case ':':
            return fail(std::string("option '") + argv[optind - 1] + "' needs a value");
        default:
            if (optopt != 0) {
                return fail(std::string("unknown option '-") + static_cast<char>(optopt) + "'");
            }
            return fail(std::string("unknown option '") + argv[optind - 1] + "'");
        }
    }
    if (help) {
        result.outcome = ParseOutcome::Help;
        return result;
    }
    if (version) {
        result.outcome = ParseOutcome::Version;
        return result;
    }
    for (int i = optind; i < argc; ++i) {
        opts.command.emplace_back(argv[i]);
    }
    if (opts.status) {
        if (!opts.command.empty()) {
            return fail("--status takes no command");
        }
        result.outcome = ParseOutcome::Status;
        return result;
    }
    if (opts.json) {
        return fail("--json is only valid with --status");
    }
    if (opts.command.empty()) {
        return fail("missing command: sam-run [OPTIONS] -- COMMAND [ARGS...]");
    }
    if (opts.command.front().empty()) {
        return fail("the command name is empty");
    }
    if (opts.check_command && opts.interval_ms == 0) {
        return fail("--check needs a health-check interval: --interval must be above 0");
    }
    if (event_timeout_given && !opts.on_event) {
        return fail("--event-timeout is only valid with --on-event");
    }
    if (quorum_loss_given && !opts.quorum) {
        return fail("--quorum-loss is only valid with --quorum");
    }
    if (opts.restart_window_s != 0 && !opts.max_restarts) {
        return fail("--restart-window is only valid with --max-restarts");
    }
    if (opts.start_timeout_ms && !opts.check_command && !opts.notify) {
        return fail("--start-timeout needs --check or --notify: without them a running program is healthy");
    }
    if (opts.start_timeout_ms && opts.interval_ms == 0) {
        return fail("--start-timeout needs a health-check interval: --interval must be above 0");
    }
    if (fdstore_max_given && !opts.notify) {
        return fail("--fdstore-max is only valid with --notify: descriptors are stored with FDSTORE=1");
    }
    if (opts.check_timeout_ms && !opts.check_command) {
        return fail("--check-timeout is only valid with --check");
    }
    result.outcome = ParseOutcome::Run;
    return result;
}

} // namespace samrun
