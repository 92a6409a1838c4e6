// SPDX-License-Identifier: BSD-3-Clause
// supervisor.cpp - the supervisor's event loop and its state x event handlers.
#include "supervisor.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.hpp"
#include "corosync_link.hpp"
#include "log.hpp"

namespace sam {

namespace {

enum Tag : uint64_t { kPidfd = 1, kChannel, kTimer, kSignal, kLink, kLog, kReader };

constexpr const char *kStateStopped = "stopped";
constexpr const char *kStateRunning = "running";
constexpr const char *kStateWaiting = "waiting for quorum";

// With no health interval, a quorum loss still ends in SIGKILL this long after
// the warn signal.
constexpr uint64_t kQuorumKillDefaultNs = 1000000000ULL;

// How long a restart waits for the "stopped" state to reach cmap.
constexpr uint64_t kStoppedWriteWaitNs = 500ULL * 1000000ULL;

// How long a queued log line may wait for the loop to wake up anyway.
constexpr uint64_t kLogDelayNs = 2ULL * 1000000ULL;

// How long the supervisor, about to exit or to give up, waits for a log
// reader to take its last lines.
constexpr int kLogExitWaitMs = 200;

// Requests handled per wake-up, so a flooding instance cannot starve the loop.
constexpr int kRequestsPerWakeup = 64;

// A restart that could not be spawned is retried after the restart back-off,
// but never sooner than this, even inside the burst or with the back-off
// off: retrying at once meets the same shortage and only spins.
constexpr uint64_t kSpawnRetryMinMs = 100;

// Failures of fork(), socketpair(), pidfd_open(), mmap() or epoll_ctl() that
// come from a shortage the system may recover from. Anything else (EPERM
// from a seccomp filter, ENOSYS, EINVAL) will fail the same way every time.
bool may_pass(int err) noexcept {
    switch (err) {
    case EAGAIN:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOSPC:
    case EINTR:
        return true;
    default:
        return false;
    }
}

// How long a fork waits for a read of the previous instance's memory to
// return. Its process is dead by then, which normally ends the read at once.
constexpr uint64_t kReaderStopWaitNs = 100ULL * 1000000ULL;

int open_pidfd(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

bool watch(int epoll_fd, int fd, uint64_t tag) noexcept {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    return ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void unwatch(int epoll_fd, int fd) noexcept { (void)::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr); }

// Where redirect_to_supervisor() sends what it catches. A signal handler
// reaches only globals; both are written before the handler is installed.
std::atomic<pid_t> g_supervisor_pid{0};
std::atomic<pid_t> g_supervisor_tid{0};

// Runs only in threads of the application that were started before
// sam_register() and do not block the stop signals: the kernel picks such a
// thread for a kill() of the supervisor, and the default action would end
// the process without the instance hearing of it. Nothing is decided here:
// the signal, with its siginfo, goes to the supervisor's thread, which
// blocks it and reads it from its signalfd.
void redirect_to_supervisor(int sig, siginfo_t *info, void *) {
    const int saved_errno = errno;
    const pid_t pid = g_supervisor_pid.load(std::memory_order_relaxed);
    const pid_t tid = g_supervisor_tid.load(std::memory_order_relaxed);
    if (::syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, info) != 0)
        (void)::syscall(SYS_tgkill, pid, tid, sig);
    errno = saved_errno;
}

const char *signal_name(int sig) noexcept {
    const char *name = ::sigabbrev_np(sig);
    return name != nullptr ? name : "?";
}

} // namespace

Supervisor::Supervisor(Library &lib)
    : lib_(lib), policy_(lib.policy), self_(::getpid()), deadline_(static_cast<uint64_t>(lib.interval_ms)),
      backoff_(lib.backoff) {}

Supervisor::~Supervisor() = default;

bool Supervisor::set_up(std::unique_ptr<CorosyncLink> link) {
    link_ = std::move(link);
    rx_buf_.reset(new (std::nothrow) unsigned char[kRxBufSize]);
    if (!rx_buf_) {
        errno = ENOMEM;
        return false;
    }
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!epoll_ || !timer_)
        return false;

    // Stop signals enter the loop through a signalfd; they stay blocked in
    // this thread so none is lost between fork() and the loop.
    sigemptyset(&forwarded_);
    for (int sig : kForwardedSignals)
        sigaddset(&forwarded_, sig);
    if (::pthread_sigmask(SIG_BLOCK, &forwarded_, &original_mask_) != 0)
        return false;
    mask_changed_ = true;
    // After the application's mask is saved: it blocks SIGPIPE for us only.
    logs_.open(); // from here on, nothing we log can block the loop
    signals_.reset(::signalfd(-1, &forwarded_, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_)
        return false;
    g_supervisor_pid.store(self_);
    g_supervisor_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)));
    struct sigaction redirect {};
    redirect.sa_sigaction = redirect_to_supervisor;
    redirect.sa_flags = SA_SIGINFO | SA_RESTART;
    redirect.sa_mask = forwarded_;
    for (int sig : kForwardedSignals) {
        if (::sigaction(sig, &redirect, &original_actions_[actions_changed_]) != 0)
            return false;
        ++actions_changed_;
    }

    // waitid() needs SIGCHLD at its default: an application that ignores it
    // would have its children reaped by the kernel, exit status lost.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    if (::sigaction(SIGCHLD, &dfl, &original_sigchld_) != 0)
        return false;
    sigchld_changed_ = true;

    if (!watch(epoll_.get(), timer_.get(), kTimer) || !watch(epoll_.get(), signals_.get(), kSignal))
        return false;

    if (link_) {
        if (!watch(epoll_.get(), link_->event_fd(), kLink))
            return false;
        link_->set_logger([this](int priority, const char *line) { log_now(priority, "%s", line); });
        quorate_ = !policy_.quorum() || link_->quorate();
    }
    return true;
}

void Supervisor::undo_set_up() noexcept {
    if (link_) {
        link_->finish(CorosyncLink::Finish::DeleteKeys, /* reap= */ true);
        link_.reset();
    }
    restore_signal_actions();
    if (mask_changed_)
        (void)::pthread_sigmask(SIG_SETMASK, &original_mask_, nullptr);
    if (sigchld_changed_)
        (void)::sigaction(SIGCHLD, &original_sigchld_, nullptr);
}

// Before the mask is restored: a signal still pending must meet the
// application's action, not ours.
void Supervisor::restore_signal_actions() noexcept {
    for (size_t i = 0; i < actions_changed_; ++i)
        (void)::sigaction(kForwardedSignals[i], &original_actions_[i], nullptr);
    actions_changed_ = 0;
}

cs_error_t Supervisor::run(unsigned *instance_id, std::unique_ptr<CorosyncLink> link) {
    instance_id_out_ = instance_id;
    if (!set_up(std::move(link))) {
        log_now(LOG_ERR, "supervisor set-up failed: %s", std::strerror(errno));
        logs_.drain_before_exit(kLogExitWaitMs);
        logs_.close();
        undo_set_up();
        return CS_ERR_LIBRARY;
    }
    Outcome o = spawn_instance();
    if (o == Outcome::Continue)
        o = loop();
    if (o == Outcome::BecameInstance)
        return CS_OK; // lines the supervisor queued are its own to write
    // Once an instance has run, the application after sam_register() is the
    // instance's code: returning here would run it a second time, unwatched.
    if (spawned_once_)
        exit_cannot_go_on();
    logs_.drain_before_exit(kLogExitWaitMs);
    logs_.close();
    undo_set_up();
    return CS_ERR_LIBRARY;
}

// The channel pair and heartbeat page of the next instance. Made when the
// current one starts (before sam_start() returns, so an instance sees the
// same descriptors in its supervisor every time), so a restart, which only
// follows a start, just forks; made at the fork if there is no spare (the
// first instance, or preparing it failed).
bool Supervisor::make_spare() {
    if (spare_page_ && spare_pair_.instance_end)
        return true;
    // One step at a time, so errno tells the caller which one failed (and
    // whether that may pass).
    auto page = HeartbeatPage::create();
    // Held from now until the instance is dead: its sam_hc_send() reads
    // our death from the page (we are the thread that stays in sam_register).
    if (!page || !page->hold())
        return false;
    ChannelPair pair;
    if (!make_channel_pair(pair))
        return false;
    try {
        spare_page_ = std::make_shared<HeartbeatPage>(std::move(*page));
    } catch (const std::bad_alloc &) {
        errno = ENOMEM;
        return false;
    }
    spare_pair_ = std::move(pair);
    return true;
}

void Supervisor::prepare_spare() {
    if (!make_spare())
        log_now(LOG_WARNING, "cannot prepare the next instance ahead of time: %s (will retry at restart)",
                std::strerror(errno));
}

Supervisor::Outcome Supervisor::spawn_instance() {
    if (!make_spare())
        return spawn_failed(lib_.last_instance_id + 1, "prepare", errno);
    ChannelPair pair = std::move(spare_pair_);
    std::shared_ptr<HeartbeatPage> shared_page = std::move(spare_page_);
    const unsigned iid = ++lib_.last_instance_id;
    if (link_) {
        link_->set_healthy(false);
        if (policy_.cmap())
            publish_stopped_before_fork();
    }

    stop_reader_before_fork(iid);

    // A descriptor slot for the pidfd, reserved before the fork: once the
    // child runs, failing for want of a descriptor would leave it behind.
    UniqueFd reserved(::fcntl(epoll_.get(), F_DUPFD_CLOEXEC, 0));
    if (!reserved) {
        const int err = errno;
        --lib_.last_instance_id;
        return spawn_failed(iid, "prepare", err);
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int err = errno;
        --lib_.last_instance_id;
        return spawn_failed(iid, "fork", err);
    }
    if (pid == 0) {
        reserved.reset();
        become_instance(pair, std::move(shared_page));
        return Outcome::BecameInstance;
    }

    reserved.reset();
    UniqueFd pidfd(open_pidfd(pid));
    const bool reaped_already = !pidfd && errno == ESRCH;
    if (!reaped_already && (!pidfd || !watch(epoll_.get(), pidfd.get(), kPidfd) ||
                            !watch(epoll_.get(), pair.supervisor_end.get(), kChannel))) {
        const int err = errno;
        log_now(LOG_ERR, "cannot watch instance %u (pid %d): %s; killing it", iid, static_cast<int>(pid),
                std::strerror(err));
        if (pidfd)
            (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, pidfd.get(), nullptr);
        // Without a pidfd, by pid: the child is ours until reaped, and only
        // a thread of the application reaping it within these microseconds
        // and the whole pid space wrapping meanwhile could make it foreign.
        if (!pidfd || ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0)
            ::kill(pid, SIGKILL);
        (void)retry_eintr([&] { return ::waitpid(pid, nullptr, 0); });
        return spawn_failed(iid, "watch", err);
    }
    spawned_once_ = true;
    child_ = pid;
    pidfd_ = std::move(pidfd);
    // Where the kernel tells the instance's use of the CPU; without them (no
    // /proc, no CONFIG_SCHED_INFO) only our own timer tells a stall.
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%d/schedstat", static_cast<int>(pid));
    schedstat_.reset(::open(path, O_RDONLY | O_CLOEXEC));
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    stat_.reset(::open(path, O_RDONLY | O_CLOEXEC));
    cpu_at_life_ = CpuSample{};
    channel_ = std::move(pair.supervisor_end);
    page_ = std::move(shared_page);
    if (link_)
        link_->watch_instance(page_);
    deadline_ = HealthDeadline(static_cast<uint64_t>(lib_.interval_ms));
    phase_ = Phase::Idle;
    reply_pending_ = false;
    quorum_check_token_ = 0; // an answer still due was for the last instance
    waiting_announced_ = false;
    recheck_quorum_ = false;
    killed_by_us_ = false;
    kill_at_ns_ = 0;
    restart_at_ns_ = 0;
    spawned_at_ns_ = monotonic_ns();
    log_soon(LOG_INFO, "instance %u started as pid %d", iid, static_cast<int>(pid));
    if (reaped_already) {
        // Dead and reaped by another thread of the application (or by the
        // kernel, SIGCHLD ignored) before we could even open its pidfd.
        schedstat_.reset();
        stat_.reset();
        drop_channel();
        return after_death(0, kStatusUnknown);
    }
    rearm_timer();
    return Outcome::Continue;
}

// A new instance could not be made. The first one: sam_register() returns
// CS_ERR_LIBRARY, as before any instance ran. A restart: retried after the
// back-off while the failure may pass; otherwise the supervisor exits.
Supervisor::Outcome Supervisor::spawn_failed(unsigned iid, const char *what, int err) {
    if (!spawned_once_) {
        log_now(LOG_ERR, "cannot %s instance %u: %s", what, iid, std::strerror(err));
        return Outcome::Fatal;
    }
    if (!may_pass(err)) {
        log_now(LOG_ERR, "cannot %s instance %u: %s; this will not pass: supervisor exits with status %d", what, iid,
                std::strerror(err), kExitCannotGoOn);
        exit_cannot_go_on();
    }
    uint64_t delay_ms = backoff_.on_failure(0);
    if (delay_ms < kSpawnRetryMinMs)
        delay_ms = kSpawnRetryMinMs;
    log_now(LOG_WARNING, "cannot %s instance %u: %s; retrying in %llu ms", what, iid, std::strerror(err),
            static_cast<unsigned long long>(delay_ms));
    phase_ = Phase::BackingOff;
    restart_at_ns_ = saturating_add(monotonic_ns(), ms_to_ns(delay_ms));
    rearm_timer();
    return Outcome::Continue;
}

// The end when supervision cannot go on after an instance has run. Nothing
// is left running: an instance still alive is killed first.
void Supervisor::exit_cannot_go_on() {
    if (signal_instance(SIGKILL, false))
        (void)retry_eintr([&] { return ::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), nullptr, WEXITED); });
    logs_.drain_before_exit(kLogExitWaitMs);
    if (link_) {
        link_->finish(CorosyncLink::Finish::MarkFailed);
        link_.reset();
    }
    std::fflush(nullptr);
    if (!reader_.stop(reader_stuck_ ? 0 : kReaderStopWaitNs))
        ::_exit(kExitCannotGoOn); // see exit_like_instance()
    std::exit(kExitCannotGoOn);
}

// As upstream does, every instance starts with state "stopped" already in
// cmap, so whoever looks right after sam_register() sees it. No instance is
// alive meanwhile, so no deadline waits; and a corosync that does not answer
// delays the fork by at most kStoppedWriteWaitNs (the write still happens,
// in order, before any later state).
void Supervisor::publish_stopped_before_fork() {
    const uint64_t token = link_->publish_state(kStateStopped, true);
    const uint64_t give_up = saturating_add(monotonic_ns(), kStoppedWriteWaitNs);
    for (;;) {
        const uint64_t now = monotonic_ns();
        if (now >= give_up)
            return;
        pollfd p{link_->event_fd(), POLLIN, 0};
        const int wait_ms = static_cast<int>((give_up - now) / 1000000ULL) + 1;
        if (retry_eintr([&] { return ::poll(&p, 1, wait_ms); }) <= 0)
            continue;
        bool written = false;
        for (const CorosyncLink::Event &e : link_->take_events()) {
            if (e.kind == CorosyncLink::Event::Kind::Quorum)
                quorate_ = e.quorate; // no instance yet: nothing else to do
            else if (e.token == token)
                written = true;
        }
        if (written)
            return;
    }
}

// Runs in the new child, where only the forking thread exists. It touches
// nothing another thread of the old process could have left half-updated
// except the API mutex, which it re-creates.
void Supervisor::become_instance(ChannelPair &pair, std::shared_ptr<HeartbeatPage> page) {
    const int warn = lib_.warn_signal.load();
    // If the supervisor dies, the instance hears about it at once.
    (void)::prctl(PR_SET_PDEATHSIG, warn);
    if (::getppid() != self_)
        (void)::raise(warn);

    epoll_.reset();
    timer_.reset();
    signals_.reset();
    reader_.abandon_in_child();
    sink_.abandon_in_child();
    pidfd_.reset();
    schedstat_.reset();
    stat_.reset();
    channel_.reset();
    pair.supervisor_end.reset();
    page_.reset();
    spare_pair_ = ChannelPair{};
    spare_page_.reset();
    logs_.close();
    // The link process is the supervisor's: no descriptor of it stays here.
    if (link_)
        link_->close_in_instance();
    page->close_fd();

    new (&lib_.mu) std::mutex();
    lib_.instance.channel = std::move(pair.instance_end);
    page->disown_after_fork();
    lib_.instance.page = std::move(page);
    lib_.instance.instance_id = lib_.last_instance_id;
    lib_.set_state(ApiState::Registered);
    if (instance_id_out_ != nullptr)
        *instance_id_out_ = lib_.last_instance_id;

    if (sigchld_changed_)
        (void)::sigaction(SIGCHLD, &original_sigchld_, nullptr);
    restore_signal_actions();
    (void)::pthread_sigmask(SIG_SETMASK, &original_mask_, nullptr);
}

Supervisor::Outcome Supervisor::loop() {
    for (;;) {
        epoll_event events[8];
        const int n = ::epoll_wait(epoll_.get(), events, 8, -1);
        // Lines queued before we slept: the new instance has had the CPU.
        flush_logs();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_now(LOG_ERR, "event loop failed: %s", std::strerror(errno));
            return Outcome::Fatal;
        }
        // Requests first, the instance's death last: a request that reached us
        // before the instance died is still honoured.
        bool died = false;
        for (int i = 0; i < n; ++i) {
            Outcome o = Outcome::Continue;
            switch (events[i].data.u64) {
            case kChannel:
                o = on_channel();
                break;
            case kTimer:
                o = on_timer();
                break;
            case kSignal:
                o = on_signal();
                break;
            case kLink:
                o = on_link();
                break;
            case kLog: // the log descriptor takes lines again: written above
                break;
            case kReader:
                o = on_reader();
                break;
            case kPidfd:
                died = true;
                break;
            }
            if (o != Outcome::Continue)
                return o;
        }
        if (died && pidfd_) {
            const Outcome o = on_instance_exit();
            if (o != Outcome::Continue)
                return o;
        }
    }
}

// ---- events ----

Supervisor::Outcome Supervisor::on_instance_exit() {
    siginfo_t si{};
    int rc = retry_eintr([&] { return ::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &si, WEXITED | WNOHANG); });
    // A kernel before 5.4 (or a tool standing in for pidfd_open, as valgrind
    // needs) does not reap by pidfd: by pid then, which is still ours unless
    // another thread reaped it, and that it can only have done just now.
    if (rc != 0 && (errno == EINVAL || errno == EBADF))
        rc = retry_eintr([&] { return ::waitid(P_PID, static_cast<id_t>(child_), &si, WEXITED | WNOHANG); });
    // The pidfd says the instance exited, yet it is not ours to reap: a
    // thread of the application took it (waitpid(-1)), or SIGCHLD is ignored
    // and the kernel did. A death all the same, with its status lost; going
    // on waiting would spin on the pidfd, which stays readable.
    const bool reaped_elsewhere = rc != 0 && errno == ECHILD;
    if (!reaped_elsewhere && (rc != 0 || si.si_pid == 0))
        return Outcome::Continue; // not dead after all
    unwatch(epoll_.get(), pidfd_.get());
    pidfd_.reset();
    schedstat_.reset();
    stat_.reset();
    drop_channel();
    if (reaped_elsewhere)
        return after_death(0, kStatusUnknown);
    return after_death(si.si_status, si.si_code);
}

Supervisor::Outcome Supervisor::on_channel() {
    for (int handled = 0; channel_ && handled < kRequestsPerWakeup; ++handled) {
        Received msg = channel_receive(channel_.get(), rx_buf_.get(), kRxBufSize);
        switch (msg.kind) {
        case Received::Kind::Nothing:
            return Outcome::Continue;
        case Received::Kind::Closed:
        case Received::Kind::Error:
            // The instance closed its end (or it is dying): it can still beat
            // through the page, and the pidfd will tell us when it is gone.
            drop_channel();
            return Outcome::Continue;
        case Received::Kind::Message:
            break;
        }
        const bool more = on_message(msg);
        dispose_passed(msg);
        if (!more)
            return Outcome::Continue;
    }
    return Outcome::Continue;
}

// One datagram; false when the instance is being killed for it.
bool Supervisor::on_message(Received &msg) {
    if (msg.truncated) {
        kill_instance("sent an oversized message");
        return false;
    }
    const wire::DecodeResult d = wire::decode_request(rx_buf_.get(), msg.len, msg.fd_count);
    if (!d.request) {
        log_now(LOG_WARNING, "instance %u sent a malformed message (%.*s)", lib_.last_instance_id,
                static_cast<int>(d.error.size()), d.error.data());
        kill_instance("sent a malformed message");
        return false;
    }
    if (reply_pending_) {
        kill_instance("sent a request while another was pending");
        return false;
    }
    const uint64_t now = monotonic_ns();
    deadline_.life(now); // every call from the instance is a sign of life
    if (link_)
        link_->note_life(now);
    handle_request(*d.request, msg);
    return phase_ != Phase::Killing;
}

// Whatever descriptors of a datagram the request did not use. The instance
// chose them, so their last close may block (see descriptor_sink.hpp): the
// sink closes them.
void Supervisor::dispose_passed(Received &msg) {
    size_t kept = 0;
    for (size_t i = 0; i < msg.fd_count; ++i) {
        if (msg.fds[i] && !sink_.dispose(std::move(msg.fds[i])))
            ++kept;
    }
    if (kept > 0)
        log_now(LOG_WARNING, "cannot pass %zu descriptor(s) from instance %u on to be closed: %s; they stay open", kept,
                lib_.last_instance_id, std::strerror(errno));
}

Supervisor::Outcome Supervisor::on_timer() {
    uint64_t expirations;
    (void)::read(timer_.get(), &expirations, sizeof expirations);
    armed_at_ = 0; // a one-shot timer that fired is disarmed
    // The stamp first, then the clock: a beat landing in between must never
    // look like a time from the future.
    const uint64_t stamp = page_ ? page_->last_beat() : 0;
    const uint64_t now = monotonic_ns();

    if (phase_ == Phase::BackingOff) {
        if (now >= restart_at_ns_)
            return spawn_instance();
        rearm_timer();
        return Outcome::Continue;
    }
    if (kill_at_ns_ != 0 && now >= kill_at_ns_ && phase_ != Phase::Killing) {
        kill_instance("still running after the warn signal for quorum loss");
        return Outcome::Continue;
    }
    if (phase_ == Phase::Running) {
        // How long the instance was kept off the CPU since it last showed
        // life: a silence the scheduler imposed is not a hang (health.hpp).
        const CpuSample cpu = read_cpu_sample(schedstat_.get(), stat_.get(), now);
        const uint64_t starved = starved_between(cpu_at_life_, cpu);
        const uint64_t life_before = deadline_.last_life();
        const uint64_t due = deadline_.next_deadline();
        const HealthVerdict verdict = deadline_.on_timer(now, stamp, starved);
        if (deadline_.last_life() != life_before) {
            // It ran: its waits count from its last sign of life (a wait
            // that began between that and now is not in the run delay yet).
            cpu_at_life_ = cpu;
            cpu_at_life_.at_ns = std::min(deadline_.last_life(), now);
        }
        switch (verdict) {
        case HealthVerdict::Wait:
            break;
        case HealthVerdict::Stalled:
            log_now(LOG_WARNING,
                    "instance %u (pid %d): no health check within the interval, but the machine stalled (our timer "
                    "fired %llu ms late, the instance waited %llu ms for a CPU); one more interval",
                    lib_.last_instance_id, static_cast<int>(child_),
                    static_cast<unsigned long long>(now > due ? (now - due) / 1000000ULL : 0),
                    static_cast<unsigned long long>(starved / 1000000ULL));
            break;
        case HealthVerdict::Warn:
            warn_instance("no health check within the interval");
            break;
        case HealthVerdict::Kill:
            kill_instance("no health check within the interval after the warn signal");
            return Outcome::Continue;
        case HealthVerdict::Corrupt:
            kill_instance("wrote a time in the future to its heartbeat page");
            return Outcome::Continue;
        }
    }
    rearm_timer();
    return Outcome::Continue;
}

Supervisor::Outcome Supervisor::on_signal() {
    signalfd_siginfo info;
    while (::read(signals_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        const int sig = static_cast<int>(info.ssi_signo);
        const bool stop = sig == SIGTERM || sig == SIGINT;
        if (pidfd_) {
            log_now(LOG_INFO, "forwarding SIG%s to instance %u (pid %d)%s", signal_name(sig), lib_.last_instance_id,
                    static_cast<int>(child_), stop ? "; no restart after it ends" : "");
            (void)signal_instance(sig, false);
        }
        if (!stop)
            continue;
        stop_requested_ = true;
        if (!pidfd_) {
            log_now(LOG_INFO, "SIG%s while waiting to restart: exiting", signal_name(sig));
            exit_like_instance(false);
        }
    }
    return Outcome::Continue;
}

Supervisor::Outcome Supervisor::on_link() {
    for (const CorosyncLink::Event &e : link_->take_events()) {
        if (e.kind == CorosyncLink::Event::Kind::Quorum)
            on_quorum(e.quorate);
        else if (e.kind == CorosyncLink::Event::Kind::QuorumChecked)
            on_quorum_checked(e.token, e.quorate);
        else if (e.token == awaited_token_)
            on_state_written(e.error);
    }
    return Outcome::Continue;
}

// ---- requests ----

void Supervisor::handle_request(const wire::Request &req, Received &msg) {
    switch (req.type) {
    case wire::RequestType::Start:
        request_start();
        return;
    case wire::RequestType::Stop:
        request_stop();
        return;
    case wire::RequestType::DataStoreInline: {
        std::shared_ptr<const DataBlob> blob;
        try {
            blob = DataBlob::copy_of(req.inline_data, req.size);
        } catch (const std::bad_alloc &) {
            finish_store(nullptr, CS_ERR_NO_MEMORY, nullptr);
            return;
        }
        finish_store(std::move(blob), CS_OK, nullptr);
        return;
    }
    case wire::RequestType::DataStoreMemfd: {
        cs_error_t err = CS_OK;
        auto blob = DataBlob::from_sealed_memfd(msg.fds[0].get(), req.size, err);
        if (blob)
            msg.fds[0].reset(); // our mapping keeps the memfd: this close is not its last
        finish_store(std::move(blob), err, "sent a data descriptor that is not a sealed memfd of the stated size");
        return;
    }
    case wire::RequestType::DataStoreRemote:
        start_remote_store(req);
        return;
    case wire::RequestType::DataDelete: {
        std::lock_guard<std::mutex> g(lib_.mu);
        lib_.data.clear();
    }
        reply(CS_OK);
        return;
    case wire::RequestType::WarnSignalSet:
        lib_.warn_signal.store(static_cast<int>(req.arg));
        reply(CS_OK);
        return;
    case wire::RequestType::MarkFailed:
        if (!policy_.cmap()) {
            reply(CS_ERR_INVALID_PARAM);
            return;
        }
        mark_failed_ = true;
        kill_instance("marked itself failed");
        return;
    }
}

void Supervisor::request_start() {
    if (phase_ != Phase::Idle) {
        reply(CS_ERR_BAD_HANDLE);
        return;
    }
    reply_pending_ = true;
    if (!policy_.quorum()) {
        begin_running();
        return;
    }
    // corosync's answer now, not the last notification we saw: another may
    // still be on its way. Until the answer comes, the instance waits.
    phase_ = Phase::WaitingForQuorum;
    waiting_announced_ = false;
    ask_quorum();
}

void Supervisor::request_stop() {
    if (phase_ != Phase::Running) {
        reply(CS_ERR_BAD_HANDLE);
        return;
    }
    deadline_.stop();
    kill_at_ns_ = 0;
    rearm_timer();
    if (link_ && policy_.cmap()) {
        link_->set_healthy(false);
        reply_pending_ = true;
        phase_ = Phase::Publishing;
        publishing_to_ = Phase::Idle;
        awaited_token_ = link_->publish_state(kStateStopped, true);
        return;
    }
    phase_ = Phase::Idle;
    reply(CS_OK);
}

// ---- transitions ----

void Supervisor::begin_running() {
    if (link_ && policy_.cmap()) {
        phase_ = Phase::Publishing;
        publishing_to_ = Phase::Running;
        awaited_token_ = link_->publish_state(kStateRunning, true);
        return;
    }
    phase_ = Phase::Running;
    start_health_clock();
    prepare_spare();
    reply(CS_OK);
    rearm_timer();
}

void Supervisor::enter_waiting_for_quorum() {
    phase_ = Phase::WaitingForQuorum;
    waiting_announced_ = true;
    log_now(LOG_INFO, "instance %u waits for quorum before it starts", lib_.last_instance_id);
    if (link_ && policy_.cmap())
        link_->publish_state(kStateWaiting, false);
}

void Supervisor::on_quorum(bool quorate) {
    if (quorate == quorate_)
        return;
    quorate_ = quorate;
    log_now(quorate ? LOG_INFO : LOG_WARNING, "cluster is %s", quorate ? "quorate" : "not quorate");
    if (!policy_.quorum())
        return;
    switch (phase_) {
    case Phase::WaitingForQuorum:
        if (quorate)
            ask_quorum(); // a notification says so: corosync confirms first
        return;
    case Phase::Running:
        if (!quorate) {
            warn_instance("quorum lost");
            const uint64_t grace = deadline_.timed() ? deadline_.interval_ns() : kQuorumKillDefaultNs;
            kill_at_ns_ = saturating_add(monotonic_ns(), grace);
            rearm_timer();
        }
        return;
    case Phase::Idle:
    case Phase::Publishing: // decided when the write completes
    case Phase::Killing:
    case Phase::BackingOff:
        return;
    }
}

void Supervisor::ask_quorum() {
    if (quorum_check_token_ != 0) {
        recheck_quorum_ = true;
        return;
    }
    recheck_quorum_ = false;
    quorum_check_token_ = link_->check_quorum();
}

// The only way out of WaitingForQuorum into running: corosync's own answer,
// given after everything it had queued for us was dispatched.
void Supervisor::on_quorum_checked(uint64_t token, bool quorate) {
    if (token != quorum_check_token_)
        return;
    quorum_check_token_ = 0;
    if (phase_ != Phase::WaitingForQuorum)
        return;
    if (quorate) {
        begin_running();
        return;
    }
    if (!waiting_announced_)
        enter_waiting_for_quorum();
    if (recheck_quorum_)
        ask_quorum();
}

void Supervisor::on_state_written(cs_error_t err) {
    if (phase_ != Phase::Publishing)
        return;
    awaited_token_ = 0;
    if (err != CS_OK) {
        log_now(LOG_WARNING, "cannot publish the state of instance %u in cmap (error %d)", lib_.last_instance_id,
                static_cast<int>(err));
        // The request fails and nothing changes: a failed start stays
        // registered, a failed stop stays started.
        // cmap must show what really holds, once corosync is back.
        if (publishing_to_ == Phase::Idle) {
            phase_ = Phase::Running;
            start_health_clock();
            link_->set_healthy(true);
            (void)link_->publish_state(kStateRunning, false);
        } else {
            phase_ = Phase::Idle;
            (void)link_->publish_state(kStateStopped, false);
        }
        reply(err);
        rearm_timer();
        return;
    }
    if (publishing_to_ == Phase::Idle) {
        phase_ = Phase::Idle;
        reply(CS_OK);
        return;
    }
    if (policy_.quorum() && !quorate_) {
        enter_waiting_for_quorum(); // quorum went away while we were writing
        return;
    }
    phase_ = Phase::Running;
    start_health_clock();
    if (link_)
        link_->set_healthy(true);
    prepare_spare();
    reply(CS_OK);
    rearm_timer();
}

// The bytes are read on the reader thread (see remote_reader.hpp): the
// request stays pending until on_reader(), and the loop serves everything
// else meanwhile. Whenever they cannot be read from here, the reply asks the
// instance for a sealed memfd instead: CS_ERR_NOT_SUPPORTED from now on (we
// may not read its memory at all), CS_ERR_TRY_AGAIN for this store only
// (memory only the instance reaches, such as memfd_secret or VM_PFNMAP
// mappings, or no reader to run it). Bytes the instance cannot read either
// then fail in its own copy into the memfd: nothing here is taken for a lie.
void Supervisor::start_remote_store(const wire::Request &req) {
    if (!reader_.ready()) {
        // Only a read left over from an earlier instance, still blocked.
        reply(CS_ERR_TRY_AGAIN);
        return;
    }
    std::shared_ptr<DataBlob> blob;
    try {
        blob = DataBlob::allocate(req.size);
    } catch (const std::bad_alloc &) {
        reply(CS_ERR_NO_MEMORY);
        return;
    }
    if (!reader_watched_) {
        if (!reader_.open() || !watch(epoll_.get(), reader_.event_fd(), kReader)) {
            log_now(LOG_WARNING, "cannot prepare reads of instance memory: %s (instances send memfds)",
                    std::strerror(errno));
            reply(CS_ERR_NOT_SUPPORTED);
            return;
        }
        reader_watched_ = true;
    }
    if (!reader_.start(child_, req.arg, std::move(blob))) {
        log_now(LOG_WARNING, "cannot start a read of instance %u's memory: %s", lib_.last_instance_id,
                std::strerror(errno));
        reply(CS_ERR_TRY_AGAIN);
        return;
    }
    reply_pending_ = true;
    remote_store_pending_ = true;
}

Supervisor::Outcome Supervisor::on_reader() {
    std::optional<RemoteReader::Result> r = reader_.collect();
    if (reader_.ready())
        reader_stuck_ = false; // a thread left blocked before a fork has ended and been joined
    if (!r || !remote_store_pending_)
        return Outcome::Continue; // nothing finished, or the instance that asked is gone
    remote_store_pending_ = false;
    std::shared_ptr<const DataBlob> blob;
    if (r->error == CS_OK)
        blob = std::move(r->blob);
    finish_store(std::move(blob), r->error, nullptr);
    return Outcome::Continue;
}

// No thread of ours may exist when an instance is forked: the child would
// inherit whatever such a thread had half-done. The reader is idle here, or
// its read ends now that its instance is dead. If the read still does not
// return (the instance handed its userfaultfd or its FUSE daemon to a process
// that lives on), we fork anyway rather than stop supervising: that thread is
// blocked inside process_vm_readv(), holding no lock of libc or of ours
// (its buffer was allocated by the loop), so the child finds nothing
// half-updated; the child simply has no such thread. The thread ends when the
// read returns and is joined then.
void Supervisor::stop_reader_before_fork(unsigned iid) {
    if (reader_.stop(reader_stuck_ ? 0 : kReaderStopWaitNs)) {
        reader_stuck_ = false;
        return;
    }
    if (!reader_stuck_)
        log_now(LOG_WARNING, "a read of an earlier instance's memory is still blocked; starting instance %u anyway",
                iid);
    reader_stuck_ = true;
}

// The end of a data-store request: the new blob replaces the old one in one
// swap, or the instance hears why not. CS_ERR_MESSAGE_ERROR means it lied
// about its data: killed as hostile, for the reason `lie`.
void Supervisor::finish_store(std::shared_ptr<const DataBlob> blob, cs_error_t err, const char *lie) {
    if (!blob) {
        if (err == CS_ERR_MESSAGE_ERROR)
            kill_instance(lie);
        else
            reply(err);
        return;
    }
    {
        std::lock_guard<std::mutex> g(lib_.mu);
        lib_.data.replace(std::move(blob));
    }
    reply(CS_OK);
}

void Supervisor::warn_instance(const char *why) {
    if (deadline_.was_warned() || !pidfd_)
        return;
    const int sig = lib_.warn_signal.load();
    log_now(LOG_WARNING, "instance %u (pid %d): %s; sending SIG%s", lib_.last_instance_id, static_cast<int>(child_),
            why, signal_name(sig));
    // Queued (si_code SI_QUEUE), so the instance can tell our warning from a
    // stop signal passed on with kill() (sam-run relies on that).
    if (!signal_instance(sig, true))
        (void)signal_instance(sig, false);
    deadline_.warned(monotonic_ns());
    if (link_)
        link_->set_healthy(false);
}

void Supervisor::kill_instance(const char *why) {
    if (phase_ == Phase::Killing || !pidfd_)
        return;
    log_now(LOG_WARNING, "instance %u (pid %d): %s; sending SIGKILL", lib_.last_instance_id, static_cast<int>(child_),
            why);
    (void)signal_instance(SIGKILL, false);
    killed_by_us_ = true;
    phase_ = Phase::Killing;
    kill_at_ns_ = 0;
    deadline_.stop();
    drop_channel();
    if (link_)
        link_->set_healthy(false);
    rearm_timer();
}

Supervisor::Outcome Supervisor::after_death(int status_code, int status_kind) {
    last_status_code_ = status_code;
    last_status_kind_ = status_kind;
    const bool by_signal = status_kind == CLD_KILLED || status_kind == CLD_DUMPED;
    // Once sam_start() was called the instance counts as started, also while
    // it waits for quorum or for its state to reach cmap (as upstream).
    const bool was_started =
        phase_ == Phase::Running || phase_ == Phase::WaitingForQuorum || phase_ == Phase::Publishing;
    const bool failure = killed_by_us_ || was_started;
    const unsigned iid = lib_.last_instance_id;
    char how[96];
    if (status_kind == kStatusUnknown)
        std::snprintf(how, sizeof how, "was reaped elsewhere in this process (exit status unknown)");
    else if (by_signal)
        std::snprintf(how, sizeof how, "was killed by SIG%s", signal_name(status_code));
    else
        std::snprintf(how, sizeof how, "exited with status %d", status_code);
    // Unlocked here, in our thread: the link may hold the last reference.
    if (page_)
        page_->let_go();
    page_.reset();
    if (link_)
        link_->set_healthy(false);

    if (stop_requested_) {
        log_now(LOG_INFO, "instance %u %s after a stop signal; supervisor exits", iid, how);
        exit_like_instance(false);
    }
    if (mark_failed_) {
        log_now(LOG_WARNING, "instance %u %s after marking itself failed; supervisor exits", iid, how);
        exit_like_instance(true);
    }
    if (!failure) {
        log_now(LOG_INFO, "instance %u %s while not started; supervisor exits", iid, how);
        exit_like_instance(false);
    }
    if (policy_.quit()) {
        log_now(LOG_WARNING, "instance %u failed (%s); policy quit: supervisor exits", iid, how);
        exit_like_instance(true);
    }
    const uint64_t now = monotonic_ns();
    const uint64_t ran_ms = (now - spawned_at_ns_) / 1000000ULL;
    const uint64_t delay_ms = backoff_.on_failure(ran_ms);
    if (delay_ms == 0) {
        log_soon(LOG_WARNING, "instance %u failed (%s) after %llu ms; restarting", iid, how,
                 static_cast<unsigned long long>(ran_ms));
        return spawn_instance();
    }
    log_now(LOG_WARNING, "instance %u failed (%s) after %llu ms; quick failure %llu, restarting in %llu ms", iid, how,
            static_cast<unsigned long long>(ran_ms), static_cast<unsigned long long>(backoff_.quick_failures()),
            static_cast<unsigned long long>(delay_ms));
    // No instance runs until the restart. cmap must not keep saying
    // "running" with a last_updated that no longer moves: corosync's
    // watchdog service would count the process as failed.
    if (link_ && policy_.cmap())
        (void)link_->publish_state(kStateStopped, false);
    phase_ = Phase::BackingOff;
    restart_at_ns_ = saturating_add(now, ms_to_ns(delay_ms));
    rearm_timer();
    return Outcome::Continue;
}

void Supervisor::exit_like_instance(bool failed) {
    logs_.drain_before_exit(kLogExitWaitMs);
    if (link_) {
        link_->finish(failed ? CorosyncLink::Finish::MarkFailed : CorosyncLink::Finish::DeleteKeys);
        link_.reset();
    }
    std::fflush(nullptr);
    if (last_status_kind_ == kStatusUnknown || last_status_kind_ == CLD_EXITED) {
        const int code = last_status_kind_ == CLD_EXITED ? last_status_code_ : kExitStatusUnknown;
        // A read still blocked in the kernel (see stop_reader_before_fork())
        // would hold up exit-time work that stops every thread, such as a
        // leak checker's: in that case only, leave without it.
        if (!reader_.stop(reader_stuck_ ? 0 : kReaderStopWaitNs))
            ::_exit(code);
        std::exit(code);
    }
    // Die by the same signal. No core file of our own: the instance's crash
    // is not the supervisor's.
    const int sig = last_status_code_;
    rlimit no_core{0, 0};
    (void)::setrlimit(RLIMIT_CORE, &no_core);
    (void)::signal(sig, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, sig);
    (void)::pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
    (void)::raise(sig);
    std::exit(128 + sig); // a signal whose default action is not to end the process
}

// ---- helpers ----

// Health checking begins (or begins again): the start is a sign of life, and
// the instance's wait for a CPU is counted from here.
void Supervisor::start_health_clock() {
    deadline_.start(monotonic_ns());
    cpu_at_life_ = read_cpu_sample(schedstat_.get(), stat_.get(), monotonic_ns());
}

// Every signal to the instance goes through its pidfd: once the instance has
// been reaped (by us, or behind our back by another thread of the
// application) its pid may name another process; the pidfd never does.
// `queued` sends it as sigqueue() would (si_code SI_QUEUE, our pid and
// uid), which pidfd_send_signal() allows towards another process.
bool Supervisor::signal_instance(int sig, bool queued) noexcept {
    if (!pidfd_)
        return false;
    siginfo_t info{};
    siginfo_t *with = nullptr;
    if (queued) {
        info.si_signo = sig;
        info.si_code = SI_QUEUE;
        info.si_pid = self_;
        info.si_uid = ::getuid();
        with = &info;
    }
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, with, 0) == 0)
        return true;
    if (errno != ENOSYS && errno != EBADF)
        return false;
    // No pidfd_send_signal (kernel before 5.1, or valgrind): by pid, which
    // is ours until we reap it.
    if (queued) {
        union sigval nothing {};
        return ::sigqueue(child_, sig, nothing) == 0;
    }
    return ::kill(child_, sig) == 0;
}

void Supervisor::rearm_timer() {
    uint64_t at = 0;
    auto earliest = [&at](uint64_t t) {
        if (t != 0 && (at == 0 || t < at))
            at = t;
    };
    if (phase_ == Phase::Running)
        earliest(deadline_.next_deadline());
    if (phase_ != Phase::Killing)
        earliest(kill_at_ns_);
    if (phase_ == Phase::BackingOff)
        earliest(restart_at_ns_);
    earliest(log_flush_at_ns_);
    if (at == armed_at_)
        return; // already set that way: spare the system call
    itimerspec spec{};
    if (at != 0) {
        spec.it_value.tv_sec = static_cast<time_t>(at / 1000000000ULL);
        spec.it_value.tv_nsec = static_cast<long>(at % 1000000000ULL);
    }
    if (::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
        log_now(LOG_ERR, "cannot arm the health timer: %s", std::strerror(errno));
        return;
    }
    armed_at_ = at;
}

// Written at once if the log descriptor takes it, after anything still
// queued; otherwise it waits in the queue (see LogOutbox).
void Supervisor::log_now(int priority, const char *format, ...) noexcept {
    va_list ap;
    va_start(ap, format);
    logs_.vadd(priority, format, ap);
    va_end(ap);
    flush_logs();
}

// Queued until the loop next wakes (at the latest kLogDelayNs from now): on a
// restart the new instance runs before the supervisor spends time on logging.
void Supervisor::log_soon(int priority, const char *format, ...) noexcept {
    va_list ap;
    va_start(ap, format);
    logs_.vadd(priority, format, ap);
    va_end(ap);
    if (log_flush_at_ns_ == 0)
        log_flush_at_ns_ = saturating_add(monotonic_ns(), kLogDelayNs);
}

void Supervisor::flush_logs() noexcept {
    log_flush_at_ns_ = 0;
    logs_.drain();
    watch_log_descriptor();
}

// EPOLLOUT on the log descriptor only while lines wait for it.
void Supervisor::watch_log_descriptor() noexcept {
    const int fd = logs_.blocked_fd();
    if (fd == log_watched_fd_ || !epoll_)
        return;
    if (log_watched_fd_ >= 0)
        unwatch(epoll_.get(), log_watched_fd_);
    log_watched_fd_ = -1;
    if (fd < 0)
        return;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = kLog;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0)
        log_watched_fd_ = fd;
}

void Supervisor::reply(cs_error_t status) {
    reply_pending_ = false;
    if (channel_)
        (void)channel_reply(channel_.get(), status);
}

void Supervisor::drop_channel() {
    reply_pending_ = false;
    remote_store_pending_ = false;
    if (!channel_)
        return;
    unwatch(epoll_.get(), channel_.get());
    // Closing our end frees what the instance still has queued there, and the
    // last close of a descriptor passed in it would run here. So: no more
    // sends from the instance (from now on they fail), then every queued
    // descriptor goes to the sink, then the close frees nothing of theirs.
    (void)::shutdown(channel_.get(), SHUT_RDWR);
    for (;;) {
        Received msg = channel_receive(channel_.get(), rx_buf_.get(), kRxBufSize);
        if (msg.kind != Received::Kind::Message)
            break;
        dispose_passed(msg);
    }
    channel_.reset();
}

} // namespace sam
