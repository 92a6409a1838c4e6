// SPDX-License-Identifier: BSD-3-Clause
// fdstore.cpp - see fdstore.hpp.
//
// Messages, each one SOCK_SEQPACKET packet:
//   channel  'L' + SCM_RIGHTS   a relay's new link
//   link     'G'                 get: the store answers with 'F' packets
//                                (names separated by '\n', the descriptors
//                                in SCM_RIGHTS, in the same order), then 'E'
//            'A' NAME + SCM_RIGHTS  add these under NAME
//            'R' NAME             remove everything stored under NAME
#include "pidfd.hpp"
#include <errno.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "descriptor_sink.hpp"
#include "fdstore.hpp"
#include "listen.hpp"
#include "log.hpp"
#include "process.hpp"

namespace samrun {

namespace {

constexpr size_t kMaxPacket = 1 + static_cast<size_t>(kMaxPassedFds) * 256;
// How long a relay waits for the store's answer, and the store for a
// relay to take it: both are sam-run's own processes, so only a machine
// under heavy load comes near.
constexpr int kAnswerTimeoutMs = 3000;

struct Entry {
    int fd;
    std::string name;
};

// Packet with optional descriptors; false if it could not be sent within
// the timeout.
bool send_packet(int sock, const std::string &data, const int *fds, size_t count) {
    const iovec iov{const_cast<char *>(data.data()), data.size()};
    for (;;) {
        if (send_with_fds(sock, &iov, 1, fds, count, MSG_NOSIGNAL | MSG_DONTWAIT) ==
            static_cast<ssize_t>(data.size())) {
            return true;
        }
        if (errno != EAGAIN && errno != EINTR) {
            return false;
        }
        pollfd p{sock, POLLOUT, 0};
        if (errno == EAGAIN && poll(&p, 1, kAnswerTimeoutMs) != 1) {
            return false;
        }
    }
}

// One packet and its descriptors (close-on-exec); -1 on end of file or
// error, 0 if nothing is waiting (`wait_ms` 0).
ssize_t receive_packet(int sock, std::vector<char> &data, std::vector<int> &fds, int wait_ms) {
    fds.clear();
    data.resize(kMaxPacket);
    if (wait_ms > 0) {
        pollfd p{sock, POLLIN, 0};
        int ready;
        do {
            ready = poll(&p, 1, wait_ms);
        } while (ready < 0 && errno == EINTR);
        if (ready != 1) {
            return -1;
        }
    }
    iovec iov{data.data(), data.size()};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxPassedFds));
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ssize_t n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }
    for (cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&msg) : nullptr; c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; ++i) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                fds.push_back(fd);
            }
        }
    }
    if (n <= 0) {
        return -1;
    }
    data.resize(static_cast<size_t>(n));
    return n;
}

// The same open file (not merely the same inode): a program that stores
// its descriptor again at every start keeps one entry, not one per start.
bool same_file(int a, int b) {
    pid_t self = getpid();
    long r = syscall(SYS_kcmp, self, self, KCMP_FILE, a, b);
    if (r >= 0) {
        return r == 0;
    }
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

class Store {
  public:
    explicit Store(unsigned long max) : max_(max) {}

    void add(const std::string &name, const std::vector<int> &fds) {
        std::vector<int> unwanted;
        size_t refused = 0;
        for (int fd : fds) {
            bool known =
                std::any_of(entries_.begin(), entries_.end(), [fd](const Entry &e) { return same_file(e.fd, fd); });
            if (known) {
                unwanted.push_back(fd);
            } else if (entries_.size() >= max_) {
                unwanted.push_back(fd);
                ++refused;
            } else {
                entries_.push_back({fd, name});
            }
        }
        if (refused > 0) {
            log_line("file descriptor store full (--fdstore-max %lu): %zu descriptor(s) named '%s' refused", max_,
                     refused, name.c_str());
        }
        if (!unwanted.empty()) {
            sink_.dispose(unwanted, /* stranger= */ false);
        }
    }

    void remove(const std::string &name) {
        std::vector<int> dropped;
        entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                      [&](const Entry &e) {
                                          if (e.name != name) {
                                              return false;
                                          }
                                          dropped.push_back(e.fd);
                                          return true;
                                      }),
                       entries_.end());
        if (dropped.empty()) {
            log_line("FDSTOREREMOVE=1: nothing is stored under the name '%s'", name.c_str());
            return;
        }
        sink_.dispose(dropped, /* stranger= */ false);
    }

    // Answers 'G' on `link`; false if the relay is gone.
    bool send_all(int link) const {
        for (size_t first = 0; first < entries_.size(); first += kMaxPassedFds) {
            size_t end = std::min(entries_.size(), first + static_cast<size_t>(kMaxPassedFds));
            std::string names = "F";
            std::vector<int> fds;
            for (size_t i = first; i < end; ++i) {
                names += (i == first ? "" : "\n") + entries_[i].name;
                fds.push_back(entries_[i].fd);
            }
            if (!send_packet(link, names, fds.data(), fds.size())) {
                return false;
            }
        }
        return send_packet(link, "E", nullptr, 0);
    }

  private:
    unsigned long max_;
    std::vector<Entry> entries_; // oldest first
    DescriptorSink sink_;
};

// false: the link is closed (its relay is gone).
bool serve_link(int link, Store &store) {
    std::vector<char> data;
    std::vector<int> fds;
    for (;;) {
        ssize_t n = receive_packet(link, data, fds, 0);
        if (n == 0) {
            return true;
        }
        if (n < 0) {
            return false;
        }
        std::string name(data.begin() + 1, data.end());
        if (data[0] == 'G') {
            if (!store.send_all(link)) {
                return false;
            }
        } else if (data[0] == 'A' && valid_fd_name(name) && !fds.empty()) {
            store.add(name, fds);
            fds.clear();
        } else if (data[0] == 'R' && valid_fd_name(name)) {
            store.remove(name);
        }
        for (int fd : fds) {
            (void)close(fd); // not our protocol: nothing sam-run sends
        }
    }
}

void take_links(int channel, std::vector<UniqueFd> &links) {
    std::vector<char> data;
    std::vector<int> fds;
    while (receive_packet(channel, data, fds, 0) > 0) {
        for (int fd : fds) {
            links.emplace_back(fd);
        }
    }
}

// Only stdio, the channel and the supervisor's pidfd stay open: the store
// must not hold the listening sockets or anything else of sam-run's.
void close_other_descriptors(int a, int b) {
    rlimit limit{};
    int max = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                  ? static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 65536))
                  : 65536;
    int low = std::min(a, b), high = std::max(a, b);
    bool ranged = (low <= 3 || syscall(SYS_close_range, 3u, static_cast<unsigned>(low) - 1u, 0u) == 0) &&
                  (high <= low + 1 || syscall(SYS_close_range, static_cast<unsigned>(low) + 1u,
                                              static_cast<unsigned>(high) - 1u, 0u) == 0) &&
                  syscall(SYS_close_range, static_cast<unsigned>(high) + 1u, ~0u, 0u) == 0;
    for (int fd = 3; !ranged && fd < max; ++fd) {
        if (fd != a && fd != b) {
            (void)close(fd);
        }
    }
}

[[noreturn]] void store_main(int channel, int supervisor, unsigned long max_fds) {
    close_other_descriptors(channel, supervisor);
    // Stop signals are the supervisor's to pass on; the store ends with it.
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU}) {
        signal(sig, SIG_IGN);
    }
    prctl(PR_SET_NAME, "sam-run-fdstore");
    Store store(max_fds);
    std::vector<UniqueFd> links;
    for (;;) {
        std::vector<pollfd> fds = {{supervisor, POLLIN, 0}, {channel, POLLIN, 0}};
        for (const UniqueFd &link : links) {
            fds.push_back({link.get(), POLLIN, 0});
        }
        if (poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(1);
        }
        if (fds[0].revents != 0) {
            // The kernel closes what is stored as we exit.
            _exit(0);
        }
        // Links in the order relays made them: an earlier relay's last
        // additions are in before a newer one fetches.
        size_t polled = links.size();
        std::vector<bool> closed(polled, false);
        for (size_t i = 0; i < polled; ++i) {
            closed[i] = fds[i + 2].revents != 0 && !serve_link(links[i].get(), store);
        }
        for (size_t i = polled; i-- > 0;) {
            if (closed[i]) {
                links.erase(links.begin() + static_cast<long>(i));
            }
        }
        if (fds[1].revents != 0) {
            take_links(channel, links);
        }
    }
}

} // namespace

UniqueFd start_fd_store(unsigned long max_fds) {
    return fork_helper([max_fds](int channel, int supervisor) { store_main(channel, supervisor, max_fds); });
}

bool FdStoreLink::connect(int channel) {
    int pair[2];
    if (channel < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        return false;
    }
    UniqueFd kept(pair[0]), handed(pair[1]);
    int fd = handed.get();
    if (!send_packet(channel, "L", &fd, 1)) {
        return false;
    }
    link_ = std::move(kept);
    return true;
}

bool FdStoreLink::fetch(std::vector<StoredFd> &out) {
    out.clear();
    if (!link_.valid() || !send_packet(link_.get(), "G", nullptr, 0)) {
        return false;
    }
    std::vector<char> data;
    std::vector<int> fds;
    for (;;) {
        ssize_t n = receive_packet(link_.get(), data, fds, kAnswerTimeoutMs);
        std::vector<UniqueFd> received;
        for (int fd : fds) {
            received.emplace_back(fd); // the store keeps its own copies
        }
        if (n <= 0) {
            return false;
        }
        if (data[0] == 'E') {
            return true;
        }
        std::vector<std::string> names;
        size_t start = 1;
        while (start <= data.size()) {
            auto nl = std::find(data.begin() + static_cast<long>(start), data.end(), '\n');
            names.emplace_back(data.begin() + static_cast<long>(start), nl);
            start = static_cast<size_t>(nl - data.begin()) + 1;
        }
        if (data[0] != 'F' || names.size() != received.size()) {
            return false;
        }
        for (size_t i = 0; i < names.size(); ++i) {
            out.push_back({std::move(received[i]), names[i]});
        }
    }
}

bool FdStoreLink::add(const std::string &name, const std::vector<int> &fds) {
    if (!link_.valid() || fds.empty()) {
        return false;
    }
    for (size_t first = 0; first < fds.size(); first += kMaxPassedFds) {
        size_t count = std::min(fds.size() - first, static_cast<size_t>(kMaxPassedFds));
        if (!send_packet(link_.get(), "A" + name, fds.data() + first, count)) {
            return false;
        }
    }
    return true;
}

bool FdStoreLink::remove(const std::string &name) {
    return link_.valid() && send_packet(link_.get(), "R" + name, nullptr, 0);
}

} // namespace samrun
