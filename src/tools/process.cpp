// SPDX-License-Identifier: BSD-3-Clause
// process.cpp - see process.hpp.
#include "pidfd.hpp"
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <system_error>

#include "base.hpp"
#include "options.hpp"
#include "process.hpp"
#include "procfs.hpp"

namespace samrun {

ExecVector::ExecVector(std::vector<std::string> items) : items_(std::move(items)) {
    pointers_.reserve(items_.size() + 1);
    for (std::string &item : items_) {
        pointers_.push_back(item.data());
    }
    pointers_.push_back(nullptr);
}

void reset_signals_in_child() {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            sigaction(sig, &dfl, nullptr);
        }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

namespace {

// Digits of our pid into the spaces that follow '=' (child side).
void write_pid_digits(char *slot) {
    char digits[16];
    int n = 0;
    for (pid_t pid = getpid(); pid > 0 && n < 16; pid /= 10) {
        digits[n++] = static_cast<char>('0' + pid % 10);
    }
    char *out = strchr(slot, '=') + 1;
    while (n > 0) {
        *out++ = digits[--n];
    }
    *out = '\0';
}

// Child side: the passed descriptors to 3, 4, ..., everything else above
// them close-on-exec. `report_fd` moves out of the way first.
bool pass_descriptors(const SpawnRequest &request, int &report_fd) {
    const int first_free = 3 + static_cast<int>(request.passed_fd_count);
    if (report_fd < first_free) {
        int moved = fcntl(report_fd, F_DUPFD_CLOEXEC, first_free);
        if (moved < 0) {
            return false;
        }
        report_fd = moved;
    }
    for (size_t i = 0; i < request.passed_fd_count; ++i) {
        // dup2() leaves the copy without close-on-exec: it crosses.
        if (dup2(request.passed_fds[i], 3 + static_cast<int>(i)) < 0) {
            return false;
        }
    }
    if (syscall(SYS_close_range, static_cast<unsigned>(first_free), ~0u, CLOSE_RANGE_CLOEXEC) == 0) {
        return true;
    }
    // Before Linux 5.11: one by one.
    rlimit limit{};
    int max = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                  ? static_cast<int>(limit.rlim_cur < 65536 ? limit.rlim_cur : 65536)
                  : 65536;
    for (int fd = first_free; fd < max; ++fd) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0 && (flags & FD_CLOEXEC) == 0) {
            (void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
    }
    return true;
}

// Child side of spawn_process: async-signal-safe calls only.
[[noreturn]] void exec_child(const SpawnRequest &request, pid_t parent, int report_fd) {
    reset_signals_in_child();
    // If the relay is killed (missed deadline), the program must not
    // outlive it: libsam's supervisor would start a second copy.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(kExitCannotExecute);
    }
    if (request.own_process_group) {
        setpgid(0, 0);
    }
    // Before exec: nothing the program starts can be outside the cgroup.
    // A failure is reported (negated) and the program runs anyway, held by
    // its process group only.
    if (request.cgroup_procs_fd >= 0 && write(request.cgroup_procs_fd, "0", 1) != 1) {
        int err = -errno;
        (void)!write(report_fd, &err, sizeof err);
    }
    if (request.stdin_fd >= 0 && dup2(request.stdin_fd, STDIN_FILENO) < 0) {
        int err = errno;
        (void)!write(report_fd, &err, sizeof err);
        _exit(kExitCannotExecute);
    }
    for (char *slot : request.pid_slots) {
        if (slot != nullptr) {
            write_pid_digits(slot);
        }
    }
    if (request.passed_fd_count > 0 && !pass_descriptors(request, report_fd)) {
        int err = errno;
        (void)!write(report_fd, &err, sizeof err);
        _exit(kExitCannotExecute);
    }
    execve(request.path.c_str(), request.argv->data(), request.envp->data());
    int err = errno;
    (void)!write(report_fd, &err, sizeof err);
    _exit(err == ENOENT ? kExitNotFound : kExitCannotExecute);
}

} // namespace

Spawned spawn_process(const SpawnRequest &request) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "pipe2");
    }
    UniqueFd report_read(report[0]);
    UniqueFd report_write(report[1]);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        throw std::system_error(errno, std::generic_category(), "fork");
    }
    if (pid == 0) {
        exec_child(request, parent, report_write.get());
    }
    report_write.reset();
    if (request.own_process_group) {
        // Also here, so that no signal to the group can come before the
        // child made it (EACCES once it has exec'd: then it did).
        (void)setpgid(pid, pid);
    }
    Spawned spawned;
    spawned.pid = pid;
    // The child is ours and not reaped yet, so the pid cannot be reused.
    spawned.pidfd.reset(pidfd_open(pid, 0));
    if (!spawned.pidfd.valid()) {
        int err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        throw std::system_error(err, std::generic_category(), "pidfd_open");
    }
    // EOF: execve succeeded (close-on-exec); data: a negated errno of the
    // cgroup move, then or else the errno of execve.
    for (;;) {
        int err = 0;
        ssize_t n = read(report_read.get(), &err, sizeof err);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n != static_cast<ssize_t>(sizeof err)) {
            break;
        }
        if (err < 0) {
            spawned.cgroup_errno = -err;
        } else {
            spawned.exec_errno = err;
        }
    }
    if (spawned.exec_errno != 0) {
        (void)reap(spawned.pidfd.get());
    }
    return spawned;
}

UniqueFd fork_helper(const std::function<void(int channel, int supervisor_pidfd)> &body) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        throw std::system_error(errno, std::generic_category(), "socketpair");
    }
    UniqueFd ours(pair[0]), theirs(pair[1]);
    UniqueFd supervisor(pidfd_open(getpid(), 0));
    if (!supervisor.valid()) {
        throw std::system_error(errno, std::generic_category(), "pidfd_open");
    }
    pid_t pid = fork();
    if (pid < 0) {
        throw std::system_error(errno, std::generic_category(), "fork");
    }
    if (pid == 0) {
        body(theirs.get(), supervisor.get());
        _exit(1); // not reached: a helper's body ends the process itself
    }
    return ours;
}

siginfo_t reap(int pidfd) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    while (waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED) != 0 && errno == EINTR) {
    }
    return info;
}

std::string describe_exit(const siginfo_t &info) {
    if (info.si_code == CLD_EXITED) {
        return "exit " + std::to_string(info.si_status);
    }
    std::string text = "signal " + signal_name(info.si_status);
    if (info.si_code == CLD_DUMPED) {
        text += " (core dumped)";
    }
    return text;
}

int shell_status(const siginfo_t &info) {
    return info.si_code == CLD_EXITED ? (info.si_status & 0xff) : 128 + info.si_status;
}

void exit_like(const siginfo_t &info) {
    fflush(stdout);
    fflush(stderr);
    if (info.si_code == CLD_EXITED) {
        _exit(info.si_status & 0xff);
    }
    die_by_signal(info.si_status);
}

bool is_same_or_descendant(pid_t pid, pid_t ancestor) {
    for (int depth = 0; depth < 64 && pid > 1; ++depth) {
        if (pid == ancestor) {
            return true;
        }
        std::optional<std::string> stat = read_small_file("/proc/" + std::to_string(pid) + "/stat");
        std::optional<pid_t> parent = stat ? parent_from_stat(*stat) : std::nullopt;
        if (!parent) {
            return false; // gone, or unreadable: not one of ours
        }
        pid = *parent;
    }
    return false;
}

int resolve_command(const std::string &name, std::string &path, std::string &error) {
    auto check = [](const std::string &candidate, int &err) {
        struct stat st;
        if (stat(candidate.c_str(), &st) != 0) {
            err = errno;
            return false;
        }
        if (S_ISDIR(st.st_mode)) {
            err = EISDIR;
            return false;
        }
        if (access(candidate.c_str(), X_OK) != 0) {
            err = errno;
            return false;
        }
        return true;
    };
    int err = 0;
    if (name.find('/') != std::string::npos) {
        if (check(name, err)) {
            path = name;
            return 0;
        }
        error = name + ": " + strerror(err);
        return err == ENOENT || err == ENOTDIR ? kExitNotFound : kExitCannotExecute;
    }
    const char *env_path = getenv("PATH");
    std::string search = env_path != nullptr && *env_path != '\0' ? env_path : "/usr/local/bin:/usr/bin:/bin";
    int seen_error = 0;
    size_t start = 0;
    while (start <= search.size()) {
        size_t end = search.find(':', start);
        if (end == std::string::npos) {
            end = search.size();
        }
        std::string dir = search.substr(start, end - start);
        start = end + 1;
        std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
        if (check(candidate, err)) {
            path = candidate;
            return 0;
        }
        if (err == EACCES) {
            seen_error = err; // found, but not executable: 126 like a shell
        }
    }
    if (seen_error != 0) {
        error = name + ": " + strerror(seen_error);
        return kExitCannotExecute;
    }
    error = name + ": command not found";
    return kExitNotFound;
}

} // namespace samrun
