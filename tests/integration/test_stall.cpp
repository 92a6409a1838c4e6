// test_stall.cpp - nothing an instance chooses can hold the supervisor's loop:
// not a read of instance memory that the instance stalls (a userfaultfd range
// nobody resolves). The supervisor must still warn and kill a hung instance
// on time and answer SIGTERM within a second.
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
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.hpp"

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

volatile sig_atomic_t g_iid = 0;
void record_signal(int sig) { it::emit_signal(sig, static_cast<unsigned>(g_iid)); }

void catch_signal(int sig) {
    struct sigaction sa {};
    sa.sa_handler = record_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    (void)::sigaction(sig, &sa, nullptr);
}

[[noreturn]] void silent_forever() {
    for (;;)
        ::pause();
}

bool killed_by(const it::Exit &x, int sig) { return x.exited && WIFSIGNALED(x.status) && WTERMSIG(x.status) == sig; }

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
// handler that never answers. The descriptor stays open (leaked) on purpose.
void *unresolved_range(size_t len) {
    const int uffd = open_userfaultfd();
    if (uffd < 0)
        return nullptr;
    void *p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return nullptr;
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uintptr_t>(p);
    reg.range.len = len;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    return ::ioctl(uffd, UFFDIO_REGISTER, &reg) == 0 ? p : nullptr;
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
bool request_stalled_read() {
    constexpr size_t kLen = 64 * 1024;
    void *p = unresolved_range(kLen);
    const int ch = channel_fd();
    if (p == nullptr || ch < 0)
        return false;
    const WireHeader h{kMagic, kStoreRemote, 0, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)), kLen};
    return send_raw(ch, h, -1);
}

} // namespace

TEST_GROUP(Stall) {
    it::Program prog;
    void teardown() override { prog.cleanup(); }
};

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
        if (sam_initialize(kT, SAM_RECOVERY_POLICY_RESTART) != CS_OK)
            return 90;
        unsigned iid = 0;
        if (sam_register(&iid) != CS_OK)
            return 91;
        g_iid = static_cast<sig_atomic_t>(iid);
        it::emit("ev=reg iid=%u", iid);
        if (iid >= 2) {
            static char data[64 * 1024];
            std::memset(data, 'x', sizeof data);
            it::emit("ev=stored err=%d", static_cast<int>(sam_data_store(data, sizeof data)));
            return 0;
        }
        catch_signal(SIGUSR1);
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
    REQUIRE(prog.wait_event("signal", 3 * kT + 500, &warn));
    REQUIRE(warn.num("sig") == SIGUSR1 && warn.num("iid") == 1);
    const long long late = (static_cast<long long>(warn.t) - sent.num("before")) / 1000000;
    REQUIRE_MSG(late >= kT && late <= kT + 100, "warned " + std::to_string(late) + " ms after the request");
    REQUIRE(prog.wait_event([](const it::Event &e) { return e.is("reg") && e.num("iid") == 2; }, 3 * kT + 1000, &reg2));
    const long long gap = (static_cast<long long>(reg2.t) - static_cast<long long>(warn.t)) / 1000000;
    REQUIRE_MSG(gap >= kT - 5 && gap <= kT + 200,
                "instance 2 appeared " + std::to_string(gap) + " ms after the warning");
    REQUIRE(prog.wait_log("sending SIGKILL", 1000));
    REQUIRE(prog.wait_event("stored", 2000, &stored));
    REQUIRE(stored.num("err") == CS_OK);
    REQUIRE(prog.wait_exit(3000).exited);
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
    // Give the supervisor time to be inside the read.
    REQUIRE(!prog.wait_log("sending SIGKILL", 100));
    const uint64_t t0 = it::now_ns();
    ::kill(prog.pid(), SIGTERM);
    const it::Exit x = prog.wait_exit(1000);
    REQUIRE_MSG(x.exited, "the supervisor did not end within 1 s of SIGTERM");
    REQUIRE_MSG(killed_by(x, SIGTERM), it::describe_status(x.status));
    REQUIRE(prog.log().find("forwarding SIGTERM") != std::string::npos);
    UT_PRINT(("supervisor ended " + std::to_string((it::now_ns() - t0) / 1000000) + " ms after SIGTERM").c_str());
}
