// SPDX-License-Identifier: BSD-3-Clause
// check_procfs.cpp - tests of sam-run's /proc readers (src/tools/procfs.hpp):
// a file whose read fails after a successful open (a process that ended in
// between gives ESRCH; a directory gives EISDIR on the same path through the
// code) is reported as "nothing", never thrown, and /proc/PID/stat is parsed
// after the last ')' whatever the command name holds.
#include <string>

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <CppUTest/TestHarness.h>

#include "procfs.hpp"

using namespace samrun;

TEST_GROUP(Procfs){};

TEST(Procfs, ReadErrorAfterOpenIsNothingNotAnException) {
    // open(O_RDONLY) of a directory succeeds and read() fails: the same
    // path as a /proc file whose process was reaped after the open.
    std::optional<std::string> content = read_small_file("/");
    CHECK_FALSE(content.has_value());
}

TEST(Procfs, MissingFileIsNothing) { CHECK_FALSE(read_small_file("/proc/self/no-such-file").has_value()); }

TEST(Procfs, ReadsOwnStatAndFindsParent) {
    std::optional<std::string> stat = read_small_file("/proc/self/stat");
    CHECK_TRUE(stat.has_value());
    std::optional<pid_t> parent = parent_from_stat(*stat);
    CHECK_TRUE(parent.has_value());
    LONGS_EQUAL(getppid(), *parent);
}

TEST(Procfs, ReadStopsAtTheLimit) {
    std::optional<std::string> content = read_small_file("/proc/self/maps", 10);
    CHECK_TRUE(content.has_value());
    LONGS_EQUAL(10, content->size());
}

TEST(Procfs, CommWithParenthesesAndSpaces) {
    std::optional<pid_t> parent = parent_from_stat("42 (a) S 7 (b) R 99 0 0");
    CHECK_TRUE(parent.has_value());
    LONGS_EQUAL(99, *parent);
}

TEST(Procfs, MalformedStatIsNothing) {
    CHECK_FALSE(parent_from_stat("").has_value());
    CHECK_FALSE(parent_from_stat("42 no paren S 1").has_value());
    CHECK_FALSE(parent_from_stat("42 (x)").has_value());
    CHECK_FALSE(parent_from_stat("42 (x) S -5").has_value());
}

TEST(Procfs, StartTimeIsField22AfterTheCommand) {
    // comm may hold spaces and ')': the fields count from the last ')'.
    const std::string stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 3 4 0 0 20 0 1 0 987654 1000 200";
    std::optional<unsigned long long> ticks = start_ticks_from_stat(stat);
    CHECK_TRUE(ticks.has_value());
    LONGLONGS_EQUAL(987654ULL, *ticks);
    CHECK_FALSE(start_ticks_from_stat("42 (a) S 1 42").has_value());
    CHECK_FALSE(start_ticks_from_stat("no parenthesis").has_value());
}

TEST(Procfs, OwnStartTimeIsNotInTheFuture) {
    std::optional<std::string> stat = read_small_file("/proc/self/stat");
    CHECK_TRUE(stat.has_value());
    std::optional<unsigned long long> ticks = start_ticks_from_stat(*stat);
    CHECK_TRUE(ticks.has_value());
    timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    CHECK_TRUE(*ticks / static_cast<unsigned long long>(sysconf(_SC_CLK_TCK)) <=
               static_cast<unsigned long long>(ts.tv_sec));
}
