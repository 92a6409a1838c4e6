// SPDX-License-Identifier: BSD-3-Clause
// service_filter.cpp - see service_filter.hpp.
#include "service_filter.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "system_service_calls.hpp"

namespace it {

namespace {

// Sanitizer runtimes make calls of their own that a production build never
// makes. LeakSanitizer checks for leaks when a process exits: a task it
// clones stops the process with ptrace(2), outside @system-service. Killed,
// that task leaves the exiting process waiting for it for ever, so sanitizer
// builds (and only they) allow ptrace.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif
#else
constexpr bool kSanitizerBuild = false;
#endif
const long kSanitizerCalls[] = {
    __NR_ptrace,
};

} // namespace

bool allow_only_system_service() {
    std::vector<sock_filter> body;
    // systemd's RestrictNamespaces= cannot see clone3's flags (they live in
    // memory) and answers it with ENOSYS: threads and children then come
    // from the C library's fallback to clone.
#ifdef __NR_clone3
    body.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1));
    body.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS));
#endif
    auto allow = [&body](long nr) {
        body.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1));
        body.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    };
    for (long nr : kSystemServiceCalls)
        allow(nr);
    if (kSanitizerBuild)
        for (long nr : kSanitizerCalls)
            allow(nr);
    body.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    return install_seccomp_filter(body.data(), body.size(), SECCOMP_RET_KILL_PROCESS);
}

std::string outcome(const Exit &x) {
    const std::string how = x.exited ? describe_status(x.status) : "still running at the deadline";
    const bool sigsys = x.exited && WIFSIGNALED(x.status) && WTERMSIG(x.status) == SIGSYS;
    return how + (sigsys ? " (a system call outside @system-service)" : "") + "\n";
}

std::string env_or(const char *name, const char *fallback) {
    const char *v = std::getenv(name);
    return v != nullptr && *v != '\0' ? v : fallback;
}

int exec_sam_run_filtered(const std::vector<std::string> &args) {
    if (!allow_only_system_service())
        return 89;
    if (::dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
        return 88;
    const std::string sam_run = env_or("SAM_RUN", "../../src/tools/sam-run");
    std::vector<char *> argv;
    argv.push_back(const_cast<char *>(sam_run.c_str()));
    for (const std::string &a : args)
        argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(sam_run.c_str(), argv.data());
    return 127;
}

} // namespace it
