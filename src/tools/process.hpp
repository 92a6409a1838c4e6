// SPDX-License-Identifier: BSD-3-Clause
// process.hpp - starting, watching and ending child processes: fork+exec with
// a report of exec failures, pidfds, and leaving the relay "the same way" the
// program left so that libsam's supervisor sees the program's own status.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "base.hpp"

namespace samrun {

// argv/envp kept as C arrays built before fork(): after fork() in a process
// that may run library threads, the child may only make async-signal-safe
// calls, so nothing may be allocated there.
class ExecVector {
  public:
    explicit ExecVector(std::vector<std::string> items);
    ExecVector(const ExecVector &) = delete;
    ExecVector &operator=(const ExecVector &) = delete;
    [[nodiscard]] char *const *data() const { return pointers_.data(); }
    // Writable storage of entry `index`, for values only known in the child.
    [[nodiscard]] char *entry(size_t index) { return pointers_[index]; }

  private:
    std::vector<std::string> items_;
    std::vector<char *> pointers_;
};

struct SpawnRequest {
    std::string path; // resolved, execve() does no PATH search
    const ExecVector *argv = nullptr;
    ExecVector *envp = nullptr;
    int stdin_fd = -1;              // -1: inherit
    bool own_process_group = false; // so one signal reaches the whole tree
    int cgroup_procs_fd = -1;       // >= 0: the child joins this cgroup first
    // Optional: entries of envp ("WATCHDOG_PID=", "LISTEN_PID=") whose
    // digits the child writes, with room for them (padded with spaces).
    char *pid_slots[2] = {nullptr, nullptr};
    // Descriptors the program gets as 3, 4, ... in this order (socket
    // activation); each must be numbered at or above 3 + passed_fd_count,
    // so that no dup2() overwrites one still to come. With any passed,
    // nothing else above stderr crosses the exec.
    const int *passed_fds = nullptr;
    size_t passed_fd_count = 0;
};

struct Spawned {
    pid_t pid = -1;
    UniqueFd pidfd;
    int exec_errno = 0;   // non-zero: the program never ran (child reaped)
    int cgroup_errno = 0; // non-zero: it runs, but could not join the cgroup
};

// Throws std::system_error when fork/pidfd_open fail.
[[nodiscard]] Spawned spawn_process(const SpawnRequest &request);

// Forks one of sam-run's helper processes (the keeper, the descriptor
// store): `body(channel, supervisor_pidfd)` runs in the child and must not
// return; `channel` is its end of a SOCK_SEQPACKET pair, and
// `supervisor_pidfd` names this process, so the helper can tell when it is
// gone. Returns our end of the pair; throws std::system_error.
[[nodiscard]] UniqueFd fork_helper(const std::function<void(int channel, int supervisor_pidfd)> &body);

// Reaps the child behind `pidfd` (it must have exited).
[[nodiscard]] siginfo_t reap(int pidfd);

// "exit 3", "signal SEGV (core dumped)".
[[nodiscard]] std::string describe_exit(const siginfo_t &info);

// The status a shell would report: the code, or 128+signal.
[[nodiscard]] int shell_status(const siginfo_t &info);

// Leaves with the same exit code, or dies by the same signal (without a core
// dump of our own).
[[noreturn]] void exit_like(const siginfo_t &info);

// Is `pid` equal to `ancestor` or one of its descendants (via /proc)?
[[nodiscard]] bool is_same_or_descendant(pid_t pid, pid_t ancestor);

// Searches PATH like a shell. Returns 0 and the path, or the exit status a
// shell would give (126 not executable, 127 not found) and a message.
[[nodiscard]] int resolve_command(const std::string &name, std::string &path, std::string &error);

// Every catchable signal back to its default, none blocked (child side;
// async-signal-safe).
void reset_signals_in_child();

} // namespace samrun
