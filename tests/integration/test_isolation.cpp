// SPDX-License-Identifier: BSD-3-Clause
// test_isolation.cpp - what an instance inherits of corosync (nothing), what
// a stopped corosync can do to a supervisor (not delay it), and that a
// QUORUM instance never starts on an inquorate node, and that a state
// asked for as corosync dies is the one republished (run inside
// tests/corosync/with-corosync.sh).
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <corosync/cmap.h>

#include "checks.hpp"
#include "corosync_fixture.hpp"
#include "script.hpp"

namespace {

using it::kCmapQuit;
using it::kCmapRestart;
using it::kQuorumCmapRestart;

// Inodes of the sockets among a process's descriptors.
std::set<unsigned long> socket_inodes(pid_t pid) {
    std::set<unsigned long> out;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR *d = ::opendir(dir.c_str());
    if (d == nullptr)
        return out;
    while (dirent *e = ::readdir(d)) {
        char target[128];
        const std::string path = dir + "/" + e->d_name;
        const ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        unsigned long inode = 0;
        if (std::sscanf(target, "socket:[%lu]", &inode) == 1)
            out.insert(inode);
    }
    ::closedir(d);
    return out;
}

// inode -> peer inode of every connected unix socket of this network
// namespace (sock_diag; /proc/net/unix does not show peers).
std::map<unsigned long, unsigned long> unix_peers() {
    std::map<unsigned long, unsigned long> peers;
    const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return peers;
    struct {
        nlmsghdr nlh;
        unix_diag_req req;
    } q{};
    q.nlh.nlmsg_len = sizeof q;
    q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    q.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    q.req.sdiag_family = AF_UNIX;
    q.req.udiag_states = ~0U;
    q.req.udiag_show = UDIAG_SHOW_PEER;
    if (::send(fd, &q, sizeof q, 0) != static_cast<ssize_t>(sizeof q)) {
        ::close(fd);
        return peers;
    }
    alignas(nlmsghdr) char buf[32768];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        for (auto *h = reinterpret_cast<nlmsghdr *>(buf); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                ::close(fd);
                return peers;
            }
            auto *m = static_cast<unix_diag_msg *>(NLMSG_DATA(h));
            int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
            for (auto *a = reinterpret_cast<rtattr *>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len))
                if (a->rta_type == UNIX_DIAG_PEER)
                    peers[m->udiag_ino] = *static_cast<uint32_t *>(RTA_DATA(a));
        }
    }
    ::close(fd);
    return peers;
}

// How many of `pid`'s sockets are connected to a socket `other` holds.
int sockets_connected_to(pid_t pid, pid_t other) {
    const std::set<unsigned long> theirs = socket_inodes(other);
    const auto peers = unix_peers();
    int n = 0;
    for (unsigned long inode : socket_inodes(pid)) {
        auto it = peers.find(inode);
        if (it != peers.end() && theirs.count(it->second) != 0)
            ++n;
    }
    return n;
}

int qb_maps(pid_t pid) {
    FILE *f = std::fopen(("/proc/" + std::to_string(pid) + "/maps").c_str(), "re");
    if (f == nullptr)
        return -1;
    int n = 0;
    char line[1024];
    while (std::fgets(line, sizeof line, f) != nullptr)
        if (std::strstr(line, "/qb-") != nullptr)
            ++n;
    std::fclose(f);
    return n;
}

// The children of a process (all its threads').
std::set<pid_t> children_of(pid_t pid) {
    std::set<pid_t> out;
    const std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR *d = ::opendir(dir.c_str());
    if (d == nullptr)
        return out;
    while (dirent *e = ::readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        FILE *f = std::fopen((dir + "/" + e->d_name + "/children").c_str(), "re");
        if (f == nullptr)
            continue;
        int c;
        while (std::fscanf(f, "%d", &c) == 1)
            out.insert(static_cast<pid_t>(c));
        std::fclose(f);
    }
    ::closedir(d);
    return out;
}

int thread_count(pid_t pid) {
    int n = 0;
    DIR *d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
    if (d == nullptr)
        return -1;
    while (dirent *e = ::readdir(d))
        if (e->d_name[0] != '.')
            ++n;
    ::closedir(d);
    return n;
}

std::string comm_of(pid_t pid) {
    FILE *f = std::fopen(("/proc/" + std::to_string(pid) + "/comm").c_str(), "re");
    if (f == nullptr)
        return "";
    char name[64] = "";
    if (std::fgets(name, sizeof name, f) == nullptr)
        name[0] = '\0';
    std::fclose(f);
    std::string n(name);
    while (!n.empty() && n.back() == '\n')
        n.pop_back();
    return n;
}

// The supervisor's link process (named sam-link), other than `not_this`;
// -1 if there is none before the deadline.
pid_t wait_link(pid_t supervisor, pid_t not_this, int timeout_ms) {
    const uint64_t deadline = it::now_ns() + it::ms(static_cast<uint64_t>(timeout_ms));
    for (;;) {
        for (pid_t c : children_of(supervisor))
            if (c != not_this && comm_of(c) == "sam-link" && !it::process_gone(c))
                return c;
        if (it::now_ns() >= deadline)
            return -1;
        ::usleep(5000);
    }
}

// A duplicate of the link's end of its socket to the supervisor (the one
// SOCK_SEQPACKET socket it holds; corosync's are of other types), so that a
// test can see a request waiting for the link; -1 when there is none.
int link_request_socket(pid_t link) {
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, link, 0));
    if (pidfd < 0)
        return -1;
    int found = -1;
    const std::string dir = "/proc/" + std::to_string(link) + "/fd";
    DIR *d = ::opendir(dir.c_str());
    for (dirent *e = d ? ::readdir(d) : nullptr; e != nullptr; e = ::readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        const int fd = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, std::atoi(e->d_name), 0));
        int type = 0;
        socklen_t len = sizeof type;
        if (fd >= 0 && found < 0 && ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET) {
            found = fd;
            continue;
        }
        if (fd >= 0)
            ::close(fd);
    }
    if (d)
        ::closedir(d);
    ::close(pidfd);
    return found;
}

// corosync stopped with SIGSTOP for the scope; SIGCONT whatever happens.
class Frozen {
  public:
    Frozen() : pid_(it::corosync_pid()) {
        if (pid_ > 0)
            (void)::kill(pid_, SIGSTOP);
    }
    ~Frozen() { thaw(); }
    Frozen(const Frozen &) = delete;
    Frozen &operator=(const Frozen &) = delete;
    [[nodiscard]] bool ok() const { return pid_ > 0; }
    void thaw() {
        if (pid_ > 0)
            (void)::kill(pid_, SIGCONT);
        pid_ = -1;
    }

  private:
    pid_t pid_;
};

// A busy loop on the other CPU for the scope, at the lowest priority.
class CpuHog {
  public:
    CpuHog() {
        pid_ = ::fork();
        if (pid_ == 0) {
            (void)::setpriority(PRIO_PROCESS, 0, 19);
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(1, &one);
            (void)::sched_setaffinity(0, sizeof one, &one);
            for (volatile unsigned long i = 0;; ++i) {
            }
        }
    }
    ~CpuHog() {
        if (pid_ > 0) {
            (void)::kill(pid_, SIGKILL);
            (void)::waitpid(pid_, nullptr, 0);
        }
    }
    CpuHog(const CpuHog &) = delete;
    CpuHog &operator=(const CpuHog &) = delete;

  private:
    pid_t pid_ = -1;
};

} // namespace

COROSYNC_GROUP(Isolation){};

// An instance under CMAP and QUORUM holds nothing of corosync: no libqb
// shared-memory ring in its address space, no socket whose peer is
// corosync's. (Some process of the supervisor does: the check can see it.)
// The supervisor itself has no thread besides its loop.
TEST(Isolation, InstanceInheritsNothingOfCorosync) {
    it::Script s;
    s.interval_ms = 500;
    s.policy = kQuorumCmapRestart;
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); });
    it::Event started;
    REQUIRE(prog.wait_event("started", 5000, &started));
    REQUIRE(started.num("err") == CS_OK);
    const pid_t instance = started.pid;
    const pid_t corosync = it::corosync_pid();
    REQUIRE(corosync > 0);

    prog.send("qbmaps");
    it::Event maps;
    REQUIRE(prog.wait_event("qbmaps", 5000, &maps));
    REQUIRE_MSG(maps.num("n") == 0, "the instance maps libqb's rings: " + maps.text);
    REQUIRE_MSG(qb_maps(instance) == 0, "qb- mappings in /proc/PID/maps of the instance");
    const int to_corosync = sockets_connected_to(instance, corosync);
    REQUIRE_MSG(to_corosync == 0, std::to_string(to_corosync) + " sockets of the instance lead to corosync");

    // The supervisor's side does talk to corosync (through its link), so
    // the two checks above would have seen a connection.
    int seen = qb_maps(prog.pid()) + sockets_connected_to(prog.pid(), corosync);
    for (pid_t c : children_of(prog.pid()))
        if (c != instance)
            seen += qb_maps(c) + sockets_connected_to(c, corosync);
    REQUIRE_MSG(seen > 0, "no process of the program is connected to corosync");
    // ThreadSanitizer's runtime adds a thread of its own to every process.
    const int ours = it::kUnderTsan ? 2 : 1;
    REQUIRE_MSG(thread_count(prog.pid()) == ours, "supervisor threads: " + std::to_string(thread_count(prog.pid())));
    const pid_t link = wait_link(prog.pid(), -1, 0);
    REQUIRE_MSG(link > 0 && thread_count(link) <= ours, "link threads: " + std::to_string(thread_count(link)));
}

// An instance that writes wildly through every shared mapping it can write
// (its own heartbeat page excepted) harms neither the supervisor nor
// corosync: both live on, the keys are still written, and the next instance
// is supervised.
TEST(Isolation, ScribblingInstanceHarmsNobody) {
    const pid_t corosync = it::corosync_pid();
    REQUIRE(corosync > 0);
    it::Script s;
    s.interval_ms = 500;
    s.policy = kQuorumCmapRestart;
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); });
    REQUIRE(prog.wait_event("started", 5000));
    prog.send("scribble");
    it::Event scribbled;
    REQUIRE(prog.wait_event("scribbled", 5000, &scribbled));
    prog.send("exit 1"); // a failure: the supervisor restarts it
    it::Event started2;
    REQUIRE_MSG(
        prog.wait_event([](const it::Event &e) { return e.is("started") && e.num("iid") == 2; }, 5000, &started2),
        "no second instance after the scribbling one (" + scribbled.text + ")");
    REQUIRE(started2.num("err") == CS_OK);
    REQUIRE(!it::process_gone(prog.pid()));
    REQUIRE_MSG(it::corosync_pid() == corosync && !it::process_gone(corosync), "corosync died");
    std::string last;
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafState), "running", 3000, &last), last);
    uint64_t stamp = 0;
    REQUIRE(cmap.wait_u64_above(it::process_key(prog.pid(), it::kLeafLastUpdated), 0, 2000, &stamp));
    REQUIRE_MSG(cmap.wait_u64_above(it::process_key(prog.pid(), it::kLeafLastUpdated), stamp, 2000),
                "last_updated no longer advances");
}

// The link process killed: the supervisor starts another at once, which
// republishes the keys and keeps last_updated moving; the QUORUM instance
// is not disturbed (the new link answers long before corosync would count
// as unavailable).
TEST(Isolation, LinkRestartedAfterItDies) {
    it::Script s;
    s.interval_ms = 500;
    s.policy = kQuorumCmapRestart;
    s.warn_signal = SIGUSR1;
    s.record = {SIGUSR1};
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); });
    REQUIRE(prog.wait_event("started", 5000));
    const pid_t link = wait_link(prog.pid(), -1, 0);
    REQUIRE_MSG(link > 0, "no sam-link child of the supervisor");
    REQUIRE(::kill(link, SIGKILL) == 0);
    const pid_t successor = wait_link(prog.pid(), link, 2000);
    REQUIRE_MSG(successor > 0, "no new link 2 s after the first was killed");
    REQUIRE(prog.wait_log("ended; restarting it", 1000));
    std::string last;
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafState), "running", 3000, &last), last);
    uint64_t stamp = 0;
    REQUIRE(cmap.wait_u64_above(it::process_key(prog.pid(), it::kLeafLastUpdated), 0, 2000, &stamp));
    REQUIRE_MSG(cmap.wait_u64_above(it::process_key(prog.pid(), it::kLeafLastUpdated), stamp, 2000),
                "last_updated no longer advances");
    // Longer than the 2 s a quorum question may stay unanswered: a
    // measurement window, not a wait.
    REQUIRE(!prog.wait_event("signal", 2500));
    REQUIRE(prog.events_of("reg").size() == 1);
    REQUIRE(!prog.wait_log("does not answer", 0));
}

// corosync dies while a start is on its way to the link, which has not
// noticed yet: the link writes the state before it reads corosync's
// hang-up. The state asked for must be the one republished when corosync
// is back, since sam_start then reports success.
COROSYNC_GROUP(LinkRace) {
    pid_t link = -1;
    int link_sock = -1;
    void teardown() override {
        if (link > 0)
            (void)::kill(link, SIGCONT);
        if (link_sock >= 0)
            ::close(link_sock);
        it::CorosyncGroup::teardown();
    }
};

TEST(LinkRace, StateAskedAsCorosyncDiesIsRepublished) {
    it::Script s;
    s.interval_ms = 500;
    s.policy = kCmapRestart;
    prog.start([s] { return it::run_script(s); });
    REQUIRE(prog.wait_event("reg", 5000));
    link = wait_link(prog.pid(), -1, 2000);
    REQUIRE_MSG(link > 0, "no sam-link child of the supervisor");
    link_sock = link_request_socket(link);
    REQUIRE_MSG(link_sock >= 0, "cannot find the link's socket to the supervisor");
    REQUIRE(::kill(link, SIGSTOP) == 0);
    REQUIRE(it::ctl("kill 10") == 0);
    prog.send("start");
    pollfd p{link_sock, POLLIN, 0};
    REQUIRE_MSG(::poll(&p, 1, 3000) == 1, "the start never reached the link");
    REQUIRE(::kill(link, SIGCONT) == 0);
    REQUIRE(prog.wait_log("will be written when it is back", 3000));
    REQUIRE(it::ctl("start") == 0);
    it::Event started;
    REQUIRE(prog.wait_event("started", 8000, &started));
    REQUIRE_MSG(started.num("err") == CS_OK, started.text);
    std::string last;
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafState), "running", 3000, &last),
                "sam_start succeeded but cmap shows state \"" + last + "\"");
}

COROSYNC_GROUP(Frozen){};

// corosync stopped (SIGSTOP): sam_stop() with CMAP gives up after 5 s with
// CS_ERR_TIMEOUT (the instance stays started); a hung instance is still
// warned and killed on time and its successor supervised; once corosync
// runs again the keys show the truth and last_updated moves.
TEST(Frozen, StopTimesOutAndDeadlinesHold) {
    it::Script s;
    s.interval_ms = 500;
    s.hc_period_ms = 100;
    s.policy = kCmapRestart;
    s.warn_signal = SIGUSR1;
    s.record = {SIGUSR1};
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); });
    REQUIRE(prog.wait_event("started", 5000));
    std::string last;
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafState), "running", 3000, &last), last);
    cmap.close(); // a cmap call of ours would block too

    Frozen frozen;
    REQUIRE(frozen.ok());
    const uint64_t asked = it::now_ns();
    prog.send("stop");
    it::Event stopped;
    REQUIRE(prog.wait_event("stopped", 8000, &stopped));
    const uint64_t waited_ms = (stopped.t - asked) / 1000000ULL;
    REQUIRE_MSG(stopped.num("err") == CS_ERR_TIMEOUT, stopped.text);
    REQUIRE_MSG(waited_ms >= 4900 && waited_ms < 5500, "sam_stop returned after " + std::to_string(waited_ms) + " ms");
    std::fprintf(stderr, "\nmeasured: sam_stop returned CS_ERR_TIMEOUT after %llu ms\n",
                 static_cast<unsigned long long>(waited_ms));

    // Still started: stop beating. Warned T after the last beat, killed T
    // later, and the successor forked at most 500 ms after that.
    prog.send("hang");
    it::Event hung, warned, reg2;
    REQUIRE(prog.wait_event("hung", 2000, &hung));
    REQUIRE(prog.wait_event("signal", 2000, &warned));
    REQUIRE(warned.num("sig") == SIGUSR1 && warned.num("iid") == 1);
    const uint64_t warn_ms = (warned.t - hung.t) / 1000000ULL;
    REQUIRE_MSG(warn_ms < 700, "warned " + std::to_string(warn_ms) + " ms after the instance hung");
    REQUIRE(prog.wait_event([](const it::Event &e) { return e.is("reg") && e.num("iid") == 2; }, 3000, &reg2));
    const uint64_t reg_ms = (reg2.t - hung.t) / 1000000ULL;
    REQUIRE_MSG(reg_ms < 1900, "next instance " + std::to_string(reg_ms) + " ms after the instance hung");
    REQUIRE(!it::process_gone(prog.pid()));

    // The successor's sam_start() (auto_start) waits for its state write.
    frozen.thaw();
    it::Event started2;
    REQUIRE(prog.wait_event("started", 6000, &started2));
    REQUIRE_MSG(started2.num("err") == CS_OK && started2.num("iid") == 2, started2.text);
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafState), "running", 3000, &last),
                "state after corosync continued: " + last);
    REQUIRE_MSG(cmap.wait_string(it::process_key(prog.pid(), it::kLeafRecovery), "restart", 1000, &last), last);
    uint64_t stamp = 0;
    REQUIRE(cmap.wait_u64_above(it::process_key(prog.pid(), it::kLeafLastUpdated), 0, 2000, &stamp));
    REQUIRE(cmap.wait_u64_above(it::process_key(prog.pid(), it::kLeafLastUpdated), stamp, 2000));
}

// corosync stopped: the link's quorum questions go unanswered, so corosync
// counts as unavailable and a QUORUM instance is warned and killed as on
// quorum loss; its successor waits, and starts once corosync runs again.
TEST(Frozen, QuorumInstanceWarnedWhileCorosyncDoesNotAnswer) {
    it::Script s;
    s.interval_ms = 500;
    s.policy = SAM_RECOVERY_POLICY_QUORUM_RESTART;
    s.warn_signal = SIGUSR1;
    s.record = {SIGUSR1};
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); });
    REQUIRE(prog.wait_event("started", 5000));
    Frozen frozen;
    REQUIRE(frozen.ok());
    const uint64_t stopped_at = it::now_ns();
    it::Event warned, starting2;
    // A question every second, unanswered for 2 s: warned within about 3 s.
    REQUIRE(prog.wait_event("signal", 4500, &warned));
    REQUIRE(warned.num("sig") == SIGUSR1 && warned.num("iid") == 1);
    REQUIRE_MSG(warned.t - stopped_at < it::ms(3500),
                "warned " + std::to_string((warned.t - stopped_at) / 1000000) + " ms after corosync stopped");
    REQUIRE(prog.wait_log("does not answer", 0));
    REQUIRE(
        prog.wait_event([](const it::Event &e) { return e.is("starting") && e.num("iid") == 2; }, 3000, &starting2));
    REQUIRE(prog.events_of("started").size() == 1); // the successor waits
    frozen.thaw();
    it::Event started2;
    REQUIRE(prog.wait_event("started", 5000, &started2));
    REQUIRE_MSG(started2.num("iid") == 2 && started2.num("err") == CS_OK, started2.text);
}

// corosync stopped: a QUIT instance's death ends its supervisor within 1 s
// (exit status passed on), and SIGTERM to another supervisor is forwarded
// and ends it within 1 s.
TEST(Frozen, ExitAndStopSignalWithinOneSecond) {
    it::Script q;
    q.interval_ms = 500;
    q.hc_period_ms = 100;
    q.policy = kCmapQuit;
    q.auto_start = true;
    it::Script r = q;
    r.policy = kCmapRestart;
    prog.start([q] { return it::run_script(q); });
    other.start([r] { return it::run_script(r); });
    REQUIRE(prog.wait_event("started", 5000));
    if (!other.wait_event("started", 5000))
        FAIL(other.transcript().c_str());
    std::string last;
    for (pid_t sup : {prog.pid(), other.pid()})
        REQUIRE_MSG(cmap.wait_string(it::process_key(sup, it::kLeafState), "running", 3000, &last), last);
    cmap.close();

    Frozen frozen;
    REQUIRE(frozen.ok());
    prog.send("exit 3");
    it::Event exiting;
    REQUIRE(prog.wait_event("exiting", 2000, &exiting));
    const it::Exit x = prog.wait_exit(3000);
    const long long quit_ms = it::ms_since(exiting.t);
    REQUIRE_EXIT(x, 3);
    REQUIRE_MSG(quit_ms < 1000, "QUIT supervisor ended " + std::to_string(quit_ms) + " ms after its instance");

    const uint64_t sent = it::now_ns();
    REQUIRE(::kill(other.pid(), SIGTERM) == 0);
    const it::Exit y = other.wait_exit(3000);
    const long long term_ms = it::ms_since(sent);
    REQUIRE_KILLED_OF(other, y, SIGTERM);
    REQUIRE_MSG(term_ms < 1000, "supervisor ended " + std::to_string(term_ms) + " ms after SIGTERM");
    std::fprintf(stderr, "\nmeasured: QUIT supervisor ended %llu ms after its instance, SIGTERM one %llu ms\n",
                 static_cast<unsigned long long>(quit_ms), static_cast<unsigned long long>(term_ms));
}

COROSYNC_GROUP(QuorumRace){};

namespace {

// The program of one round: the node is made inquorate through cmap either
// immediately before sam_initialize(QUORUM_RESTART), as corosync's own test
// of libsam does, or immediately after it, so that the change reaches the
// library as a notification while sam_register() and sam_start() run (this
// corosync applies expected_votes at once: getquorate already answers "not
// quorate" when cmap_set returns). Either way the instance's sam_start()
// must block.
int inquorate_round(bool after_initialize) {
    (void)::setpriority(PRIO_PROCESS, 0, 19);
    cmap_handle_t h = 0;
    if (cmap_initialize(&h) != CS_OK)
        return 90;
    cs_error_t set = CS_OK;
    if (!after_initialize)
        set = cmap_set_uint32(h, it::kExpectedVotesKey, 2);
    if (sam_initialize(500, SAM_RECOVERY_POLICY_QUORUM_RESTART) != CS_OK)
        return 92;
    if (after_initialize)
        set = cmap_set_uint32(h, it::kExpectedVotesKey, 2);
    (void)cmap_finalize(h);
    if (set != CS_OK)
        return 91;
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK)
        return 93;
    it::emit("ev=starting iid=%u", iid);
    const cs_error_t err = sam_start();
    it::emit("ev=started iid=%u err=%d", iid, static_cast<int>(err));
    for (;;) {
        (void)sam_hc_send();
        (void)it::command(100);
    }
}

} // namespace

// Many rounds under load (a busy loop on the other CPU, the program at nice
// 19), the node made inquorate right before or right after
// sam_initialize(): sam_start() never returns before quorum is back. The test gives
// quorum back itself, so an instance that started earlier started while the
// node was inquorate.
TEST(QuorumRace, NoStartWhileInquorate) {
    CpuHog hog;
    const uint64_t until = it::now_ns() + it::ms(35000);
    int rounds = 0;
    for (; rounds < 200 && it::now_ns() < until; ++rounds) {
        const bool after = rounds % 2 == 1;
        prog.start([after] { return inquorate_round(after); });
        it::Event starting;
        REQUIRE(prog.wait_event("starting", 5000, &starting));
        // A wrong start comes at once: give it time to show before quorum
        // returns (a right one cannot come before).
        it::Event started;
        const bool early = prog.wait_event("started", 20, &started);
        const uint64_t quorate_again = it::now_ns();
        REQUIRE(cmap.set_u32(it::kExpectedVotesKey, 1) == CS_OK);
        if (!early)
            REQUIRE(prog.wait_event("started", 5000, &started));
        REQUIRE_MSG(started.num("err") == CS_OK, started.text);
        REQUIRE_MSG(started.t >= quorate_again,
                    "round " + std::to_string(rounds) + (after ? " (inquorate after sam_initialize)" : "") +
                        ": sam_start returned " + std::to_string((quorate_again - started.t) / 1000) +
                        " us before quorum was given back");
        prog.cleanup();
    }
    REQUIRE_MSG(rounds >= 50, "only " + std::to_string(rounds) + " rounds in 35 s");
    std::fprintf(stderr, "\nmeasured: %d rounds\n", rounds);
}

COROSYNC_GROUP(QuorumLoss){};

// Quorum lost: the instance is warned, with SIGKILL due an interval later.
// It ends at once, and the restart waits out a back-off longer than that
// interval. The SIGKILL time died with the instance: the supervisor sleeps
// through the back-off rather than waking for a kill that is no longer due.
TEST(QuorumLoss, BackOffAfterTheWarnIsIdle) {
    it::Script s;
    s.interval_ms = 1000;
    s.policy = SAM_RECOVERY_POLICY_QUORUM_RESTART;
    s.exit_on_term = true; // the warn signal ends it
    s.auto_start = true;
    prog.start([s] { return it::run_script(s); }, {{"SAM_RESTART_BURST", "0"}, {"SAM_RESTART_DELAY_MS", "3000"}});
    REQUIRE(prog.wait_event("started", 5000));
    REQUIRE(cmap.set_u32(it::kExpectedVotesKey, 2) == CS_OK);
    REQUIRE_MSG(prog.wait_log("restarting in 3000 ms", 5000), prog.transcript());
    const long long cpu_before = it::cpu_ms(prog.pid());
    it::Event reg2;
    REQUIRE(prog.wait_event([](const it::Event &e) { return e.is("reg") && e.num("iid") == 2; }, 5000, &reg2));
    const long long cpu_during = it::cpu_ms(prog.pid()) - cpu_before;
    REQUIRE(cpu_before >= 0);
    REQUIRE_MSG(cpu_during < 300, "the supervisor used " + std::to_string(cpu_during) +
                                      " ms of CPU during a 3 s back-off after a quorum warn");
    std::fprintf(stderr, "\nmeasured: supervisor CPU during the back-off: %lld ms\n", cpu_during);
}

// ---- forks stay clean while corosync comes and goes ----

namespace {
constexpr unsigned kForkRounds = 1000;

// In the calling process (the program): a mount namespace whose /dev holds
// null, the host's /dev/shm (libqb's rings live there) and, as /dev/log,
// the socket bound at `log_path`. 0, or a step number that failed.
int private_dev_log(const std::string &keep_dir, const std::string &log_path) {
    const std::string shm = keep_dir + "/shm";
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return 1;
    if (::mkdir(shm.c_str(), 0700) != 0 || ::mount("/dev/shm", shm.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        return 2;
    if (::mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755") != 0 ||
        ::mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3)) != 0 || ::mkdir("/dev/shm", 01777) != 0 ||
        ::mount(shm.c_str(), "/dev/shm", nullptr, MS_BIND | MS_REC, nullptr) != 0)
        return 3;
    const int placeholder = ::open("/dev/log", O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (placeholder < 0)
        return 4;
    ::close(placeholder);
    return ::mount(log_path.c_str(), "/dev/log", nullptr, MS_BIND, nullptr) == 0 ? 0 : 5;
}
} // namespace

COROSYNC_GROUP(ForkSafety){};

// 1,000 restarts while corosync is killed and started again over and over
// (a thread of the test does that meanwhile), with syslog's reader slow (a
// socket of this test, bound over /dev/log, read one line every 5 ms): the
// link reconnects and logs, and every new instance still runs. Each one first
// uses the libc state that a fork taken while another thread held its lock
// would leave locked for ever (syslog, the time zone, malloc), idles 10 ms,
// then starts and fails at once. An instance that deadlocked would never say
// "ran", and the supervisor, which times nothing before sam_start, would wait
// for it for ever.
TEST(ForkSafety, ThousandRestartsWhileCorosyncRestarts) {
    char dir[] = "/tmp/samfork.XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string keep(dir), log_path = keep + "/log";
    const int log_sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(log_sock >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", log_path.c_str());
    REQUIRE(::bind(log_sock, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    std::atomic<bool> done{false};
    std::atomic<unsigned> syslog_lines{0};
    std::thread slow_reader([&] {
        while (!done.load()) {
            pollfd p{log_sock, POLLIN, 0};
            if (::poll(&p, 1, 100) == 1) {
                char line[1024];
                if (::recv(log_sock, line, sizeof line, 0) > 0)
                    ++syslog_lines;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5)); // the slowness itself
        }
    });
    prog.start(
        [keep, log_path] {
            if (const int step = private_dev_log(keep, log_path))
                return 80 + step;
            ::unsetenv("SAM_LOG_STDERR"); // the supervisor's lines go to syslog too
            if (sam_initialize(2000, static_cast<sam_recovery_policy_t>(kCmapRestart)) != CS_OK)
                return 90;
            unsigned iid = 0;
            if (sam_register(&iid) != CS_OK)
                return 91;
            ::openlog("integ-isolation", LOG_PID | LOG_NDELAY, LOG_USER);
            ::syslog(LOG_DEBUG, "instance %u", iid);
            ::closelog();
            const time_t now = ::time(nullptr);
            struct tm local {};
            (void)::localtime_r(&now, &local);
            void *block = std::malloc(1000 + iid);
            std::free(block);
            it::emit("ev=ran iid=%u", iid);
            if (iid > kForkRounds)
                return 0; // exits before sam_start: the supervisor ends with it
            (void)it::command(10);
            // A start may find corosync gone (an error) or not answering
            // for 5 s (CS_ERR_TIMEOUT): the instance stays registered and
            // tries again, as a program would.
            while (sam_start() != CS_OK)
                (void)it::command(50);
            ::_exit(1);
        },
        {{"SAM_RESTART_DELAY_MS", "0"}});
    std::atomic<unsigned> outages{0};
    std::thread bouncer([&] {
        while (!done.load()) {
            if (it::ctl("kill 10") != 0 || it::ctl("start") != 0)
                return;
            ++outages;
            // corosync runs for a second before it goes again: the period
            // of the disturbance, not a wait for anything.
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
    });
    // Waited for in steps: the corosync restarts of the other thread may
    // cut a single long wait short.
    const uint64_t give_up = it::now_ns() + it::ms(240 * 1000);
    bool finished = false;
    while (!finished && it::now_ns() < give_up && !it::process_gone(prog.pid()))
        finished = prog.wait_event([](const it::Event &e) { return e.is("ran") && e.num("iid") > kForkRounds; }, 1000);
    done.store(true);
    bouncer.join();
    slow_reader.join();
    ::close(log_sock);
    (void)::unlink(log_path.c_str());
    REQUIRE_MSG(finished, "instances that ran: " + std::to_string(prog.events_of("ran").size()) + " in 240 s");
    std::set<long long> seen;
    for (const it::Event &e : prog.events_of("ran"))
        seen.insert(e.num("iid"));
    REQUIRE_MSG(seen.size() == kForkRounds + 1 && *seen.begin() == 1 && *seen.rbegin() == kForkRounds + 1,
                "distinct instances that ran: " + std::to_string(seen.size()));
    REQUIRE_MSG(outages.load() >= 2, "corosync restarts meanwhile: " + std::to_string(outages.load()));
    REQUIRE(prog.wait_exit(10000).exited);
    REQUIRE(syslog_lines.load() > 0); // the reader really was in the way
    (void)::umount2((keep + "/shm").c_str(), MNT_DETACH);
    (void)::rmdir((keep + "/shm").c_str());
    (void)::rmdir(keep.c_str());
    UT_PRINT(("ForkSafety: " + std::to_string(kForkRounds) + " restarts across " + std::to_string(outages.load()) +
              " corosync restarts, " + std::to_string(syslog_lines.load()) + " syslog lines read slowly")
                 .c_str());
}
