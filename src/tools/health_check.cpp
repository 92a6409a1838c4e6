// SPDX-License-Identifier: BSD-3-Clause
// health_check.cpp - see health_check.hpp.
#include "pidfd.hpp"
#include <corosync/sam.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <system_error>

#include "base.hpp"
#include "health_check.hpp"
#include "log.hpp"

extern char **environ;

namespace samrun {

namespace {
// The library's callback takes no argument: the one check of this process.
std::atomic<HealthCheck *> g_check{nullptr};

std::vector<std::string> environment_with(const std::string &extra) {
    std::vector<std::string> env;
    for (char **e = environ; e != nullptr && *e != nullptr; ++e) {
        if (strncmp(*e, "SAM_RUN_PID=", 12) != 0) {
            env.emplace_back(*e);
        }
    }
    env.push_back(extra);
    return env;
}
} // namespace

HealthCheck::HealthCheck(std::string command, int timeout_ms, const UpstreamNotifier &upstream)
    : command_(std::move(command)), timeout_ms_(timeout_ms), upstream_(upstream),
      dev_null_(open("/dev/null", O_RDONLY | O_CLOEXEC)) {
    argv_ = std::make_unique<ExecVector>(std::vector<std::string>{"sh", "-c", command_});
}

void HealthCheck::set_program(pid_t pid) {
    auto env = std::make_shared<ExecVector>(environment_with("SAM_RUN_PID=" + std::to_string(pid)));
    std::lock_guard<std::mutex> lock(mutex_);
    envp_ = std::move(env);
}

void HealthCheck::start_grace(int grace_ms) { grace_until_ms_ = monotonic_ms() + static_cast<uint64_t>(grace_ms); }

int HealthCheck::run() {
    int result = run_once();
    if (result == 0) {
        passed_once_ = true;
        return 0;
    }
    // A program still starting is not hung: libsam hears "healthy" until
    // it is ready or its start timeout has passed.
    if (!passed_once_ && monotonic_ms() < grace_until_ms_.load()) {
        log_line("not ready yet: within the start timeout, the failed check is not counted");
        return 0;
    }
    return result;
}

int HealthCheck::run_once() {
    std::shared_ptr<ExecVector> envp;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        envp = envp_;
    }
    if (!envp) {
        // Called before the program was started: nothing to check yet.
        return 0;
    }
    SpawnRequest request;
    request.path = "/bin/sh";
    request.argv = argv_.get();
    request.envp = envp.get();
    request.stdin_fd = dev_null_.get();
    request.own_process_group = true;
    Spawned child;
    try {
        child = spawn_process(request);
    } catch (const std::system_error &e) {
        log_line("health check: cannot start: %s", e.what());
        return 1;
    }
    if (child.exec_errno != 0) {
        log_line("health check: cannot run /bin/sh: %s", strerror(child.exec_errno));
        return 1;
    }
    pollfd pfd{child.pidfd.get(), POLLIN, 0};
    int ready;
    do {
        ready = poll(&pfd, 1, timeout_ms_);
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) {
        // Hung: the whole group, so `sh -c "a | b"` leaves nothing behind.
        kill(-child.pid, SIGKILL);
        pidfd_send_signal(child.pidfd.get(), SIGKILL, nullptr, 0);
        (void)reap(child.pidfd.get());
        ++failures_in_a_row_;
        log_line("health check timed out after %d ms and was killed: unhealthy", timeout_ms_);
        return 1;
    }
    siginfo_t info = reap(child.pidfd.get());
    if (info.si_code == CLD_EXITED && info.si_status == 0) {
        if (failures_in_a_row_ != 0) {
            log_line("health check passes again");
        }
        failures_in_a_row_ = 0;
        upstream_.send("WATCHDOG=1");
        return 0;
    }
    ++failures_in_a_row_;
    log_line("health check failed (%s): unhealthy", describe_exit(info).c_str());
    return 1;
}

int HealthCheck::callback() {
    HealthCheck *check = g_check.load();
    return check != nullptr ? check->run() : 0;
}

int HealthCheck::register_callback(HealthCheck *check) {
    g_check.store(check);
    return sam_hc_callback_register(&HealthCheck::callback);
}

} // namespace samrun
