// SPDX-License-Identifier: BSD-3-Clause
// private_dir.cpp - see private_dir.hpp.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <system_error>
#include <vector>

#include "private_dir.hpp"

namespace samrun {

namespace {

// The janitor: async-signal-safe calls only, nothing allocated (the paths
// were made before fork()).
[[noreturn]] void run_janitor(int alive, const char *socket, const char *dir) {
    // A stop signal sent to the whole process group must leave us to clean
    // up after the others.
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE}) {
        signal(sig, SIG_IGN);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Nothing of sam-run's: its output pipes and sockets must end with it.
    if (syscall(SYS_close_range, 0u, static_cast<unsigned>(alive) - 1u, 0u) != 0 ||
        syscall(SYS_close_range, static_cast<unsigned>(alive) + 1u, ~0u, 0u) != 0) {
        for (int fd = 0; fd < 1024; ++fd) {
            if (fd != alive) {
                close(fd);
            }
        }
    }
    for (;;) {
        char byte;
        ssize_t n = read(alive, &byte, 1);
        if (n == 0 || (n < 0 && errno != EINTR)) {
            break; // every holder of the write end is gone
        }
    }
    unlink(socket);
    rmdir(dir);
    _exit(0);
}

std::string first_usable_base() {
    std::vector<std::string> candidates;
    if (const char *runtime = getenv("RUNTIME_DIRECTORY"); runtime != nullptr && *runtime != '\0') {
        std::string first(runtime);
        candidates.push_back(first.substr(0, first.find(':'))); // systemd lists several with ':'
    }
    if (const char *xdg = getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
        candidates.emplace_back(xdg);
    }
    if (geteuid() == 0) {
        candidates.emplace_back("/run");
    }
    if (const char *tmp = getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') {
        candidates.emplace_back(tmp);
    }
    candidates.emplace_back("/tmp");
    // Room for "/sam-run.XXXXXX/notify" and the NUL in sun_path.
    const size_t room = sizeof(sockaddr_un::sun_path) - sizeof("/sam-run.XXXXXX/notify");
    for (const std::string &base : candidates) {
        if (!base.empty() && base[0] == '/' && base.size() <= room && access(base.c_str(), W_OK | X_OK) == 0) {
            return base;
        }
    }
    return "/tmp";
}

} // namespace

PrivateSocketDir PrivateSocketDir::create() {
    std::string templ = first_usable_base() + "/sam-run.XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
        throw std::system_error(errno, std::generic_category(), "cannot create a directory for the notify socket");
    }
    return PrivateSocketDir(templ, templ + "/notify");
}

PrivateSocketDir::~PrivateSocketDir() {
    if (dir_.empty() || handed_over_) {
        return;
    }
    unlink(socket_.c_str());
    rmdir(dir_.c_str());
}

void PrivateSocketDir::start_janitor() {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return;
    }
    UniqueFd read_end(pipe_fds[0]);
    UniqueFd write_end(pipe_fds[1]);
    pid_t pid = fork();
    if (pid < 0) {
        return;
    }
    if (pid == 0) {
        run_janitor(read_end.get(), socket_.c_str(), dir_.c_str());
    }
    alive_ = std::move(write_end);
    handed_over_ = true;
}

} // namespace samrun
