// SPDX-License-Identifier: BSD-3-Clause
// containment.hpp - the program is its whole process tree. Each program runs
// in a process group of its own, so every signal sam-run sends it reaches
// its children too; where sam-run may manage a cgroup v2 (a systemd unit
// with Delegate=yes, or root with a writable tree), each program also gets a
// child cgroup, which holds even the descendants that left the group
// (setsid) and is ended with cgroup.kill.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base.hpp"

namespace samrun {

// The cgroup v2 directory this process lives in, if we may create child
// cgroups there; otherwise nothing (no cgroup2 mount, read-only, ...).
[[nodiscard]] std::optional<std::string> manageable_cgroup();

// What holds one program: its process group, and its cgroup when there is
// one. Ending it kills everything inside and removes the cgroup.
class ProgramGroup {
  public:
    ProgramGroup() = default;
    ProgramGroup(const ProgramGroup &) = delete;
    ProgramGroup &operator=(const ProgramGroup &) = delete;
    ProgramGroup(ProgramGroup &&) = default;
    ProgramGroup &operator=(ProgramGroup &&) = default;

    // Creates `<parent>/<name>` and returns its cgroup.procs, opened for the
    // child to move itself there (write "0") between fork and exec; an
    // invalid descriptor when that is not possible (`why` says why).
    [[nodiscard]] UniqueFd prepare_cgroup(const std::string &parent, const std::string &name, std::string &why);
    // The program started with this process group id.
    void set_pgid(pid_t pgid) { pgid_ = pgid; }
    // The child could not join the cgroup: the process group only.
    void drop_cgroup();

    [[nodiscard]] pid_t pgid() const { return pgid_; }
    [[nodiscard]] const std::string &cgroup() const { return cgroup_; }
    // "cgroup" or "process group": what `end()` can reach.
    [[nodiscard]] const char *containment() const { return cgroup_.empty() ? "process group" : "cgroup"; }

    // A signal to every process of the group; false if none was there.
    bool signal(int sig) const;
    // SIGKILL to the group and the cgroup, then waits (bounded) for the
    // cgroup to empty and removes it. Safe to call more than once.
    void end();

  private:
    pid_t pgid_ = 0;
    std::string cgroup_;
};

// The same clean-up for a group known only by its numbers (the keeper's side).
void end_program_group(pid_t pgid, const std::string &cgroup);

} // namespace samrun
