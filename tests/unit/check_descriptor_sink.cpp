// SPDX-License-Identifier: BSD-3-Clause
// check_descriptor_sink.cpp - tests of descriptor_sink.cpp: what is handed
// over gets closed, handing over never blocks, and a sink stuck in a close
// is replaced.
#include <cerrno>
#include <cstring>
#include <vector>

#include <CppUTest/TestHarness.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "descriptor_sink.hpp"

using namespace sam;

namespace {

struct Pipe {
    UniqueFd read_end, write_end;
};

Pipe make_pipe() {
    int p[2];
    CHECK_EQUAL(0, ::pipe2(p, O_CLOEXEC));
    return Pipe{UniqueFd(p[0]), UniqueFd(p[1])};
}

// True once every writer of the pipe is closed, within timeout_ms.
bool sees_eof(int read_end, int timeout_ms) {
    pollfd p{read_end, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1)
        return false;
    char c;
    return ::read(read_end, &c, 1) == 0;
}

// A unix socket whose queue holds the only reference to a TCP socket that
// lingers 8 s on close (full send buffer, a peer that never reads): closing
// the unix socket for the last time blocks for those 8 s. -1 where loopback
// TCP is not available. `peer` keeps the never-reading end open.
int socket_whose_close_lingers(UniqueFd &peer) {
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int small = 4096;
    (void)::setsockopt(listener.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (!listener || ::bind(listener.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::listen(listener.get(), 1) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr *>(&addr), &alen) != 0)
        return -1;
    UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    (void)::setsockopt(c.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    if (!c || ::connect(c.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        return -1;
    peer.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!peer)
        return -1;
    (void)::fcntl(c.get(), F_SETFL, O_NONBLOCK);
    static char junk[65536];
    for (int idle = 0; idle < 50;) {
        if (::send(c.get(), junk, sizeof junk, MSG_NOSIGNAL) > 0) {
            idle = 0;
            continue;
        }
        if (errno != EAGAIN)
            return -1;
        ++idle;
        ::usleep(1000);
    }
    (void)::fcntl(c.get(), F_SETFL, 0);
    const linger lg{1, 8};
    if (::setsockopt(c.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
        return -1;
    // Into the queue of a unix socket, which the sink cannot make lingerless.
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    UniqueFd holder(sv[0]), sender(sv[1]);
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    const int cfd = c.get();
    std::memcpy(CMSG_DATA(cm), &cfd, sizeof cfd);
    if (::sendmsg(sender.get(), &msg, 0) != 1)
        return -1;
    return holder.release();
}

} // namespace

TEST_GROUP(DescriptorSink){};

TEST(DescriptorSink, ClosesWhatItIsHanded) {
    DescriptorSink sink;
    std::vector<Pipe> pipes;
    for (int i = 0; i < 20; ++i) {
        pipes.push_back(make_pipe());
        CHECK_TRUE(sink.dispose(std::move(pipes.back().write_end)));
    }
    for (Pipe &p : pipes)
        CHECK_TRUE(sees_eof(p.read_end.get(), 2000));
}

TEST(DescriptorSink, AStuckSinkIsReplacedAndNothingBlocks) {
    UniqueFd peer;
    const int lingering = socket_whose_close_lingers(peer);
    if (lingering < 0) {
        UT_PRINT("skipped: no loopback TCP here");
        return;
    }
    DescriptorSink sink;
    CHECK_TRUE(sink.dispose(UniqueFd(lingering)));
    // The sink is now stuck for 8 s in that close. Handing over goes on
    // without waiting, and whatever is handed over still gets closed.
    std::vector<Pipe> pipes;
    for (int i = 0; i < 30; ++i) {
        pipes.push_back(make_pipe());
        const uint64_t t0 = monotonic_ns();
        CHECK_TRUE(sink.dispose(std::move(pipes.back().write_end)));
        CHECK_TRUE(monotonic_ns() - t0 < 100ULL * 1000000ULL);
    }
    for (Pipe &p : pipes)
        CHECK_TRUE(sees_eof(p.read_end.get(), 2000));
}
