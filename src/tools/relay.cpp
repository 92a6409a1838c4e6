// SPDX-License-Identifier: BSD-3-Clause
// relay.cpp - the instance side of sam-run (see relay.hpp).
//
// One poll loop over five descriptors, one handler per event:
//   program pidfd  -> on_program_exit   (the program is gone: leave like it)
//   signalfd       -> on_signal         (forward to the program)
//   timerfd        -> on_tick           (liveness health checks, upstream pings)
//   notify socket  -> on_notify         (READY/WATCHDOG/STOPPING/STATUS/FDSTORE)
//   timerfd        -> on_start_timeout  (--notify --start-timeout: no READY=1 in time)
// State: phase_ says where the instance is in its life, and whether libsam
// is timing us (Running: between sam_start and sam_stop); a few facts kept
// beside it say why the program's end is or is not a failure. --check runs
// in libsam's callback thread (health_check.cpp).
// The program runs in a process group (and cgroup) of its own, group_: every
// signal goes to all of it, and it is ended whenever the program's first
// process is gone; the keeper (keeper.hpp) does that if we are killed.
#include "pidfd.hpp"
#include <corosync/sam.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <system_error>

#include "base.hpp"
#include "blocking_signals.hpp"
#include "containment.hpp"
#include "fdstore.hpp"
#include "health_check.hpp"
#include "history.hpp"
#include "keeper.hpp"
#include "log.hpp"
#include "process.hpp"
#include "relay.hpp"
#include "run_record.hpp"

extern char **environ;

namespace samrun {

namespace {

constexpr int kExitInternal = 125;
// How many rejected notify datagrams are logged before we go quiet.
constexpr unsigned kRejectLogLimit = 10;

std::string printable(const std::string &text) {
    std::string out;
    for (unsigned char c : text.substr(0, 200)) {
        out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
    }
    return out;
}

// Where the instance is in its life. libsam times us (between sam_start and
// sam_stop) in Running only; every change goes through enter().
enum class Phase {
    Starting,     // setting up, no program yet; the quorum gate
    WaitingReady, // --notify: health checking waits for READY=1
    Running,      // libsam times us: missed health checks and the program's end count
    Stopping,     // STOPPING=1 came, health checking (if it ran) stopped: an end is expected
    Leaving,      // the program finished or could not be executed: we exit like it
    GaveUp,       // --max-restarts exceeded: no program, the instance exits
};

class Relay {
  public:
    explicit Relay(const RelaySetup &setup) : setup_(setup), opts_(*setup.options) {}
    [[noreturn]] void run();

  private:
    void enter(Phase next) { phase_ = next; }
    [[nodiscard]] bool checking() const { return phase_ == Phase::Running; }
    [[nodiscard]] bool start_health_checking(const char *why);
    void stop_health_checking(const char *why, Phase next);
    void block_signals();
    void spawn_program();
    void end_program_group();
    void arm_start_timeout();
    [[noreturn]] void give_up();
    [[noreturn]] void give_up_after_quorum_loss();
    [[noreturn]] void leave_given_up(const std::string &reason, const std::string &status);
    void publish_history();
    using Facts = std::vector<std::pair<std::string, std::string>>;
    // `instance`: 0 for this one.
    void emit(const char *event, Facts facts = {}, unsigned instance = 0);
    void emit_end(const siginfo_t &info, const char *event, const std::string &reason);
    [[nodiscard]] FailureCause warning_cause() const;
    void arm_ticks();
    [[noreturn]] void fatal(const char *what, int err);

    void on_program_exit();
    void on_signal();
    void on_tick();
    void on_start_timeout();
    void on_notify();
    void on_notify_field(const std::string &key, const std::string &value);
    void on_notify_fdstore(const NotifyMessage &message);
    [[nodiscard]] std::vector<UniqueFd> descriptors_to_pass(std::vector<std::string> &names);

    // Did the warn signal come because the program is unhealthy, rather
    // than a stop request passed on by the supervisor (both may be SIGTERM)?
    // A warning sent with sigqueue() says so itself; otherwise we look at
    // what we know of the program's health.
    [[nodiscard]] bool is_warning(const signalfd_siginfo &si) const {
        if (static_cast<int>(si.ssi_signo) != opts_.warn_signal_or_default() || !checking()) {
            return false;
        }
        if (si.ssi_code == SI_QUEUE) {
            return true;
        }
        if (check_) {
            return check_->unhealthy();
        }
        return opts_.notify && opts_.interval_ms > 0 &&
               monotonic_ms() - last_watchdog_ms_ >= static_cast<uint64_t>(opts_.interval_ms);
    }

    [[nodiscard]] bool sam_liveness_ticks() const {
        return !opts_.notify && !opts_.check_command && opts_.interval_ms > 0;
    }
    [[nodiscard]] bool upstream_ticks() const {
        return setup_.upstream->watchdog_usec() > 0 &&
               (opts_.interval_ms == 0 || (!opts_.notify && !opts_.check_command));
    }

    const RelaySetup &setup_;
    const Options &opts_;
    RunRecord record_;
    Phase phase_ = Phase::Starting;
    // Facts, not phases: each records something that happened, stays true
    // whatever the phase does next, and the program's end is judged on them
    // together with the phase.
    bool triggered_ = false;        // WATCHDOG=trigger: we killed the program
    bool not_ready_ = false;        // --start-timeout passed before READY=1: we killed it
    int stop_signal_forwarded_ = 0; // TERM or INT passed on: an end is expected
    bool warned_ = false;           // the warn signal came while we were unhealthy
    FailureCause warn_cause_ = FailureCause::None;
    bool ready_seen_ = false; // --notify: READY=1 came once; the start timeout is over
    uint64_t instance_started_ns_ = 0;
    uint64_t last_watchdog_ms_ = 0; // --notify: last WATCHDOG=1 or READY=1
    unsigned rejected_ = 0;
    sigset_t forwarded_{};
    UniqueFd signal_fd_;
    UniqueFd tick_fd_;
    UniqueFd start_fd_; // --notify --start-timeout: one-shot
    std::unique_ptr<HistoryPublisher> history_;
    Spawned program_;
    ProgramGroup group_; // the program and everything it started
    KeeperLink keeper_;  // ends group_ if we are killed first
    FdStoreLink fdstore_;
    std::unique_ptr<HealthCheck> check_;
};

bool Relay::start_health_checking(const char *why) {
    uint64_t before = monotonic_ms();
    cs_error_t err;
    if (opts_.quorum) {
        // The program's pidfd is closed once it is reaped: then a stop
        // signal has nobody to go to and ends the relay.
        SignalsDuringBlockingCall guard(signal_fd_.get(), program_.pidfd.get(), group_);
        err = sam_start();
        if (int stop = guard.stop_forwarded(); stop != 0) {
            stop_signal_forwarded_ = stop;
        }
    } else {
        err = sam_start();
    }
    if (err != CS_OK) {
        log_line("sam_start failed (error %d)", static_cast<int>(err));
        return false;
    }
    enter(Phase::Running);
    uint64_t waited = monotonic_ms() - before;
    if (opts_.quorum && waited >= 100) {
        log_line("cluster is quorate after %.1fs of waiting", static_cast<double>(waited) / 1000.0);
    }
    if (why != nullptr) {
        log_line("health checking started (%s)", why);
    }
    setup_.upstream->send("READY=1\nSTATUS=instance " + std::to_string(setup_.instance_id) + " running");
    return true;
}

void Relay::stop_health_checking(const char *why, Phase next) {
    cs_error_t err = sam_stop();
    if (err != CS_OK) {
        log_line("sam_stop failed (error %d)", static_cast<int>(err));
    }
    enter(next);
    log_line("health checking stopped (%s)", why);
}

void Relay::fatal(const char *what, int err) {
    log_line("%s: %s", what, strerror(err));
    // The group first, while its unreaped leader keeps the id from being
    // reused.
    end_program_group();
    if (program_.pidfd.valid()) {
        pidfd_send_signal(program_.pidfd.get(), SIGKILL, nullptr, 0);
        (void)reap(program_.pidfd.get());
    }
    if (checking()) {
        (void)sam_stop(); // an internal error is not the program's failure
    }
    _exit(kExitInternal);
}

void Relay::block_signals() {
    sigemptyset(&forwarded_);
    for (int sig : kForwardedSignals) {
        sigaddset(&forwarded_, sig);
    }
    if (int warn = opts_.warn_signal_or_default(); warn != SIGKILL) {
        sigaddset(&forwarded_, warn);
    }
    // Signals enter the loop through a descriptor; nothing runs in a handler.
    int err = pthread_sigmask(SIG_BLOCK, &forwarded_, nullptr);
    if (err != 0) {
        fatal("pthread_sigmask", err);
    }
    signal_fd_.reset(signalfd(-1, &forwarded_, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signal_fd_.valid()) {
        fatal("signalfd", errno);
    }
}

void Relay::spawn_program() {
    std::vector<std::string> env;
    for (char **e = environ; e != nullptr && *e != nullptr; ++e) {
        // LISTEN_* given to sam-run describe sam-run's descriptors, never
        // the program's.
        if (strncmp(*e, "SAM_RUN_", 8) != 0 && strncmp(*e, "LISTEN_FDS=", 11) != 0 &&
            strncmp(*e, "LISTEN_PID=", 11) != 0 && strncmp(*e, "LISTEN_FDNAMES=", 15) != 0) {
            env.emplace_back(*e);
        }
    }
    env.push_back("SAM_RUN_INSTANCE=" + std::to_string(setup_.instance_id));
    env.push_back("SAM_RUN_FAILURES=" + std::to_string(record_.failures()));
    if (!record_.previous_end().empty()) {
        env.push_back("SAM_RUN_PREVIOUS_END=" + record_.previous_end());
    }
    size_t pid_slot = SIZE_MAX;
    if (setup_.notify != nullptr) {
        env.push_back("NOTIFY_SOCKET=" + setup_.notify->address());
        if (opts_.interval_ms > 0) {
            env.push_back("WATCHDOG_USEC=" + std::to_string(static_cast<uint64_t>(opts_.interval_ms) * 1000u));
            pid_slot = env.size();
            env.push_back("WATCHDOG_PID=" + std::string(20, ' '));
        }
    }
    std::vector<std::string> fd_names;
    std::vector<UniqueFd> passed = descriptors_to_pass(fd_names);
    std::vector<int> passed_numbers;
    size_t listen_pid_slot = SIZE_MAX;
    if (!passed.empty()) {
        std::string joined;
        for (const std::string &name : fd_names) {
            joined += (joined.empty() ? "" : ":") + name;
        }
        env.push_back("LISTEN_FDS=" + std::to_string(passed.size()));
        listen_pid_slot = env.size();
        env.push_back("LISTEN_PID=" + std::string(20, ' '));
        env.push_back("LISTEN_FDNAMES=" + joined);
        for (const UniqueFd &fd : passed) {
            passed_numbers.push_back(fd.get());
        }
    }
    ExecVector argv(opts_.command);
    ExecVector envp(std::move(env));
    SpawnRequest request;
    request.path = setup_.program_path;
    request.argv = &argv;
    request.envp = &envp;
    request.pid_slots[0] = pid_slot != SIZE_MAX ? envp.entry(pid_slot) : nullptr;
    request.pid_slots[1] = listen_pid_slot != SIZE_MAX ? envp.entry(listen_pid_slot) : nullptr;
    request.passed_fds = passed_numbers.data();
    request.passed_fd_count = passed_numbers.size();
    request.own_process_group = true;
    UniqueFd cgroup_procs;
    if (setup_.cgroup_parent) {
        std::string why;
        cgroup_procs = group_.prepare_cgroup(
            *setup_.cgroup_parent,
            "sam-run-" + std::to_string(setup_.supervisor_pid) + "." + std::to_string(setup_.instance_id), why);
        if (!cgroup_procs.valid()) {
            log_line("no cgroup for the program, its process group only: %s", why.c_str());
        }
        request.cgroup_procs_fd = cgroup_procs.get();
    }
    try {
        program_ = spawn_process(request);
    } catch (const std::system_error &e) {
        group_.drop_cgroup();
        fatal("cannot start the program", e.code().value());
    }
    cgroup_procs.reset();
    // The supervisor holds the listening sockets, the store what it keeps:
    // none of these closes is the last.
    passed.clear();
    if (program_.exec_errno == 0) {
        // Not for a child already reaped: its id may be reused.
        group_.set_pgid(program_.pid);
    }
    if (program_.cgroup_errno != 0) {
        log_line("the program could not join %s (%s): its process group only", group_.cgroup().c_str(),
                 strerror(program_.cgroup_errno));
        group_.drop_cgroup();
    }
    keeper_.announce(setup_.instance_id, group_.pgid(), group_.cgroup());
    if (program_.exec_errno != 0) {
        end_program_group();
        int status = program_.exec_errno == ENOENT ? kExitNotFound : kExitCannotExecute;
        log_line("cannot execute %s: %s", setup_.program_path.c_str(), strerror(program_.exec_errno));
        program_.pidfd.reset();
        record_.record_exit_status(status);
        if (checking()) {
            stop_health_checking("the program could not be executed", Phase::Leaving);
        }
        _exit(status);
    }
    if (check_) {
        check_->set_program(program_.pid);
        if (opts_.start_timeout_ms) {
            check_->start_grace(*opts_.start_timeout_ms);
        }
    }
    emit("started");
    log_line("started %s as pid %d in %s%s%s", opts_.command.front().c_str(), static_cast<int>(program_.pid),
             group_.cgroup().empty() ? "its own process group" : group_.cgroup().c_str(),
             record_.previous_end().empty() ? "" : "; previous instance: ", record_.previous_end().c_str());
}

std::vector<UniqueFd> Relay::descriptors_to_pass(std::vector<std::string> &names) {
    std::vector<StoredFd> stored;
    if (fdstore_.connected() && !fdstore_.fetch(stored)) {
        log_line("the file descriptor store did not answer: the program gets no stored descriptors");
        stored.clear();
    }
    size_t listening = setup_.listen != nullptr ? setup_.listen->fds().size() : 0;
    // Copies numbered above every target (3 .. 3+count-1), so that the
    // child's dup2() calls never overwrite one still to be placed.
    const int floor = 3 + static_cast<int>(listening + stored.size());
    std::vector<UniqueFd> out;
    auto take = [&](int fd, const std::string &name) {
        UniqueFd copy(fcntl(fd, F_DUPFD_CLOEXEC, floor));
        if (!copy.valid()) {
            fatal("cannot prepare the descriptors to pass", errno);
        }
        out.push_back(std::move(copy));
        names.push_back(name);
    };
    for (size_t i = 0; i < listening; ++i) {
        take(setup_.listen->fds()[i].get(), setup_.listen->names()[i]);
    }
    for (StoredFd &entry : stored) {
        take(entry.fd.get(), entry.name);
        entry.fd.reset(); // the store keeps its own copy: not the last close
    }
    if (!stored.empty()) {
        log_line("passing %zu stored descriptor(s) to the program", stored.size());
    }
    return out;
}

void Relay::end_program_group() {
    // Whatever the program left behind goes with it, before the next
    // instance starts or sam-run exits.
    group_.end();
    keeper_.clear();
}

void Relay::arm_ticks() {
    uint64_t period_ms = 0;
    if (sam_liveness_ticks()) {
        period_ms = std::max<uint64_t>(1, static_cast<uint64_t>(opts_.interval_ms) / 3);
    }
    if (upstream_ticks()) {
        uint64_t upstream_ms = std::max<uint64_t>(1, setup_.upstream->watchdog_usec() / 3000);
        period_ms = period_ms == 0 ? upstream_ms : std::min(period_ms, upstream_ms);
    }
    if (period_ms == 0) {
        return;
    }
    tick_fd_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!tick_fd_.valid()) {
        fatal("timerfd_create", errno);
    }
    itimerspec spec{};
    spec.it_interval.tv_sec = static_cast<time_t>(period_ms / 1000);
    spec.it_interval.tv_nsec = static_cast<long>((period_ms % 1000) * 1000000);
    spec.it_value = spec.it_interval;
    if (timerfd_settime(tick_fd_.get(), 0, &spec, nullptr) != 0) {
        fatal("timerfd_settime", errno);
    }
}

void Relay::run() {
    log_set_pid(setup_.supervisor_pid);
    log_set_instance(setup_.instance_id);
    // First, while this is the only thread: libsam's threads started later
    // inherit the mask, so no stop signal can hit a thread that would die
    // of it instead of letting us forward it.
    block_signals();
    if (!keeper_.connect(setup_.keeper_channel)) {
        log_line("cannot reach the keeper: if this instance is killed, what its program started may live on");
    }
    if (setup_.fdstore_channel >= 0 && !fdstore_.connect(setup_.fdstore_channel)) {
        log_line("cannot reach the file descriptor store: FDSTORE=1 is ignored in this instance");
    }
    record_.begin_instance();
    {
        timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        instance_started_ns_ = static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
    }
    if (opts_.cmap) {
        history_ = std::make_unique<HistoryPublisher>(setup_.supervisor_pid);
    }
    if (record_.previous_end() == "killed by the supervisor") {
        // That relay could not say so itself.
        emit("failed", {{"SAM_REASON", record_.last_failure().value_or("killed")}, {"SAM_SIGNAL", "KILL"}},
             /* instance= */ setup_.instance_id - 1);
    }
    if (opts_.max_restarts &&
        record_.over_restart_limit(*opts_.max_restarts, static_cast<uint64_t>(opts_.restart_window_s) * 1000u)) {
        give_up();
    }
    if (opts_.quorum_loss_gives_up && record_.restarted() && record_.last_cause() == FailureCause::QuorumLoss) {
        give_up_after_quorum_loss();
    }
    if (record_.restarted()) {
        emit("restarting", {{"SAM_REASON", record_.last_failure().value_or("")}});
    }
    if (opts_.check_command) {
        // libsam pauses its health checks while the callback runs, so by
        // default a check gets half the interval, leaving the other half
        // for the heartbeat that follows it.
        int timeout = opts_.check_timeout_ms.value_or(std::max(1, opts_.interval_ms / 2));
        check_ = std::make_unique<HealthCheck>(*opts_.check_command, timeout, *setup_.upstream);
        int err = HealthCheck::register_callback(check_.get());
        if (err != CS_OK) {
            log_line("sam_hc_callback_register failed (error %d)", err);
            _exit(kExitInternal);
        }
    }
    if (!opts_.notify) {
        if (!start_health_checking(nullptr)) {
            _exit(kExitInternal);
        }
    } else if (opts_.quorum) {
        // Gate on quorum only; READY=1 starts health checking.
        if (!start_health_checking(nullptr)) {
            _exit(kExitInternal);
        }
        stop_health_checking("waiting for READY=1", Phase::WaitingReady);
    } else {
        enter(Phase::WaitingReady);
    }
    spawn_program();
    publish_history();
    arm_ticks();
    arm_start_timeout();

    for (;;) {
        pollfd fds[5] = {
            {program_.pidfd.get(), POLLIN, 0}, {signal_fd_.get(), POLLIN, 0},
            {tick_fd_.get(), POLLIN, 0},       {setup_.notify != nullptr ? setup_.notify->fd() : -1, POLLIN, 0},
            {start_fd_.get(), POLLIN, 0},
        };
        if (poll(fds, 5, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            fatal("poll", errno);
        }
        // Signals first: a stop signal and the program's death in the same
        // round must still reach the program before we leave.
        if (fds[1].revents != 0) {
            on_signal();
        }
        if (fds[3].revents != 0) {
            on_notify();
        }
        if (fds[2].revents != 0) {
            on_tick();
        }
        if (fds[4].revents != 0) {
            on_start_timeout();
        }
        if (fds[0].revents != 0) {
            on_program_exit();
        }
    }
}

FailureCause Relay::warning_cause() const {
    if (check_ && check_->unhealthy()) {
        return FailureCause::CheckFailed;
    }
    bool watchdog_late = opts_.notify && opts_.interval_ms > 0 &&
                         monotonic_ms() - last_watchdog_ms_ >= static_cast<uint64_t>(opts_.interval_ms);
    // Healthy as far as we know, and the cluster decides whether we run.
    if (opts_.quorum && !watchdog_late) {
        return FailureCause::QuorumLoss;
    }
    return FailureCause::MissedDeadline;
}

void Relay::give_up() {
    unsigned long max = *opts_.max_restarts;
    const char *plural = record_.window_restarts() == 1 ? "" : "s";
    std::string last = record_.last_failure().value_or("none");
    if (opts_.restart_window_s != 0) {
        log_line(
            "giving up after %u restart%s within %lu s (--max-restarts %lu --restart-window %lu); last failure: %s",
            record_.window_restarts(), plural, opts_.restart_window_s, max, opts_.restart_window_s, last.c_str());
    } else {
        log_line("giving up after %u restart%s (--max-restarts %lu); last failure: %s", record_.window_restarts(),
                 plural, max, last.c_str());
    }
    leave_given_up(
        "more than --max-restarts " + std::to_string(max) + " restarts" +
            (opts_.restart_window_s != 0 ? " within " + std::to_string(opts_.restart_window_s) + " s" : std::string()) +
            "; last failure: " + last,
        "gave up after " + std::to_string(record_.window_restarts()) + " restarts");
}

// --quorum-loss give-up: the previous program was stopped because the
// cluster lost quorum. Waiting for quorum to start it again would start it
// here when the partition heals, while a cluster manager may have started it
// elsewhere meanwhile: leave, and let that manager decide where it runs.
void Relay::give_up_after_quorum_loss() {
    log_line("giving up: the program was stopped when the cluster lost quorum (--quorum-loss give-up)");
    leave_given_up("quorum loss (--quorum-loss give-up)", "gave up after a quorum loss");
}

void Relay::leave_given_up(const std::string &reason, const std::string &status) {
    // sam_mark_failed() would leave libsam's own state "failed", but its
    // supervisor answers it with SIGKILL to this instance and then dies of
    // the same signal: sam-run would exit 137, like a killed program. The
    // next layer needs a status of its own more, so "failed" is kept under
    // sam-run's prefix instead, for --status and the cluster to read.
    enter(Phase::GaveUp);
    publish_history();
    emit("gave-up", {{"SAM_REASON", reason}});
    setup_.upstream->send("STATUS=" + status);
    fflush(stderr);
    _exit(kExitGaveUp);
}

void Relay::emit(const char *event, Facts facts, unsigned instance) {
    if (!opts_.on_event) {
        return;
    }
    facts.insert(facts.begin(), {{"SAM_PID", std::to_string(setup_.supervisor_pid)},
                                 {"SAM_INSTANCE", std::to_string(instance != 0 ? instance : setup_.instance_id)},
                                 {"SAM_RESTARTS", std::to_string(record_.restarts())}});
    if (program_.pid > 0) {
        facts.emplace_back("SAM_PROGRAM_PID", std::to_string(program_.pid));
    }
    keeper_.event(event, facts);
}

void Relay::emit_end(const siginfo_t &info, const char *event, const std::string &reason) {
    if (info.si_code == CLD_EXITED) {
        emit(event, {{"SAM_REASON", reason}, {"SAM_EXIT_CODE", std::to_string(info.si_status)}});
    } else {
        emit(event, {{"SAM_REASON", reason}, {"SAM_SIGNAL", signal_name(info.si_status)}});
    }
}

void Relay::publish_history() {
    if (!history_) {
        return;
    }
    History h;
    h.instance = setup_.instance_id;
    h.restarts = record_.restarts();
    h.containment = group_.pgid() > 0 ? group_.containment() : (setup_.cgroup_parent ? "cgroup" : "process group");
    h.instance_started_ns = instance_started_ns_;
    h.last_failure = record_.last_failure();
    h.last_failure_ns = record_.last_failure_ms() * 1000000u;
    if (phase_ == Phase::GaveUp) {
        h.state = "failed";
    }
    history_->publish(h);
}

void Relay::arm_start_timeout() {
    // With --check the grace lives in the check (health_check.cpp); with
    // --notify nothing is timed before READY=1 unless asked for.
    if (!opts_.notify || !opts_.start_timeout_ms || ready_seen_) {
        return;
    }
    start_fd_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!start_fd_.valid()) {
        fatal("timerfd_create", errno);
    }
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(*opts_.start_timeout_ms / 1000);
    spec.it_value.tv_nsec = static_cast<long>((*opts_.start_timeout_ms % 1000) * 1000000L);
    if (timerfd_settime(start_fd_.get(), 0, &spec, nullptr) != 0) {
        fatal("timerfd_settime", errno);
    }
}

void Relay::on_start_timeout() {
    start_fd_.reset();
    if (ready_seen_ || !program_.pidfd.valid()) {
        return;
    }
    log_line("no READY=1 within the start timeout (%d ms): failing the program", *opts_.start_timeout_ms);
    not_ready_ = true;
    if (!checking() && !start_health_checking(nullptr)) {
        fatal("cannot start health checking", EIO);
    }
    (void)group_.signal(SIGKILL);
}

void Relay::on_program_exit() {
    // What the program left behind goes first, while its unreaped leader
    // keeps the group id from being reused.
    end_program_group();
    siginfo_t info = reap(program_.pidfd.get());
    program_.pidfd.reset(); // nothing left to signal
    const bool checking_now = checking();
    const bool stopping = phase_ == Phase::Stopping;
    bool finished =
        info.si_code == CLD_EXITED && info.si_status == 0 && !triggered_ && !not_ready_ && !(warned_ && checking_now);
    FailureCause cause = triggered_                  ? FailureCause::Triggered
                         : not_ready_                ? FailureCause::NotReady
                         : (warned_ && checking_now) ? warn_cause_
                                                     : FailureCause::None;
    record_.record_end(info, !finished, cause);
    publish_history(); // the last word, if no instance follows
    bool stopped =
        finished || (!checking_now && (stopping || !opts_.notify)) || (stop_signal_forwarded_ != 0 && !warned_);
    if (stopped) {
        emit_end(info, "stopped",
                 finished                 ? "finished"
                 : stop_signal_forwarded_ ? "SIG" + signal_name(stop_signal_forwarded_)
                 : stopping               ? "STOPPING=1"
                                          : "not started");
    } else {
        emit_end(info, "failed", cause != FailureCause::None ? describe_cause(cause, 0) : describe_exit(info));
    }
    if (finished) {
        log_line("program finished (exit 0)");
        if (checking_now) {
            stop_health_checking("the program finished", Phase::Leaving);
        }
        exit_like(info);
    }
    if (!checking_now && (stopping || !opts_.notify)) {
        // After STOPPING=1 an end is expected. Without --notify health
        // checking begins before the program is started, so an end here
        // would be one before it began: not a STOPPING=1 either.
        log_line("program ended (%s) %s", describe_exit(info).c_str(),
                 stopping ? "after STOPPING=1" : "before health checking started");
        exit_like(info);
    }
    if (!checking_now && stop_signal_forwarded_ != 0) {
        // Asked to stop: not a failure to report (which could mean waiting
        // for quorum), and the supervisor leaves the way we do.
        log_line("program ended (%s) after SIG%s, before READY=1", describe_exit(info).c_str(),
                 signal_name(stop_signal_forwarded_).c_str());
        exit_like(info);
    }
    if (!checking_now) {
        // Died before READY=1: a start-up failure, for the policy to handle.
        log_line("program failed (%s) before READY=1", describe_exit(info).c_str());
        if (!start_health_checking(nullptr)) {
            exit_like(info);
        }
    } else if (warned_ && info.si_code == CLD_EXITED && info.si_status == 0) {
        // A clean exit in answer to the warning is still a failure: report
        // it as a death by the warn signal, which is what it amounts to.
        log_line("program ended (exit 0) after the warn signal: a failure");
        info.si_code = CLD_KILLED;
        info.si_status = opts_.warn_signal_or_default();
    } else if (stop_signal_forwarded_ != 0) {
        log_line("program ended (%s) after SIG%s", describe_exit(info).c_str(),
                 signal_name(stop_signal_forwarded_).c_str());
    } else {
        log_line("program failed (%s)", describe_exit(info).c_str());
    }
    exit_like(info);
}

void Relay::on_signal() {
    signalfd_siginfo si;
    while (read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        int sig = static_cast<int>(si.ssi_signo);
        log_line("forwarding SIG%s to the program", signal_name(sig).c_str());
        if (is_warning(si)) {
            if (!warned_) {
                warned_ = true;
                warn_cause_ = warning_cause();
                // If we are killed next, the next instance tells why.
                record_.record_warning(warn_cause_);
                if (warn_cause_ == FailureCause::QuorumLoss) {
                    emit("quorum-lost");
                }
            }
        } else if (sig == SIGTERM || sig == SIGINT) {
            stop_signal_forwarded_ = sig;
        }
        if (!group_.signal(sig) && errno != ESRCH) {
            log_line("cannot forward SIG%s: %s", signal_name(sig).c_str(), strerror(errno));
        }
    }
}

void Relay::on_tick() {
    uint64_t expirations;
    if (read(tick_fd_.get(), &expirations, sizeof expirations) != static_cast<ssize_t>(sizeof expirations) ||
        !checking()) {
        return;
    }
    if (sam_liveness_ticks()) {
        cs_error_t err = sam_hc_send();
        if (err != CS_OK) {
            log_line("sam_hc_send failed (error %d)", static_cast<int>(err));
        }
    }
    if (upstream_ticks()) {
        setup_.upstream->send("WATCHDOG=1");
    }
}

void Relay::on_notify() {
    for (;;) {
        NotifyMessage message;
        std::string why;
        // Only the program and its descendants may send, whatever their
        // user: a daemon may switch to an unprivileged one.
        NotifyServer::Receive got = setup_.notify->receive(
            message, why, [this](pid_t pid, uid_t) { return is_same_or_descendant(pid, program_.pid); });
        if (got == NotifyServer::Receive::Empty) {
            return;
        }
        if (got == NotifyServer::Receive::Rejected) {
            if (++rejected_ <= kRejectLogLimit) {
                log_line("notify message ignored: %s%s", why.c_str(),
                         rejected_ == kRejectLogLimit ? " (not logging more of these)" : "");
            }
            continue;
        }
        for (const auto &[key, value] : message.fields) {
            on_notify_field(key, value);
        }
        on_notify_fdstore(message);
        // Stored or not, our copies go: the store holds its own.
        setup_.notify->dispose(message.fds);
    }
}

void Relay::on_notify_fdstore(const NotifyMessage &message) {
    bool store = false, remove = false;
    std::optional<std::string> name;
    for (const auto &[key, value] : message.fields) {
        store = store || (key == "FDSTORE" && value == "1");
        remove = remove || (key == "FDSTOREREMOVE" && value == "1");
        if (key == "FDNAME") {
            name = value;
        }
    }
    if (name && !valid_fd_name(*name)) {
        if (store || remove) {
            log_line("FDNAME='%s' is not a valid name (1 to 255 printable characters, no ':'): ignored",
                     printable(*name).c_str());
        }
        return;
    }
    if (remove) {
        if (!name) {
            log_line("FDSTOREREMOVE=1 without FDNAME=: ignored");
        } else if (!fdstore_.remove(*name)) {
            log_line("cannot reach the file descriptor store: FDSTOREREMOVE=1 ignored");
        }
    }
    if (!store) {
        if (!message.fds.empty() && !remove) {
            log_line("%zu descriptor(s) sent without FDSTORE=1: closed", message.fds.size());
        }
        return;
    }
    if (message.fds.empty()) {
        log_line("FDSTORE=1 without descriptors: ignored");
        return;
    }
    if (!fdstore_.connected()) {
        log_line("FDSTORE=1: there is no file descriptor store%s: %zu descriptor(s) closed",
                 setup_.fdstore_channel < 0 ? " (--fdstore-max 0)" : "", message.fds.size());
        return;
    }
    if (!fdstore_.add(name.value_or(kDefaultStoredName), message.fds)) {
        log_line("cannot reach the file descriptor store: %zu descriptor(s) closed", message.fds.size());
    }
}

void Relay::on_notify_field(const std::string &key, const std::string &value) {
    if (key == "READY" && value == "1") {
        last_watchdog_ms_ = monotonic_ms();
        ready_seen_ = true;
        start_fd_.reset();
        if (!checking()) {
            if (!start_health_checking("READY=1")) {
                fatal("cannot start health checking", EIO);
            }
        }
    } else if (key == "STOPPING" && value == "1") {
        if (checking()) {
            stop_health_checking("STOPPING=1", Phase::Stopping);
        } else {
            enter(Phase::Stopping);
        }
    } else if (key == "WATCHDOG" && value == "1") {
        last_watchdog_ms_ = monotonic_ms();
        if (!checking() || opts_.check_command) {
            return;
        }
        if (opts_.interval_ms > 0) {
            cs_error_t err = sam_hc_send();
            if (err != CS_OK) {
                log_line("sam_hc_send failed (error %d)", static_cast<int>(err));
            }
        }
        if (!upstream_ticks()) {
            setup_.upstream->send("WATCHDOG=1");
        }
    } else if (key == "WATCHDOG" && value == "trigger") {
        log_line("WATCHDOG=trigger: failing the program now");
        triggered_ = true;
        if (!checking() && !start_health_checking(nullptr)) {
            fatal("cannot start health checking", EIO);
        }
        (void)group_.signal(SIGKILL);
    } else if (key == "STATUS") {
        log_line("status: %s", printable(value).c_str());
        setup_.upstream->send("STATUS=" + printable(value));
    }
    // FDSTORE, FDSTOREREMOVE and FDNAME: on_notify_fdstore(), once per
    // message. Anything else (MAINPID, RELOADING, ...) is not ours to act on.
}

} // namespace

void run_relay(const RelaySetup &setup) {
    Relay relay(setup);
    relay.run();
}

} // namespace samrun
