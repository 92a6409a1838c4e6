// SPDX-License-Identifier: BSD-3-Clause
// event_hooks.cpp - see event_hooks.hpp. Runs in the keeper, which has a
// single thread: fork() here is plain.
#include "pidfd.hpp"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <system_error>

#include "base.hpp"
#include "event_hooks.hpp"
#include "log.hpp"
#include "process.hpp"

extern char **environ;

namespace samrun {

namespace {

std::string event_of(const std::vector<std::string> &facts) {
    for (const std::string &fact : facts) {
        if (fact.compare(0, 10, "SAM_EVENT=") == 0) {
            return fact.substr(10);
        }
    }
    return "?";
}

} // namespace

void EventHooks::run(const std::vector<std::string> &facts) {
    std::vector<std::string> env;
    for (char **e = environ; e != nullptr && *e != nullptr; ++e) {
        if (strncmp(*e, "SAM_", 4) != 0) {
            env.emplace_back(*e);
        }
    }
    env.insert(env.end(), facts.begin(), facts.end());
    ExecVector argv(std::vector<std::string>{"sh", "-c", command_});
    ExecVector envp(std::move(env));
    UniqueFd dev_null(open("/dev/null", O_RDONLY | O_CLOEXEC));
    SpawnRequest request;
    request.path = "/bin/sh";
    request.argv = &argv;
    request.envp = &envp;
    request.stdin_fd = dev_null.get();
    request.own_process_group = true; // the timeout kills all it started
    Running hook;
    hook.event = event_of(facts);
    try {
        Spawned spawned = spawn_process(request);
        if (spawned.exec_errno != 0) {
            log_line("event hook (%s) cannot run /bin/sh: %s", hook.event.c_str(), strerror(spawned.exec_errno));
            return;
        }
        hook.pid = spawned.pid;
        hook.pidfd = std::move(spawned.pidfd);
    } catch (const std::system_error &e) {
        log_line("event hook (%s) cannot start: %s", hook.event.c_str(), e.what());
        return;
    }
    hook.deadline_ms = monotonic_ms() + static_cast<uint64_t>(timeout_ms_);
    running_.push_back(std::move(hook));
}

void EventHooks::add_pollfds(std::vector<pollfd> &fds) const {
    for (const Running &hook : running_) {
        fds.push_back({hook.pidfd.get(), POLLIN, 0});
    }
}

void EventHooks::handle(const std::vector<pollfd> &fds, size_t first) {
    uint64_t now = monotonic_ms();
    std::vector<Running> still;
    for (size_t i = 0; i < running_.size(); ++i) {
        Running &hook = running_[i];
        bool ended = first + i < fds.size() && fds[first + i].revents != 0;
        if (!ended && now >= hook.deadline_ms) {
            kill(-hook.pid, SIGKILL);
            pidfd_send_signal(hook.pidfd.get(), SIGKILL, nullptr, 0);
            (void)reap(hook.pidfd.get());
            log_line("event hook (%s) still running after %d ms: killed", hook.event.c_str(), timeout_ms_);
            continue;
        }
        if (!ended) {
            still.push_back(std::move(hook));
            continue;
        }
        // What the hook left in its group goes too; now, while its
        // unreaped leader keeps the group id from being reused.
        kill(-hook.pid, SIGKILL);
        siginfo_t info = reap(hook.pidfd.get());
        if (!(info.si_code == CLD_EXITED && info.si_status == 0)) {
            log_line("event hook (%s) failed (%s)", hook.event.c_str(), describe_exit(info).c_str());
        }
    }
    running_ = std::move(still);
}

int EventHooks::next_timeout_ms() const {
    if (running_.empty()) {
        return -1;
    }
    uint64_t now = monotonic_ms();
    uint64_t next = UINT64_MAX;
    for (const Running &hook : running_) {
        next = std::min(next, hook.deadline_ms);
    }
    return next <= now ? 0 : static_cast<int>(std::min<uint64_t>(next - now, INT_MAX));
}

} // namespace samrun
