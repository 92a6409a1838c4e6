// SPDX-License-Identifier: BSD-3-Clause
// test_stall.cpp - nothing an instance chooses can hold the supervisor's loop:
// neither a read of instance memory that the instance stalls (a userfaultfd
// range nobody resolves) nor the close of a
// descriptor the instance sent (a TCP socket that lingers). Each time the
// supervisor must still warn and kill a hung instance on time and answer
// SIGTERM within a second.
//
// The instances here attack like fault-hostile does: they write requests
// straight to their channel socket, with the wire header copied from the
// source, because the library itself never sends such requests.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"
#include "fixture.hpp"

namespace {

constexpr int kT = 300; // health interval, ms

struct WireHeader {
    uint32_t magic;
    uint16_t type;
    uint16_t reserved;
    uint64_t arg;
    uint64_t size;
};
constexpr uint32_t kMagic = 0x53414d31;
constexpr uint16_t kStart = 1, kStoreMemfd = 4, kStoreRemote = 8;

[[noreturn]] void silent_forever() {
    for (;;)
        ::pause();
}

// The instance's end of its channel: its only SOCK_SEQPACKET descriptor.
int channel_fd() {
    DIR *d = ::opendir("/proc/self/fd");
    int found = -1;
    while (dirent *e = d != nullptr ? ::readdir(d) : nullptr) {
        const int fd = std::atoi(e->d_name);
        int type = 0;
        socklen_t len = sizeof type;
        if (e->d_name[0] != '.' && fd != ::dirfd(d) && ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
            type == SOCK_SEQPACKET)
            found = fd;
    }
    if (d != nullptr)
        ::closedir(d);
    return found;
}

bool send_raw(int fd, const WireHeader &h, int pass_fd) {
    iovec iov{const_cast<WireHeader *>(&h), sizeof h};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    return ::sendmsg(fd, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof h);
}

// ---- a userfaultfd range ----

// A userfaultfd that also catches faults taken inside the kernel (as in
// process_vm_readv), or -1: that needs root or vm.unprivileged_userfaultfd.
int open_userfaultfd() {
    int fd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC));
    if (fd < 0) {
        const int dev = ::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
        if (dev >= 0) {
            fd = ::ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
            ::close(dev);
        }
    }
    if (fd < 0)
        return -1;
    uffdio_api api{};
    api.api = UFFD_API;
    if (::ioctl(fd, UFFDIO_API, &api) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// `len` bytes of fresh memory whose first touch waits for a userfaultfd
// handler that never answers. The descriptor stays open (leaked) on purpose;
// with `outlive`, a child keeps it open after this process dies too.
void *unresolved_range(size_t len, bool outlive) {
    const int uffd = open_userfaultfd();
    if (uffd < 0)
        return nullptr;
    if (outlive) {
        const pid_t keeper = ::fork();
        if (keeper == 0)
            silent_forever(); // dies with the test's process group
        if (keeper < 0)
            return nullptr;
    }
    void *p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return nullptr;
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uintptr_t>(p);
    reg.range.len = len;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    return ::ioctl(uffd, UFFDIO_REGISTER, &reg) == 0 ? p : nullptr;
}

// Whether a thread of `pid` waits in the kernel function `where` (its
// wchan), checked until timeout_ms.
bool some_thread_waits_in(pid_t pid, const char *where, int timeout_ms) {
    const uint64_t until = it::now_ns() + it::ms(static_cast<uint64_t>(timeout_ms));
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    do {
        DIR *d = ::opendir(tasks.c_str());
        bool found = false;
        while (dirent *e = d != nullptr ? ::readdir(d) : nullptr) {
            if (e->d_name[0] == '.')
                continue;
            char wchan[128] = {};
            const int fd = ::open((tasks + "/" + e->d_name + "/wchan").c_str(), O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                (void)!::read(fd, wchan, sizeof wchan - 1);
                ::close(fd);
            }
            found = found || std::strcmp(wchan, where) == 0;
        }
        if (d != nullptr)
            ::closedir(d);
        if (found)
            return true;
        (void)::poll(nullptr, 0, 5); // wchan has no event to wait for: look again shortly
    } while (it::now_ns() < until);
    return false;
}

bool userfaultfd_usable(std::string &why) {
    const int fd = open_userfaultfd();
    if (fd < 0) {
        why = std::string("userfaultfd unavailable: ") + std::strerror(errno) +
              " (needs root or vm.unprivileged_userfaultfd=1)";
        return false;
    }
    ::close(fd);
    return true;
}

// Asks the supervisor to copy 64 KiB out of a range nobody will ever resolve.
bool request_stalled_read(bool outlive = false) {
    constexpr size_t kLen = 64 * 1024;
    void *p = unresolved_range(kLen, outlive);
    const int ch = channel_fd();
    if (p == nullptr || ch < 0)
        return false;
    const WireHeader h{kMagic, kStoreRemote, 0, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)), kLen};
    return send_raw(ch, h, -1);
}

// ---- a TCP socket whose close lingers ----

bool loopback_up() {
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    const bool ok =
        s >= 0 && ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags |= IFF_UP, ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
    if (s >= 0)
        ::close(s);
    return ok;
}

// A connected TCP socket with SO_LINGER {1, 8 s} and a full send buffer
// towards a peer that never reads: its last close() waits the whole 8 s for
// a FIN that cannot go out. The peer is held by a child that outlives the
// instance (so the instance's death does not reset the connection).
int lingering_socket() {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int small = 4096;
    (void)::setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 1) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr *>(&addr), &alen) != 0)
        return -1;
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    (void)::setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    if (c < 0 || ::connect(c, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        return -1;
    const int peer = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (peer < 0)
        return -1;
    const pid_t holder = ::fork();
    if (holder == 0) {
        ::close(c);
        silent_forever(); // keeps `peer` open, never reads; dies with the test's process group
    }
    ::close(peer);
    ::close(listener);
    if (holder < 0)
        return -1;
    // Fill everything between us and the peer.
    (void)::fcntl(c, F_SETFL, O_NONBLOCK);
    static char junk[65536];
    for (int idle = 0; idle < 50;) {
        if (::send(c, junk, sizeof junk, MSG_NOSIGNAL) > 0) {
            idle = 0;
            continue;
        }
        if (errno != EAGAIN)
            return -1;
        ++idle;
        ::usleep(1000); // let the loopback deliver what it can, then fill again
    }
    (void)::fcntl(c, F_SETFL, 0);
    const linger lg{1, 8};
    return ::setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0 ? c : -1;
}

char proc_state(pid_t pid) {
    char path[64], buf[512];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    const ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        ::close(fd);
    if (n <= 0)
        return '?';
    buf[n] = '\0';
    const char *paren = std::strrchr(buf, ')');
    return paren != nullptr && paren[1] == ' ' ? paren[2] : '?';
}

enum class Delivery {
    Received, // the socket comes with a request the supervisor reads
    Queued,   // it sits behind a request that gets the instance killed, never read
};

// Hands the supervisor the last reference to a lingering socket. The
// supervisor is held stopped meanwhile, so it cannot receive the socket
// before the instance has closed its own copy: whoever closes last waits.
// Emits "ev=sent ok=0|1" before the supervisor goes on (and kills us).
void send_lingering_socket(Delivery how) {
    const int sock = lingering_socket();
    const int ch = channel_fd();
    const pid_t sup = ::getppid();
    if (sock < 0 || ch < 0 || ::kill(sup, SIGSTOP) != 0) {
        it::emit("ev=sent ok=0");
        return;
    }
    for (int i = 0; i < 2000 && proc_state(sup) != 'T'; ++i)
        ::usleep(1000);
    bool ok = true;
    if (how == Delivery::Queued)
        ok = send_raw(ch, WireHeader{0x5a5a5a5a, kStart, 0, 0, 0}, -1); // bad magic: killed
    const WireHeader h{kMagic, kStoreMemfd, 0, 0, 65536};               // "a sealed memfd": it is not
    ok = ok && send_raw(ch, h, sock);
    ::close(sock);
    it::emit("ev=sent ok=%d", ok ? 1 : 0);
    ::kill(sup, SIGCONT);
}

const char *name_of(Delivery how) { return how == Delivery::Received ? "received" : "queued"; }

} // namespace

PROGRAM_GROUP(Stall){};

// A started instance asks for a store out of a userfaultfd range and then
// hangs: it is warned T after that request and killed T later, and the next
// instance runs (and can store) as usual.
TEST(Stall, StalledRemoteReadKeepsTheHealthDeadline) {
    std::string why;
    if (!userfaultfd_usable(why)) {
        UT_PRINT(("skipped: " + why).c_str());
        return;
    }
    prog.start([] {
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid >= 2) {
            static char data[64 * 1024];
            std::memset(data, 'x', sizeof data);
            it::emit("ev=stored err=%d", static_cast<int>(sam_data_store(data, sizeof data)));
            return 0;
        }
        it::catch_signal(SIGUSR1);
        if (sam_warn_signal_set(SIGUSR1) != CS_OK || sam_start() != CS_OK)
            return 92;
        const uint64_t before = it::now_ns();
        const bool sent = request_stalled_read();
        it::emit("ev=sent ok=%d before=%llu", sent ? 1 : 0, static_cast<unsigned long long>(before));
        silent_forever();
    });
    it::Event sent, warn, reg2, stored;
    REQUIRE(prog.wait_event("sent", 3000, &sent));
    REQUIRE(sent.num("ok") == 1);
    REQUIRE(some_thread_waits_in(prog.pid(), "handle_userfault", 2000));
    REQUIRE(prog.wait_event("signal", 3 * kT + 500, &warn));
    REQUIRE(warn.num("sig") == SIGUSR1 && warn.num("iid") == 1);
    const long long late = (static_cast<long long>(warn.t) - sent.num("before")) / 1000000;
    REQUIRE_MSG(late >= kT && late <= kT + 100, "warned " + std::to_string(late) + " ms after the request");
    REQUIRE(prog.wait_event([](const it::Event &e) { return e.is("reg") && e.num("iid") == 2; }, 3 * kT + 1000, &reg2));
    const long long gap = it::ms_between(warn.t, reg2.t);
    REQUIRE_MSG(gap >= kT - 5 && gap <= kT + 200,
                "instance 2 appeared " + std::to_string(gap) + " ms after the warning");
    REQUIRE(prog.wait_log("sending SIGKILL", 1000));
    REQUIRE(prog.wait_event("stored", 2000, &stored));
    REQUIRE(stored.num("err") == CS_OK);
    REQUIRE(prog.wait_exit(3000).exited);
}

// The same, but a child of the instance keeps the userfaultfd open, so the
// read does not end when the instance is killed: the supervisor says so,
// starts the next instance anyway, and that one's medium store goes through
// a memfd while the old read is still blocked.
TEST(Stall, StalledReadOutlivingItsInstanceDoesNotStopRestarts) {
    std::string why;
    if (!userfaultfd_usable(why)) {
        UT_PRINT(("skipped: " + why).c_str());
        return;
    }
    prog.start([] {
        const it::Registration reg = it::register_instance(kT, SAM_RECOVERY_POLICY_RESTART);
        if (!reg)
            return reg.exit_status;
        const unsigned iid = reg.iid;
        if (iid >= 2) {
            static char data[64 * 1024], back[64 * 1024];
            std::memset(data, 'x', sizeof data);
            const cs_error_t s = sam_data_store(data, sizeof data);
            const cs_error_t r = sam_data_restore(back, sizeof back);
            it::emit("ev=stored err=%d restore=%d same=%d", static_cast<int>(s), static_cast<int>(r),
                     std::memcmp(data, back, sizeof data) == 0 ? 1 : 0);
            return 0;
        }
        if (sam_start() != CS_OK)
            return 92;
        it::emit("ev=sent ok=%d", request_stalled_read(/*outlive=*/true) ? 1 : 0);
        silent_forever(); // killed by the warn signal (SIGTERM) at the deadline
    });
    it::Event sent, reg2, stored;
    REQUIRE(prog.wait_event("sent", 3000, &sent));
    REQUIRE(sent.num("ok") == 1);
    REQUIRE(prog.wait_event([](const it::Event &e) { return e.is("reg") && e.num("iid") == 2; }, 3 * kT + 1000, &reg2));
    const long long gap = it::ms_between(sent.t, reg2.t);
    REQUIRE_MSG(gap <= 2 * kT + 300, "instance 2 appeared " + std::to_string(gap) + " ms after the request");
    REQUIRE(prog.wait_log("still blocked; starting instance 2 anyway", 1000));
    REQUIRE(prog.wait_event("stored", 2000, &stored));
    REQUIRE(stored.num("err") == CS_OK && stored.num("restore") == CS_OK && stored.num("same") == 1);
    REQUIRE_EXIT(prog.wait_exit(3000), 0);
}

// While such a read waits, SIGTERM to the supervisor still reaches the
// instance, and the supervisor ends with it, within a second.
TEST(Stall, StalledRemoteReadStillAnswersSigterm) {
    std::string why;
    if (!userfaultfd_usable(why)) {
        UT_PRINT(("skipped: " + why).c_str());
        return;
    }
    prog.start([] {
        if (sam_initialize(kT, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
            return 90;
        unsigned iid = 0;
        if (sam_register(&iid) != CS_OK)
            return 91;
        it::emit("ev=sent ok=%d", request_stalled_read() ? 1 : 0);
        silent_forever();
    });
    it::Event sent;
    REQUIRE(prog.wait_event("sent", 3000, &sent));
    REQUIRE(sent.num("ok") == 1);
    // The supervisor (one of its threads) is inside the read.
    REQUIRE(some_thread_waits_in(prog.pid(), "handle_userfault", 2000));
    const uint64_t t0 = it::now_ns();
    ::kill(prog.pid(), SIGTERM);
    const it::Exit x = prog.wait_exit(1000);
    REQUIRE_MSG(x.exited, "the supervisor did not end within 1 s of SIGTERM");
    REQUIRE_KILLED(x, SIGTERM);
    REQUIRE(prog.log().find("forwarding SIGTERM") != std::string::npos);
    UT_PRINT(("supervisor ended " + std::to_string((it::now_ns() - t0) / 1000000) + " ms after SIGTERM").c_str());
}

// An instance hands its supervisor the last reference to a socket whose
// close lingers for 8 s; it is killed as hostile, and the next instance,
// which hangs, is still warned T after it started.
TEST(Stall, LingeringSocketKeepsTheHealthDeadline) {
    for (const Delivery how : {Delivery::Received, Delivery::Queued}) {
        it::Program p;
        p.start([how] {
            if (::unshare(CLONE_NEWNET) != 0 || !loopback_up())
                return 89;
            if (sam_initialize(kT, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
                return 90;
            unsigned iid = 0;
            if (sam_register(&iid) != CS_OK)
                return 91;
            it::set_instance_id(iid);
            if (iid == 1) {
                send_lingering_socket(how);
                silent_forever();
            }
            it::catch_signal(SIGUSR1);
            if (sam_warn_signal_set(SIGUSR1) != CS_OK || sam_start() != CS_OK)
                return 92;
            it::emit("ev=started iid=%u", iid);
            silent_forever();
        });
        it::Event sent, started, warn;
        REQUIRE_MSG(p.wait_event("sent", 5000, &sent), p.transcript());
        REQUIRE_MSG(sent.num("ok") == 1, p.transcript());
        const bool on_time = p.wait_event("started", 1000, &started) && p.wait_event("signal", kT + 500, &warn);
        const std::string seen = p.transcript();
        p.cleanup();
        REQUIRE_MSG(on_time,
                    std::string(name_of(how)) + ": the next instance was not started and warned in time" + seen);
        const long long late = it::ms_between(started.t, warn.t);
        REQUIRE_MSG(warn.num("iid") == 2 && late >= kT - 5 && late <= kT + 100,
                    std::string(name_of(how)) + ": warned " + std::to_string(late) + " ms after the start" + seen);
        REQUIRE_MSG(seen.find("not a sealed memfd") != std::string::npos || seen.find("malformed") != std::string::npos,
                    std::string(name_of(how)) + ": the sender was not treated as hostile" + seen);
    }
}

// The same socket, and SIGTERM right after: the supervisor ends within 1 s.
TEST(Stall, LingeringSocketStillAnswersSigterm) {
    for (const Delivery how : {Delivery::Received, Delivery::Queued}) {
        it::Program p;
        p.start([how] {
            if (::unshare(CLONE_NEWNET) != 0 || !loopback_up())
                return 89;
            if (sam_initialize(kT, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
                return 90;
            unsigned iid = 0;
            if (sam_register(&iid) != CS_OK)
                return 91;
            if (iid == 1)
                send_lingering_socket(how);
            silent_forever();
        });
        it::Event sent;
        REQUIRE_MSG(p.wait_event("sent", 5000, &sent), p.transcript());
        REQUIRE_MSG(sent.num("ok") == 1, p.transcript());
        // The supervisor has the socket (or the queue holding it) once it
        // says why it killed the sender.
        const bool judged = p.wait_log("sending SIGKILL", 2000);
        ::kill(p.pid(), SIGTERM);
        const it::Exit x = p.wait_exit(1000);
        const std::string seen = p.transcript();
        p.cleanup();
        REQUIRE_MSG(judged, std::string(name_of(how)) + ": the sender was not killed" + seen);
        REQUIRE_MSG(x.exited, std::string(name_of(how)) + ": the supervisor did not end within 1 s of SIGTERM" + seen);
    }
}
