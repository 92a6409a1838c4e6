// SPDX-License-Identifier: BSD-3-Clause
// containment.cpp - see containment.hpp.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "containment.hpp"
#include "procfs.hpp"

namespace samrun {

namespace {

// How long end() waits for a killed cgroup to empty before giving up on
// removing it (the kernel kills at once; dying takes a few milliseconds).
constexpr int kEmptyWaitMs = 2000;

std::optional<std::string> cgroup2_mount_point() {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // id parent dev root mountpoint options [optional...] - fstype ...
        size_t dash = line.find(" - ");
        if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) {
            continue;
        }
        std::istringstream fields(line.substr(0, dash));
        std::string id, parent, dev, root, mount_point;
        fields >> id >> parent >> dev >> root >> mount_point;
        if (root == "/" && !mount_point.empty() && mount_point.find('\\') == std::string::npos) {
            return mount_point;
        }
    }
    return std::nullopt;
}

bool ends_with(const std::string &text, const char *suffix) {
    size_t n = strlen(suffix);
    return text.size() >= n && text.compare(text.size() - n, n, suffix) == 0;
}

// systemd marks a cgroup it hands over (Delegate=yes) with this attribute.
bool delegated(const std::string &dir) {
    for (const char *name : {"trusted.delegate", "user.delegate"}) {
        char value[8] = {};
        ssize_t n = getxattr(dir.c_str(), name, value, sizeof value - 1);
        if (n > 0 && value[0] == '1') {
            return true;
        }
    }
    return false;
}

bool write_text(const std::string &path, const char *text) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    bool ok = write(fd, text, strlen(text)) == static_cast<ssize_t>(strlen(text));
    close(fd);
    return ok;
}

bool populated(const std::string &cgroup) {
    std::optional<std::string> events = read_small_file(cgroup + "/cgroup.events");
    return events && events->find("populated 1") != std::string::npos;
}

void sleep_ms(long ms) {
    timespec ts{0, ms * 1000000L};
    nanosleep(&ts, nullptr);
}

} // namespace

std::optional<std::string> manageable_cgroup() {
    std::optional<std::string> mount_point = cgroup2_mount_point();
    std::optional<std::string> membership = read_small_file("/proc/self/cgroup");
    if (!mount_point || !membership) {
        return std::nullopt;
    }
    // The unified hierarchy's line is "0::<path>".
    size_t at = membership->rfind("0::");
    if (at == std::string::npos || (at != 0 && (*membership)[at - 1] != '\n')) {
        return std::nullopt;
    }
    std::string path = membership->substr(at + 3);
    path = path.substr(0, path.find('\n'));
    if (path.empty() || path[0] != '/' || ends_with(path, " (deleted)")) {
        return std::nullopt;
    }
    std::string dir = *mount_point + (path == "/" ? "" : path);
    // A cgroup systemd manages is not ours to change unless it was handed
    // over to us (cgroup.kill, Linux 5.14, is checked per child cgroup: the
    // root has none).
    bool systemd_unit = ends_with(path, ".service") || ends_with(path, ".scope");
    if ((systemd_unit && !delegated(dir)) || access(dir.c_str(), W_OK) != 0) {
        return std::nullopt;
    }
    return dir;
}

UniqueFd ProgramGroup::prepare_cgroup(const std::string &parent, const std::string &name, std::string &why) {
    std::string dir = parent + "/" + name;
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        why = "cannot create " + dir + ": " + strerror(errno);
        return UniqueFd();
    }
    if (access((dir + "/cgroup.kill").c_str(), W_OK) != 0) {
        why = "no cgroup.kill in " + dir + " (Linux 5.14 or later needed)";
        rmdir(dir.c_str());
        return UniqueFd();
    }
    UniqueFd procs(open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs.valid()) {
        why = "cannot open " + dir + "/cgroup.procs: " + strerror(errno);
        rmdir(dir.c_str());
        return UniqueFd();
    }
    cgroup_ = dir;
    return procs;
}

void ProgramGroup::drop_cgroup() {
    if (!cgroup_.empty()) {
        rmdir(cgroup_.c_str());
        cgroup_.clear();
    }
}

bool ProgramGroup::signal(int sig) const { return pgid_ > 0 && kill(-pgid_, sig) == 0; }

void ProgramGroup::end() {
    end_program_group(pgid_, cgroup_);
    pgid_ = 0;
    cgroup_.clear();
}

void end_program_group(pid_t pgid, const std::string &cgroup) {
    if (pgid > 0) {
        (void)kill(-pgid, SIGKILL);
    }
    if (cgroup.empty()) {
        return;
    }
    (void)write_text(cgroup + "/cgroup.kill", "1");
    for (int waited = 0; populated(cgroup) && waited < kEmptyWaitMs; waited += 5) {
        sleep_ms(5);
    }
    (void)rmdir(cgroup.c_str());
}

} // namespace samrun
