// SPDX-License-Identifier: BSD-3-Clause
// check_standby.cpp - tests of standby.cpp: what a wake message gives the
// standby (instance id, warn signal, the data kept, inline or in a memfd),
// what it refuses, and the supervisor's bookkeeping of the process.
#include <csignal>
#include <cstring>
#include <string>

#include <CppUTest/TestHarness.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.hpp"
#include "standby.hpp"
#include "state.hpp"

using namespace sam;

namespace {

std::string data_of(const Library &lib) {
    return std::string(reinterpret_cast<const char *>(lib.data.bytes()), lib.data.size());
}

} // namespace

// A real child stands in for the standby process (the supervisor's side
// needs its pidfd); the test itself plays the standby's side of the channel.
TEST_GROUP(Standby) {
    Library sup;     // the supervisor's state
    Library standby; // the standby's copy
    ChannelPair pair;
    int epoll_fd = -1;
    Standby sb;
    void setup() override {
        CHECK(make_channel_pair(pair));
        epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
        CHECK(epoll_fd >= 0);
    }
    void teardown() override {
        sb.discard(epoll_fd);
        ::close(epoll_fd);
    }
    // The fork: both copies hold the same data from here on.
    void fork_standby(const std::string &data) {
        if (!data.empty()) {
            sup.data.replace(DataBlob::copy_of(data.data(), data.size()));
            standby.data.replace(DataBlob::copy_of(data.data(), data.size()));
        }
        const pid_t pid = ::fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            for (;;)
                ::pause();
        }
        CHECK(sb.adopt(pid, epoll_fd, 7, sup.data.generation()));
        CHECK(sb.waiting());
    }
};

TEST(Standby, UnchangedDataIsKept) {
    fork_standby("at the fork");
    CHECK(sb.wake(pair.supervisor_end.get(), 5, SIGUSR1, sup.data));
    CHECK(standby_wait(pair.instance_end.get(), standby));
    UNSIGNED_LONGS_EQUAL(5, standby.last_instance_id);
    LONGS_EQUAL(SIGUSR1, standby.warn_signal.load());
    STRCMP_EQUAL("at the fork", data_of(standby).c_str());
}

TEST(Standby, ChangedDataGoesInline) {
    fork_standby("at the fork");
    sup.data.replace(DataBlob::copy_of("at the death", 12));
    CHECK(sb.wake(pair.supervisor_end.get(), 2, SIGTERM, sup.data));
    CHECK(standby_wait(pair.instance_end.get(), standby));
    STRCMP_EQUAL("at the death", data_of(standby).c_str());
}

TEST(Standby, DeletedDataIsDeleted) {
    fork_standby("at the fork");
    sup.data.clear();
    CHECK(sb.wake(pair.supervisor_end.get(), 2, SIGTERM, sup.data));
    CHECK(standby_wait(pair.instance_end.get(), standby));
    UNSIGNED_LONGS_EQUAL(0, standby.data.size());
}

TEST(Standby, MediumDataGoesInAMemfd) {
    fork_standby("");
    const std::string big(100000, 'm');
    sup.data.replace(DataBlob::copy_of(big.data(), big.size()));
    CHECK(sb.can_carry(sup.data));
    CHECK(sb.wake(pair.supervisor_end.get(), 3, SIGTERM, sup.data));
    CHECK(standby_wait(pair.instance_end.get(), standby));
    CHECK(data_of(standby) == big);
}

TEST(Standby, LargeChangedDataCannotBeCarried) {
    fork_standby("");
    const std::string big(300 * 1024, 'l');
    sup.data.replace(DataBlob::copy_of(big.data(), big.size()));
    CHECK_FALSE(sb.can_carry(sup.data));
    CHECK_FALSE(sb.wake(pair.supervisor_end.get(), 3, SIGTERM, sup.data));
}

TEST(Standby, RefusesAnythingButAWakeMessage) {
    const unsigned char junk[24] = {1, 2, 3};
    CHECK(::send(pair.supervisor_end.get(), junk, sizeof junk, 0) == static_cast<ssize_t>(sizeof junk));
    CHECK_FALSE(standby_wait(pair.instance_end.get(), standby));
    CHECK(::send(pair.supervisor_end.get(), junk, 3, 0) == 3); // shorter than any header
    CHECK_FALSE(standby_wait(pair.instance_end.get(), standby));
    UNSIGNED_LONGS_EQUAL(0, standby.last_instance_id);
}

TEST(Standby, HangUpEndsTheWait) {
    pair.supervisor_end.reset();
    CHECK_FALSE(standby_wait(pair.instance_end.get(), standby));
}

TEST(Standby, EndedStandbyIsReapedAndDescribed) {
    fork_standby("");
    const pid_t pid = sb.pid();
    CHECK(::kill(pid, SIGKILL) == 0);
    char how[64] = {};
    for (int i = 0; i < 2000 && !sb.reap_ended(epoll_fd, how, sizeof how); ++i)
        ::usleep(1000);
    STRCMP_EQUAL("killed by SIGKILL", how);
    CHECK_FALSE(sb.waiting());
    CHECK(::kill(pid, 0) != 0); // reaped, not a zombie
}

TEST(Standby, RetiredStandbyIsReapedSilently) {
    fork_standby("");
    const pid_t pid = sb.pid();
    sb.retire(epoll_fd);
    CHECK_FALSE(sb.waiting());
    char how[64] = {};
    for (int i = 0; i < 2000 && ::kill(pid, 0) == 0; ++i) {
        CHECK_FALSE(sb.reap_ended(epoll_fd, how, sizeof how)); // never reported as a standby's end
        ::usleep(1000);
    }
    CHECK(::kill(pid, 0) != 0);
}
