// SPDX-License-Identifier: BSD-3-Clause
// harness.hpp - run one libsam scenario in a forked "program" and watch it.
//
// sam_register() turns the calling process into a supervisor and libsam keeps
// one process-wide state, so every scenario runs in a child of the test
// process (the program), in its own process group. The program, its
// supervisor and all its instances share three descriptors with the test:
//
//   events   a pipe; emit() writes one line per call ("t=<ns> pid=<pid> ...")
//            with a single write(), so lines of several processes never mix;
//            t is CLOCK_MONOTONIC of the emitting process, so timings are
//            measured where things happen, not where they are read;
//   commands a pipe the test writes lines to; an instance reads them with
//            command() (used by the scripted instance of script.hpp);
//   stderr   a pipe the test collects (SAM_LOG_STDERR=1 puts the
//            supervisor's log lines there).
//
// The test side waits for events, log lines and exits with deadlines, never
// by sleeping. A process counts as gone once it no longer exists or is a
// zombie. The test process is a child subreaper, so instances orphaned by a
// dead supervisor are reparented to it and their exit status can be read.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <linux/audit.h>
#include <linux/filter.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "common/proc.h"

namespace it {

// ThreadSanitizer delivers a signal to the handler only when the thread next
// enters the runtime (a libc call), and maps its own memory as it goes: the
// tests that time a signal handler or count mappings allow for that.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kUnderTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kUnderTsan = true;
#else
inline constexpr bool kUnderTsan = false;
#endif
#else
inline constexpr bool kUnderTsan = false;
#endif

// The seccomp architecture value of this build; 0 where the tests do not
// know it (tests that need a seccomp filter are then skipped).
#if defined(__x86_64__)
inline constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
inline constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
inline constexpr uint32_t kAuditArch = 0;
#endif

// Puts a seccomp filter on the calling thread (processes it forks inherit
// it) and sets no_new_privs. The filter checks the architecture (another one
// gets `foreign_action`), loads the system call number and runs `body`.
bool install_seccomp_filter(const struct sock_filter *body, size_t count, uint32_t foreign_action);

// CLOCK_MONOTONIC in ns (tests/common/proc.h, shared with the fault tests).
inline uint64_t now_ns() noexcept { return tp_now_ns(); }
inline uint64_t ms(uint64_t n) noexcept { return n * 1000000ULL; }
// Whole milliseconds from one now_ns() time (an Event's t) to another; negative
// when `to` is earlier.
inline long long ms_between(uint64_t from, uint64_t to) noexcept {
    return (static_cast<long long>(to) - static_cast<long long>(from)) / 1000000;
}
// Whole milliseconds from a now_ns() time until now.
inline long long ms_since(uint64_t from) noexcept { return ms_between(from, now_ns()); }

// ---- program side (any process of the scenario) ----

// printf-style; the line gets "t=<now> pid=<getpid()> " in front.
void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Async-signal-safe: emits "ev=signal sig=<sig> iid=<iid>".
void emit_signal(int sig, unsigned iid) noexcept;
// Next line from the test, without its newline; "" after timeout_ms or EOF.
std::string command(int timeout_ms);
// The program's own pid (the supervisor once sam_register ran).
pid_t program_pid() noexcept;

// The prologue of most scenarios: sam_initialize(interval_ms, policy) and
// sam_register(); then, in the new instance, a handler for each signal of
// `catch_signals` (see catch_signal()) and the event "ev=reg iid=<iid>",
// in that order, so a test that reacts to the event finds them in place.
struct Registration {
    unsigned iid = 0;    // 0: a call failed
    int exit_status = 0; // then: 90 sam_initialize failed, 91 sam_register failed
    explicit operator bool() const noexcept { return iid != 0; }
};
Registration register_instance(int interval_ms, int policy, std::initializer_list<int> catch_signals = {});
// This instance's id, as register_instance() (or the scenario) set it: the
// iid that catch_signal()'s events carry.
void set_instance_id(unsigned iid) noexcept;
unsigned instance_id() noexcept; // async-signal-safe
// Emits "ev=signal sig=<sig> iid=<this instance>" whenever sig arrives
// (SA_RESTART: the instance's own calls go on).
void catch_signal(int sig);
// Waits in the instance for n ms without calling libsam (command() serves
// only as a timed wait on a descriptor: the test sends nothing meanwhile).
void idle_ms(int n);

// ---- test side ----

struct Event {
    uint64_t t = 0;
    pid_t pid = 0;
    std::string text; // the whole line
    [[nodiscard]] std::string get(const char *key) const;
    [[nodiscard]] long long num(const char *key, long long fallback = -1) const;
    [[nodiscard]] bool is(const char *ev) const { return get("ev") == ev; }
};

struct Exit {
    bool exited = false; // false: did not end before the deadline
    int status = 0;      // waitpid() status
};

// Gone: no such process, or a zombie (tests/common/proc.h).
inline bool process_gone(pid_t pid) noexcept { return tp_process_gone(pid) != 0; }
// Descriptors `pid` has open, -1 if unreadable (tests/common/proc.h).
inline int count_fds(pid_t pid) noexcept { return tp_count_fds(pid); }
// Waits until pid is gone (pidfd where possible); false at the deadline.
bool wait_gone(pid_t pid, int timeout_ms) noexcept;
// CPU time (user + system, all threads) of a process in milliseconds, -1 if unknown.
long long cpu_ms(pid_t pid) noexcept;
// The same for one thread `tid` of the process.
long long thread_cpu_ms(pid_t pid, pid_t tid) noexcept;
std::string describe_status(int status);
// "exit 3", "signal 9", or "still running at the deadline".
std::string describe_exit(const Exit &x);
inline bool exited_with(const Exit &x, int code) noexcept {
    return x.exited && WIFEXITED(x.status) && WEXITSTATUS(x.status) == code;
}
inline bool killed_by(const Exit &x, int sig) noexcept {
    return x.exited && WIFSIGNALED(x.status) && WTERMSIG(x.status) == sig;
}

class Program {
  public:
    using Env = std::vector<std::pair<std::string, std::string>>;

    Program() = default;
    Program(const Program &) = delete;
    Program &operator=(const Program &) = delete;
    ~Program() { cleanup(); }

    // Forks the program; body's return value becomes its exit status.
    // SAM_LOG_STDERR=1 is always set; env adds or overrides variables.
    void start(const std::function<int()> &body, const Env &env = {});

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    // Waits for the next event (after the last one waited for) for which
    // pred is true, or that has ev=<ev>. Returns false at the deadline.
    bool wait_event(const std::function<bool(const Event &)> &pred, int timeout_ms, Event *out = nullptr);
    bool wait_event(const char *ev, int timeout_ms, Event *out = nullptr);
    // Every event received so far (pumps what is readable first).
    const std::vector<Event> &events();
    std::vector<Event> events_of(const char *ev);

    // Waits until stderr holds a line containing text; false at the deadline.
    bool wait_log(const std::string &text, int timeout_ms);
    const std::string &log();

    void send(const std::string &line);

    // Waits for the program (the supervisor) to end and reaps it.
    Exit wait_exit(int timeout_ms);
    // Reaps a reparented orphan of this program (test process is a subreaper).
    Exit wait_orphan(pid_t pid, int timeout_ms);

    // SIGKILL to the whole process group, reap everything. Idempotent.
    void cleanup() noexcept;

    // A short report of what was seen, for failure messages.
    std::string transcript();

  private:
    bool pump(int timeout_ms);

    pid_t pid_ = -1;
    int pidfd_ = -1;
    int events_fd_ = -1;
    int log_fd_ = -1;
    int command_fd_ = -1;
    bool reaped_ = false;
    std::string partial_;
    std::vector<Event> events_;
    size_t cursor_ = 0;
    std::string log_;
};

} // namespace it
