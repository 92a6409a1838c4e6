// SPDX-License-Identifier: BSD-3-Clause
// harness.cpp - see harness.hpp.
#include "harness.hpp"

#include <corosync/sam.h>

#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace it {

namespace {

// Program side: inherited over fork by the supervisor and every instance.
int g_event_fd = -1;
int g_command_fd = -1;
pid_t g_program_pid = -1;
// The instance's id for the signal events (written before any handler runs).
volatile sig_atomic_t g_instance_id = 0;

// Formats an unsigned number without the C library (signal handlers).
size_t put_u64(char *out, uint64_t v) noexcept {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; ++i)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t put_str(char *out, const char *s) noexcept {
    size_t n = 0;
    while (s[n] != '\0') {
        out[n] = s[n];
        ++n;
    }
    return n;
}

int open_pidfd(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

void set_nonblock(int fd) noexcept { (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

int remaining_ms(uint64_t deadline) noexcept {
    const uint64_t now = now_ns();
    if (now >= deadline)
        return 0;
    return static_cast<int>((deadline - now + 999999ULL) / 1000000ULL);
}

} // namespace

bool install_seccomp_filter(const sock_filter *body, size_t count, uint32_t foreign_action) {
    if (kAuditArch == 0)
        return false;
    std::vector<sock_filter> code = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, foreign_action),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
    };
    code.insert(code.end(), body, body + count);
    const sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
    return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

void emit(const char *fmt, ...) {
    char line[1024];
    int n = std::snprintf(line, sizeof line, "t=%llu pid=%d ", static_cast<unsigned long long>(now_ns()),
                          static_cast<int>(::getpid()));
    va_list ap;
    va_start(ap, fmt);
    n += std::vsnprintf(line + n, sizeof line - static_cast<size_t>(n) - 1, fmt, ap);
    va_end(ap);
    if (n > static_cast<int>(sizeof line) - 2)
        n = static_cast<int>(sizeof line) - 2;
    line[n++] = '\n';
    // One write below PIPE_BUF: atomic even with several writers.
    ssize_t ignored = ::write(g_event_fd, line, static_cast<size_t>(n));
    (void)ignored;
}

void emit_signal(int sig, unsigned iid) noexcept {
    const int saved = errno;
    char line[128];
    size_t n = put_str(line, "t=");
    n += put_u64(line + n, now_ns());
    n += put_str(line + n, " pid=");
    n += put_u64(line + n, static_cast<uint64_t>(::getpid()));
    n += put_str(line + n, " ev=signal sig=");
    n += put_u64(line + n, static_cast<uint64_t>(sig));
    n += put_str(line + n, " iid=");
    n += put_u64(line + n, iid);
    line[n++] = '\n';
    ssize_t ignored = ::write(g_event_fd, line, n);
    (void)ignored;
    errno = saved;
}

Registration register_instance(int interval_ms, int policy, std::initializer_list<int> catch_signals) {
    Registration r;
    if (sam_initialize(interval_ms, static_cast<sam_recovery_policy_t>(policy)) != CS_OK) {
        r.exit_status = 90;
        return r;
    }
    unsigned iid = 0;
    if (sam_register(&iid) != CS_OK) {
        r.exit_status = 91;
        return r;
    }
    set_instance_id(iid);
    for (int sig : catch_signals)
        catch_signal(sig);
    emit("ev=reg iid=%u", iid);
    r.iid = iid;
    return r;
}

void set_instance_id(unsigned iid) noexcept { g_instance_id = static_cast<sig_atomic_t>(iid); }
unsigned instance_id() noexcept { return static_cast<unsigned>(g_instance_id); }

void catch_signal(int sig) {
    struct sigaction sa {};
    sa.sa_handler = [](int caught) { emit_signal(caught, instance_id()); };
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    (void)::sigaction(sig, &sa, nullptr);
}

void idle_ms(int n) {
    const uint64_t until = now_ns() + ms(static_cast<uint64_t>(n));
    while (now_ns() < until)
        (void)command(static_cast<int>((until - now_ns()) / 1000000 + 1));
}

std::string command(int timeout_ms) {
    const uint64_t deadline = now_ns() + ms(static_cast<uint64_t>(timeout_ms));
    std::string line;
    for (;;) {
        pollfd p{g_command_fd, POLLIN, 0};
        const int n = ::poll(&p, 1, remaining_ms(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return "";
        // One byte at a time: the pipe is shared with later instances, which
        // must find the next line whole.
        char c;
        const ssize_t r = ::read(g_command_fd, &c, 1);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return "";
        if (c == '\n')
            return line;
        line.push_back(c);
    }
}

pid_t program_pid() noexcept { return g_program_pid; }

std::string Event::get(const char *key) const {
    const std::string k = std::string(key) + "=";
    size_t pos = 0;
    while ((pos = text.find(k, pos)) != std::string::npos) {
        if (pos == 0 || text[pos - 1] == ' ') {
            const size_t start = pos + k.size();
            const size_t end = text.find(' ', start);
            return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
        }
        pos += k.size();
    }
    return "";
}

long long Event::num(const char *key, long long fallback) const {
    const std::string v = get(key);
    if (v.empty())
        return fallback;
    char *end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 0);
    return (end != nullptr && *end == '\0') ? n : fallback;
}

bool wait_gone(pid_t pid, int timeout_ms) noexcept {
    const uint64_t deadline = now_ns() + ms(static_cast<uint64_t>(timeout_ms));
    const int fd = open_pidfd(pid);
    if (fd >= 0) {
        // A pidfd becomes readable when the process exits (zombie or not).
        for (;;) {
            pollfd p{fd, POLLIN, 0};
            const int n = ::poll(&p, 1, remaining_ms(deadline));
            if (n < 0 && errno == EINTR)
                continue;
            ::close(fd);
            return n > 0 || process_gone(pid);
        }
    }
    // No pidfd (already reaped, or no kernel support): look at /proc.
    while (!process_gone(pid)) {
        if (now_ns() >= deadline)
            return false;
        pollfd none{-1, 0, 0};
        (void)::poll(&none, 0, 2);
    }
    return true;
}

namespace {
// utime + stime of a /proc/.../stat file in milliseconds, -1 if unreadable.
long long stat_cpu_ms(const char *path) noexcept {
    FILE *f = std::fopen(path, "re");
    if (f == nullptr)
        return -1;
    char buf[1024];
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char *p = std::strrchr(buf, ')');
    if (p == nullptr)
        return -1;
    // Fields after the command: state(3) ... utime(14) stime(15).
    unsigned long long utime = 0, stime = 0;
    if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    const long hz = ::sysconf(_SC_CLK_TCK);
    return static_cast<long long>((utime + stime) * 1000ULL / static_cast<unsigned long long>(hz));
}
} // namespace

long long cpu_ms(pid_t pid) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    return stat_cpu_ms(path);
}

long long thread_cpu_ms(pid_t pid, pid_t tid) noexcept {
    char path[96];
    std::snprintf(path, sizeof path, "/proc/%d/task/%d/stat", static_cast<int>(pid), static_cast<int>(tid));
    return stat_cpu_ms(path);
}

std::string describe_status(int status) {
    char buf[64];
    if (WIFEXITED(status))
        std::snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        std::snprintf(buf, sizeof buf, "signal %d", WTERMSIG(status));
    else
        std::snprintf(buf, sizeof buf, "status 0x%x", status);
    return buf;
}

std::string describe_exit(const Exit &x) {
    return x.exited ? describe_status(x.status) : "still running at the deadline";
}

void Program::start(const std::function<int()> &body, const Env &env) {
    // Orphans of the scenario come to us: their status can be read, and no
    // zombie waits for a slow PID 1.
    (void)::prctl(PR_SET_CHILD_SUBREAPER, 1);
    int ev[2], lg[2], cmd[2];
    if (::pipe2(ev, O_CLOEXEC) != 0 || ::pipe2(lg, O_CLOEXEC) != 0 || ::pipe2(cmd, O_CLOEXEC) != 0) {
        std::perror("pipe2");
        std::abort();
    }
    // Nothing buffered may be written twice by a process that calls exit().
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        std::perror("fork");
        std::abort();
    }
    if (pid == 0) {
        (void)::setpgid(0, 0);
        ::close(ev[0]);
        ::close(lg[0]);
        ::close(cmd[1]);
        // Inherited (no O_CLOEXEC) by every process of the scenario.
        g_event_fd = ::dup(ev[1]);
        g_command_fd = ::dup(cmd[0]);
        ::dup2(lg[1], STDOUT_FILENO);
        ::dup2(lg[1], STDERR_FILENO);
        ::close(ev[1]);
        ::close(lg[1]);
        ::close(cmd[0]);
        g_program_pid = ::getpid();
        rlimit no_core{0, 0};
        (void)::setrlimit(RLIMIT_CORE, &no_core);
        ::setenv("SAM_LOG_STDERR", "1", 1);
        for (const auto &kv : env)
            ::setenv(kv.first.c_str(), kv.second.c_str(), 1);
        // Start clean whatever the test runner inherited: no blocked signal,
        // and none ignored (a job started in the background by a
        // non-interactive shell ignores SIGINT and SIGQUIT, which would
        // defeat the tests that forward them).
        for (int sig = 1; sig < NSIG; ++sig) {
            if (sig != SIGKILL && sig != SIGSTOP)
                (void)::signal(sig, SIG_DFL);
        }
        sigset_t none;
        sigemptyset(&none);
        (void)::sigprocmask(SIG_SETMASK, &none, nullptr);
        const int code = body();
        std::fflush(nullptr);
        ::_exit(code);
    }
    (void)::setpgid(pid, pid); // also from here: no race with the child's own call
    ::close(ev[1]);
    ::close(lg[1]);
    ::close(cmd[0]);
    pid_ = pid;
    events_fd_ = ev[0];
    log_fd_ = lg[0];
    command_fd_ = cmd[1];
    set_nonblock(events_fd_);
    set_nonblock(log_fd_);
    pidfd_ = open_pidfd(pid);
}

bool Program::pump(int timeout_ms) {
    pollfd p[2] = {{events_fd_, POLLIN, 0}, {log_fd_, POLLIN, 0}};
    const int n = ::poll(p, 2, timeout_ms);
    if (n <= 0)
        return false;
    bool got = false;
    char buf[65536];
    if (events_fd_ >= 0 && (p[0].revents & (POLLIN | POLLHUP)) != 0) {
        ssize_t r;
        while ((r = ::read(events_fd_, buf, sizeof buf)) > 0) {
            got = true;
            partial_.append(buf, static_cast<size_t>(r));
            size_t nl;
            while ((nl = partial_.find('\n')) != std::string::npos) {
                Event e;
                e.text = partial_.substr(0, nl);
                partial_.erase(0, nl + 1);
                e.t = static_cast<uint64_t>(e.num("t", 0));
                e.pid = static_cast<pid_t>(e.num("pid", 0));
                events_.push_back(std::move(e));
            }
        }
        if (r == 0) { // every writer is gone
            ::close(events_fd_);
            events_fd_ = -1;
        }
    }
    if (log_fd_ >= 0 && (p[1].revents & (POLLIN | POLLHUP)) != 0) {
        ssize_t r;
        while ((r = ::read(log_fd_, buf, sizeof buf)) > 0) {
            got = true;
            log_.append(buf, static_cast<size_t>(r));
        }
        if (r == 0) {
            ::close(log_fd_);
            log_fd_ = -1;
        }
    }
    return got;
}

bool Program::wait_event(const std::function<bool(const Event &)> &pred, int timeout_ms, Event *out) {
    const uint64_t deadline = now_ns() + ms(static_cast<uint64_t>(timeout_ms));
    for (;;) {
        for (; cursor_ < events_.size(); ++cursor_) {
            if (pred(events_[cursor_])) {
                if (out != nullptr)
                    *out = events_[cursor_];
                ++cursor_;
                return true;
            }
        }
        const int left = remaining_ms(deadline);
        if (left == 0 && now_ns() >= deadline) {
            pump(0);
            if (cursor_ == events_.size())
                return false;
            continue;
        }
        if (events_fd_ < 0 && log_fd_ < 0)
            return false;
        pump(left);
    }
}

bool Program::wait_event(const char *ev, int timeout_ms, Event *out) {
    const std::string want(ev);
    return wait_event([&](const Event &e) { return e.get("ev") == want; }, timeout_ms, out);
}

const std::vector<Event> &Program::events() {
    while (pump(0)) {
    }
    return events_;
}

std::vector<Event> Program::events_of(const char *ev) {
    std::vector<Event> out;
    for (const Event &e : events())
        if (e.is(ev))
            out.push_back(e);
    return out;
}

bool Program::wait_log(const std::string &text, int timeout_ms) {
    const uint64_t deadline = now_ns() + ms(static_cast<uint64_t>(timeout_ms));
    for (;;) {
        if (log_.find(text) != std::string::npos)
            return true;
        if (now_ns() >= deadline || (events_fd_ < 0 && log_fd_ < 0)) {
            while (pump(0)) {
            }
            return log_.find(text) != std::string::npos;
        }
        pump(remaining_ms(deadline));
    }
}

const std::string &Program::log() {
    while (pump(0)) {
    }
    return log_;
}

void Program::send(const std::string &line) {
    const std::string l = line + "\n";
    ssize_t ignored = ::write(command_fd_, l.data(), l.size());
    (void)ignored;
}

Exit Program::wait_exit(int timeout_ms) {
    Exit r;
    if (pid_ <= 0 || reaped_)
        return r;
    const uint64_t deadline = now_ns() + ms(static_cast<uint64_t>(timeout_ms));
    for (;;) {
        int st = 0;
        const pid_t w = ::waitpid(pid_, &st, WNOHANG);
        if (w == pid_) {
            reaped_ = true;
            r.exited = true;
            r.status = st;
            while (pump(0)) {
            }
            return r;
        }
        if (now_ns() >= deadline)
            return r;
        // Sleep on the pidfd and the output pipes, whichever speaks first.
        pollfd p[3] = {{pidfd_, POLLIN, 0}, {events_fd_, POLLIN, 0}, {log_fd_, POLLIN, 0}};
        const int n = ::poll(p, 3, remaining_ms(deadline));
        if (n > 0 && ((p[1].revents | p[2].revents) != 0))
            pump(0);
    }
}

Exit Program::wait_orphan(pid_t pid, int timeout_ms) {
    Exit r;
    if (!wait_gone(pid, timeout_ms))
        return r;
    int st = 0;
    if (::waitpid(pid, &st, 0) == pid) {
        r.exited = true;
        r.status = st;
    }
    return r;
}

void Program::cleanup() noexcept {
    if (pid_ > 0) {
        (void)::kill(-pid_, SIGKILL);
        if (!reaped_) {
            int st;
            (void)::waitpid(pid_, &st, 0);
            reaped_ = true;
        }
        // Reap what was left of the group (reparented to us, the subreaper).
        const uint64_t deadline = now_ns() + ms(3000);
        for (;;) {
            int st;
            while (::waitpid(-pid_, &st, WNOHANG) > 0) {
            }
            if (::kill(-pid_, 0) != 0 || now_ns() >= deadline)
                break;
            (void)::kill(-pid_, SIGKILL);
            pollfd none{-1, 0, 0};
            (void)::poll(&none, 0, 2);
        }
        pid_ = -1;
    }
    for (int *fd : {&pidfd_, &events_fd_, &log_fd_, &command_fd_}) {
        if (*fd >= 0)
            ::close(*fd);
        *fd = -1;
    }
    partial_.clear();
    events_.clear();
    cursor_ = 0;
    log_.clear();
    reaped_ = false;
}

std::string Program::transcript() {
    std::string s = "\n--- events ---\n";
    for (const Event &e : events())
        s += e.text + "\n";
    s += "--- stderr ---\n" + log() + "---\n";
    return s;
}

} // namespace it
