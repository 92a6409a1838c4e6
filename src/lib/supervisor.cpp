// SPDX-License-Identifier: BSD-3-Clause
// supervisor.cpp - the supervisor's shell: its event loop, which turns
// readiness into events for the core (supervisor_core.hpp) and carries out
// the actions the core returns.
#include "supervisor.hpp"

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

enum Tag : uint64_t { kPidfd = 1, kChannel, kTimer, kSignal, kLink, kLog, kReader, kStandby };

// How long a restart waits for the "stopped" state to reach cmap.
constexpr uint64_t kStoppedWriteWaitNs = 500ULL * 1000000ULL;

// How long a queued log line may wait for the loop to wake up anyway.
constexpr uint64_t kLogDelayNs = 2ULL * 1000000ULL;

// How long the supervisor, about to exit or to give up, waits for a log
// reader to take its last lines.
constexpr int kLogExitWaitMs = 200;

// Requests handled per wake-up, so a flooding instance cannot starve the loop.
constexpr int kRequestsPerWakeup = 64;

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

linkwire::State link_state(core::CmapState st) noexcept {
    switch (st) {
    case core::CmapState::Running:
        return linkwire::State::Running;
    case core::CmapState::Waiting:
        return linkwire::State::WaitingForQuorum;
    case core::CmapState::Stopped:
        break;
    }
    return linkwire::State::Stopped;
}

core::Config core_config(const Library &lib) noexcept {
    core::Config c;
    c.policy = lib.policy;
    c.interval_ms = static_cast<uint64_t>(lib.interval_ms);
    c.backoff = lib.backoff;
    return c;
}

} // namespace

Supervisor::Supervisor(Library &lib)
    : lib_(lib), policy_(lib.policy), self_(::getpid()),
      core_(core_config(lib), lib.warn_signal.load(), /* quorate_now= */ true),
      standby_enabled_(standby_enabled_by_env()) {
    events_.reserve(16); // a restart posts a handful: no allocation then
}

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
        core_.config.link = true;
        core_.quorate = !policy_.quorum() || link_->quorate();
    }
    return true;
}

void Supervisor::undo_set_up() noexcept {
    standby_.discard(epoll_.get());
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
    Outcome o = dispatch(core::Event::begin(monotonic_ns()));
    if (o == Outcome::Continue)
        o = loop();
    if (o == Outcome::BecameInstance)
        return CS_OK; // lines the supervisor queued are its own to write
    // Once an instance has run, the application after sam_register() is the
    // instance's code: returning here would run it a second time, unwatched.
    if (core_.spawned_once)
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
    if (spare_page_ && (spare_pair_.instance_end || standby_.waiting()))
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

// ---- the standby (see standby.hpp) ----

bool Supervisor::standby_wanted() const noexcept {
    return standby_enabled_ && policy_.restart() && !core_.stopping && !standby_.waiting() && spare_page_ &&
           spare_pair_.instance_end;
}

// At the top of the loop, not where the start was handled: the standby's copy
// of the supervisor, once woken, returns from sam_register() by leaving the
// loop, as an instance forked by a restart does. The start has been answered
// by then, so sam_start() does not wait for this fork; the loop has one
// thread, so a death that comes meanwhile is read only after the fork, and
// the standby serves it.
Supervisor::Outcome Supervisor::fork_standby() {
    standby_due_ = false;
    bool fork_one = standby_wanted();
    // No thread of ours may exist at a fork (see stop_reader_before_fork()).
    if (fork_one && (reader_stuck_ || !reader_.stop(kReaderStopWaitNs))) {
        reader_stuck_ = true;
        fork_one = false;
    }
    // Another thread is the application's: it may change the supervisor's
    // memory after the fork, so a copy taken now may differ at the restart.
    if (fork_one && !only_thread_in_process()) {
        if (!standby_threads_logged_)
            log_now(LOG_INFO, "other threads run in the supervisor: each restart forks the next instance (no standby)");
        standby_threads_logged_ = true;
        fork_one = false;
    }
    if (fork_one) {
        const pid_t pid = ::fork();
        if (pid == 0)
            return become_standby();
        if (pid < 0) {
            log_now(LOG_WARNING, "cannot fork a standby instance: %s (the next restart forks)", std::strerror(errno));
        } else if (!standby_.adopt(pid, epoll_.get(), kStandby, lib_.data.generation())) {
            log_now(LOG_WARNING, "cannot watch the standby instance (pid %d): %s; killed it (the next restart forks)",
                    static_cast<int>(pid), std::strerror(errno));
        } else {
            spare_pair_.instance_end.reset(); // the standby's now: it hangs up when the standby ends
            // What the restart writes first (this object with its log queue,
            // the core's event queue, the library state, the heartbeat pages'
            // objects, errno): copied now, not on the restart path, now that
            // the fork shares them.
            own_pages(this, sizeof *this);
            own_pages(events_.data(), events_.capacity() * sizeof(core::Event));
            own_pages(&lib_, sizeof lib_);
            if (page_)
                own_pages(page_.get(), sizeof *page_);
            if (spare_page_)
                own_pages(spare_page_.get(), sizeof *spare_page_);
            own_pages(&errno, sizeof errno);
        }
    }
    return Outcome::Continue;
}

// In the standby, where only the forking thread exists. It waits, touching
// no memory of the application, until the supervisor wakes it as the next
// instance or goes away; every other way out is _exit().
Supervisor::Outcome Supervisor::become_standby() {
    (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != self_)
        ::_exit(0);
    // Stop signals to the process group are the supervisor's to pass on:
    // ignored here, so none waits pending for the instance this becomes, and
    // none is redirected to the supervisor by our handler.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    for (int sig : kForwardedSignals)
        (void)::sigaction(sig, &ignore, nullptr);
    (void)::pthread_sigmask(SIG_UNBLOCK, &forwarded_, nullptr);

    ChannelPair pair = std::move(spare_pair_);
    std::shared_ptr<HeartbeatPage> page = std::move(spare_page_);
    leave_supervisor(pair, *page);
    StandbyName name;
    name.enter();
    if (!standby_wait(pair.instance_end.get(), lib_))
        ::_exit(0);
    name.leave();
    enter_instance(pair, std::move(page));
    return Outcome::BecameInstance;
}

// The standby ended before it was used (killed from outside, or it could not
// wait): the next restart forks, with a channel and page of its own.
Supervisor::Outcome Supervisor::on_standby_exit() {
    const pid_t pid = standby_.pid();
    char how[64];
    if (!standby_.reap_ended(epoll_.get(), how, sizeof how))
        return Outcome::Continue;
    log_now(LOG_WARNING, "the standby instance (pid %d) %s before use; the next restart forks", static_cast<int>(pid),
            how);
    spare_pair_ = ChannelPair{};
    spare_page_.reset();
    prepare_spare();
    return Outcome::Continue;
}

// Kills the standby (reaped when its pidfd says it has ended) and drops the
// channel end and page it held.
void Supervisor::retire_standby() noexcept {
    if (!standby_.waiting())
        return;
    standby_.retire(epoll_.get());
    spare_pair_ = ChannelPair{};
    spare_page_.reset();
}

// The one place an instance is made. Its outcome is reported to the core:
// Spawned (and Died at once if it is already reaped), or SpawnFailed.
Supervisor::Outcome Supervisor::spawn_instance() {
    auto spawn_failed = [this](unsigned iid, const char *what, int err) {
        post(core::Event::spawn_failed(monotonic_ns(), iid, what, err));
        return Outcome::Continue;
    };
    standby_due_ = false;
    if (standby_.waiting() && !standby_.can_carry(lib_.data))
        retire_standby(); // the data stored since its fork is too large for it
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

    // The standby, if one waits, becomes the instance: no fork.
    pid_t pid = -1;
    Standby::Handover taken; // the process and what we watch of it
    bool reaped_already = false;
    if (standby_.waiting()) {
        pid = standby_.pid();
        if (standby_.wake(pair.supervisor_end.get(), iid, lib_.warn_signal.load(), lib_.data)) {
            taken = standby_.release(epoll_.get(), kPidfd);
            log_soon(LOG_INFO, "the standby (pid %d) becomes instance %u", static_cast<int>(pid), iid);
        } else {
            log_now(LOG_WARNING, "the standby (pid %d) cannot take instance %u: %s; forking it", static_cast<int>(pid),
                    iid, std::strerror(errno));
            // Its channel and page go with it: new ones for the fork.
            pair = ChannelPair{};
            shared_page.reset();
            retire_standby();
            if (!make_spare()) {
                const int err = errno;
                --lib_.last_instance_id;
                return spawn_failed(iid, "prepare", err);
            }
            pair = std::move(spare_pair_);
            shared_page = std::move(spare_page_);
        }
    }
    UniqueFd &pidfd = taken.pidfd;
    if (!pidfd) {
        // A descriptor slot for the pidfd, reserved before the fork: once the
        // child runs, failing for want of a descriptor would leave it behind.
        UniqueFd reserved(::fcntl(epoll_.get(), F_DUPFD_CLOEXEC, 0));
        if (!reserved) {
            const int err = errno;
            --lib_.last_instance_id;
            return spawn_failed(iid, "prepare", err);
        }
        pid = ::fork();
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
        pidfd.reset(open_pidfd(pid));
        reaped_already = !pidfd && errno == ESRCH;
    }
    if (!reaped_already && (!pidfd || (!taken.watched && !watch(epoll_.get(), pidfd.get(), kPidfd)) ||
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
    child_ = pid;
    pidfd_ = std::move(pidfd);
    // Where the kernel tells the instance's use of the CPU; without them (no
    // /proc, no CONFIG_SCHED_INFO) only our own timer tells a stall. A
    // standby's were opened when it was forked.
    schedstat_ = std::move(taken.schedstat);
    stat_ = std::move(taken.stat);
    if (!taken.watched) {
        char path[48];
        std::snprintf(path, sizeof path, "/proc/%d/schedstat", static_cast<int>(pid));
        schedstat_.reset(::open(path, O_RDONLY | O_CLOEXEC));
        std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
        stat_.reset(::open(path, O_RDONLY | O_CLOEXEC));
    }
    cpu_at_life_ = CpuSample{};
    channel_ = std::move(pair.supervisor_end);
    page_ = std::move(shared_page);
    // The link maps the page only once the new instance has had the CPU (see
    // loop()): it needs it for "running", which no instance reaches before
    // the loop wakes again, and mapping it costs the link a wake-up that
    // would run before the new instance.
    link_watch_due_ = link_ != nullptr;
    post(core::Event::spawned(monotonic_ns(), iid, static_cast<int>(pid)));
    // Dead and reaped by another thread of the application (or by the
    // kernel, SIGCHLD ignored) before we could even open its pidfd.
    if (reaped_already)
        post(core::Event::died(monotonic_ns(), 0, core::kStatusUnknown));
    return Outcome::Continue;
}

// The end when supervision cannot go on after an instance has run. Nothing
// is left running: an instance still alive is killed first.
void Supervisor::exit_cannot_go_on() {
    standby_.discard(epoll_.get());
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
    const uint64_t token = link_->publish_state(linkwire::State::Stopped, /* awaited= */ true);
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
                post(core::Event::quorum(monotonic_ns(), e.quorate)); // no instance yet: only noted
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
    leave_supervisor(pair, *page);
    enter_instance(pair, std::move(page));
}

// What a child of the supervisor drops: every descriptor and thread handle
// of the supervisor's. Kept: the instance end of `pair` and `page`.
void Supervisor::leave_supervisor(ChannelPair &pair, HeartbeatPage &page) noexcept {
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
    if (page_)
        page_->disown_after_fork(); // a standby is forked while the instance's page is held
    page_.reset();
    spare_pair_ = ChannelPair{};
    spare_page_.reset();
    logs_.close();
    standby_.abandon_in_child();
    // The link process is the supervisor's: no descriptor of it stays here.
    if (link_)
        link_->close_in_instance();
    page.close_fd();
}

void Supervisor::enter_instance(ChannelPair &pair, std::shared_ptr<HeartbeatPage> page) {
    const int warn = lib_.warn_signal.load();
    // If the supervisor dies, the instance hears about it at once.
    (void)::prctl(PR_SET_PDEATHSIG, warn);
    if (::getppid() != self_)
        (void)::raise(warn);

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
        // Not while a data request is being carried out: stopping the reader
        // for the fork could take the answer of a read that has just ended.
        if (standby_due_ && core_.pending != core::Pending::Data && fork_standby() == Outcome::BecameInstance)
            return Outcome::BecameInstance;
        epoll_event events[8];
        const int n = ::epoll_wait(epoll_.get(), events, 8, -1);
        // Lines queued before we slept: the new instance has had the CPU.
        flush_logs();
        if (link_watch_due_) {
            link_watch_due_ = false;
            if (page_)
                link_->watch_instance(page_);
        }
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
            case kStandby:
                o = on_standby_exit();
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

// ---- readiness into events ----

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
    if (reaped_elsewhere)
        return dispatch(core::Event::died(monotonic_ns(), 0, core::kStatusUnknown));
    return dispatch(core::Event::died(monotonic_ns(), si.si_status, si.si_code));
}

Supervisor::Outcome Supervisor::on_channel() {
    // Once a start is answered, its standby is forked before any further
    // request is read: the instance may already have sent one, and a read of
    // its memory would start a thread, which must not exist at that fork.
    for (int handled = 0; channel_ && handled < kRequestsPerWakeup && !standby_due_; ++handled) {
        Received msg = channel_receive(channel_.get(), rx_buf_.get(), kRxBufSize);
        switch (msg.kind) {
        case Received::Kind::Nothing:
            return Outcome::Continue;
        case Received::Kind::Closed:
        case Received::Kind::Error:
            // The instance closed its end (or it is dying): it can still beat
            // through the page, and the pidfd will tell us when it is gone.
            harvest_slot(/* last= */ false);
            return dispatch(core::Event::channel_closed(monotonic_ns()));
        case Received::Kind::Message:
            break;
        }
        const Outcome o = on_message(msg);
        dispose_passed(msg);
        if (o != Outcome::Continue)
            return o;
    }
    return Outcome::Continue;
}

// One datagram, decoded into the request the core decides on.
Supervisor::Outcome Supervisor::on_message(Received &msg) {
    const uint64_t now = monotonic_ns();
    if (msg.truncated)
        return dispatch(core::Event::request_of(now, core::Request::Oversized));
    const wire::DecodeResult d = wire::decode_request(rx_buf_.get(), msg.len, msg.fd_count);
    if (!d.request)
        return dispatch(core::Event::request_of(now, core::Request::Malformed, 0, d.error.data(),
                                                static_cast<int>(d.error.size())));
    core::Request r = core::Request::Data;
    switch (d.request->type) {
    case wire::RequestType::Start:
        r = core::Request::Start;
        break;
    case wire::RequestType::Stop:
        r = core::Request::Stop;
        break;
    case wire::RequestType::WarnSignalSet:
        r = core::Request::WarnSignalSet;
        break;
    case wire::RequestType::MarkFailed:
        r = core::Request::MarkFailed;
        break;
    case wire::RequestType::DataStoreInline:
    case wire::RequestType::DataStoreMemfd:
    case wire::RequestType::DataStoreRemote:
    case wire::RequestType::DataDelete:
        r = core::Request::Data;
        break;
    }
    current_request_ = &*d.request;
    current_message_ = &msg;
    const Outcome o = dispatch(core::Event::request_of(now, r, d.request->arg));
    current_request_ = nullptr;
    current_message_ = nullptr;
    return o;
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
    uint64_t starved = 0;
    if (core::health_timed(core_.phase)) {
        // How long the instance was kept off the CPU since it last showed
        // life: a silence the scheduler imposed is not a hang (health.hpp).
        timer_sample_ = read_cpu_sample(schedstat_.get(), stat_.get(), now);
        starved = starved_between(cpu_at_life_, timer_sample_);
    }
    return dispatch(core::Event::timer(now, stamp, starved));
}

Supervisor::Outcome Supervisor::on_signal() {
    signalfd_siginfo info;
    while (::read(signals_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        const Outcome o = dispatch(core::Event::signal_of(monotonic_ns(), static_cast<int>(info.ssi_signo)));
        if (o != Outcome::Continue)
            return o;
    }
    return Outcome::Continue;
}

Supervisor::Outcome Supervisor::on_link() {
    for (const CorosyncLink::Event &e : link_->take_events()) {
        const uint64_t now = monotonic_ns();
        if (e.kind == CorosyncLink::Event::Kind::Quorum)
            post(core::Event::quorum(now, e.quorate));
        else if (e.kind == CorosyncLink::Event::Kind::QuorumChecked && e.token == check_token_)
            post(core::Event::quorum_answer(now, check_ticket_, e.quorate));
        else if (e.kind == CorosyncLink::Event::Kind::StateWritten && e.token == write_token_)
            post(core::Event::state_written(now, write_ticket_, e.error));
        // Anything else answers a question nobody waits for any more.
    }
    return drain();
}

Supervisor::Outcome Supervisor::on_reader() {
    std::optional<RemoteReader::Result> r = reader_.collect();
    if (reader_.ready())
        reader_stuck_ = false; // a thread left blocked before a fork has ended and been joined
    if (!r)
        return Outcome::Continue; // nothing finished
    if (r->error == CS_OK)
        data_result_ = std::move(r->blob);
    // Dropped by the core if the instance that asked is gone.
    return dispatch(core::Event::data_done(monotonic_ns(), r->error));
}

// ---- the core's actions ----

void Supervisor::post(const core::Event &e) { events_.push_back(e); }

Supervisor::Outcome Supervisor::drain() {
    Outcome o = Outcome::Continue;
    for (size_t i = 0; i < events_.size() && o == Outcome::Continue; ++i) {
        const core::Event e = events_[i]; // a copy: actions may post more
        const core::Actions actions = core::step(core_, e);
        for (const core::Action &a : actions) {
            o = execute(a);
            if (o != Outcome::Continue)
                break;
        }
    }
    events_.clear();
    data_result_.reset();
    data_delete_ = false;
    return o;
}

Supervisor::Outcome Supervisor::execute(const core::Action &a) {
    using K = core::Action::Kind;
    switch (a.kind) {
    case K::Spawn:
        return spawn_instance();
    case K::Signal:
        if (!a.queued || !signal_instance(a.signal, true))
            (void)signal_instance(a.signal, false);
        break;
    case K::ReleaseInstance:
        release_instance();
        break;
    case K::DropChannel:
        drop_channel();
        break;
    case K::Reply:
        if (channel_)
            (void)channel_reply(channel_.get(), a.status);
        break;
    case K::RunData:
        run_data_request();
        break;
    case K::CommitData: {
        {
            std::lock_guard<std::mutex> g(lib_.mu);
            if (data_delete_)
                lib_.data.clear();
            else if (data_result_)
                lib_.data.replace(std::move(data_result_));
        }
        slot_superseded();
        break;
    }
    case K::SetWarnSignal:
        lib_.warn_signal.store(a.signal);
        break;
    case K::NoteLife:
        link_->note_life(a.at_ns);
        break;
    case K::SetHealthy:
        link_->set_healthy(a.flag);
        break;
    case K::PublishState: {
        const uint64_t token = link_->publish_state(link_state(a.cmap_state), a.flag);
        if (a.flag) {
            write_token_ = token;
            write_ticket_ = a.ticket;
        }
        break;
    }
    case K::CheckQuorum:
        check_token_ = link_->check_quorum();
        check_ticket_ = a.ticket;
        break;
    case K::PrepareSpare: // the instance has started
        prepare_spare();
        standby_due_ = standby_wanted();
        break;
    case K::ResetCpuBaseline:
        cpu_at_life_ = read_cpu_sample(schedstat_.get(), stat_.get(), monotonic_ns());
        break;
    case K::KeepCpuSample:
        cpu_at_life_ = timer_sample_;
        cpu_at_life_.at_ns = a.at_ns;
        break;
    case K::ArmTimer:
        rearm_timer(a.at_ns);
        break;
    case K::Log:
        if (a.flag)
            log_soon(a.priority, "%s", a.text);
        else
            log_now(a.priority, "%s", a.text);
        break;
    case K::ExitLikeInstance:
        exit_like_instance(a.flag, a.status_code, a.status_kind);
    case K::ExitCannotGoOn:
        exit_cannot_go_on();
    case K::GiveUp:
        return Outcome::Fatal;
    }
    return Outcome::Continue;
}

// The instance is dead: nothing of it is watched or kept any more.
void Supervisor::release_instance() {
    if (pidfd_) {
        unwatch(epoll_.get(), pidfd_.get());
        pidfd_.reset();
    }
    schedstat_.reset();
    stat_.reset();
    drop_channel();
    harvest_slot(/* last= */ true);
    // Unlocked here, in our thread: the link may hold the last reference.
    if (page_)
        page_->let_go();
    page_.reset();
}

// Small stores (data_slot.hpp) stay in the instance's slot until taken
// here: at the instance's death and when it closes its channel. Whatever
// the slot holds is checked before it replaces our data; a slot that fails
// costs that instance its own slot data, and is logged once. `last`: the
// page goes next, and the next page's slot counts from 0 again.
void Supervisor::harvest_slot(bool last) noexcept {
    const uint64_t seen = page_ && slot_page_ == page_.get() ? slot_seen_ : 0;
    SlotHarvest h = page_ ? page_->slot().harvest(seen) : SlotHarvest{};
    slot_page_ = last ? nullptr : page_.get();
    slot_seen_ = h.state == SlotState::Nothing ? seen : h.seq;
    if (h.state == SlotState::Nothing)
        return;
    if (h.state != SlotState::Valid) {
        log_now(LOG_WARNING, "instance %u left invalid data in its small-store slot (%s); ignored",
                lib_.last_instance_id, slot_state_name(h.state));
        return;
    }
    std::lock_guard<std::mutex> g(lib_.mu);
    lib_.data.replace(std::move(h.blob));
}

// A store or delete came through the channel: every slot store before it
// (all published by now, since the instance waits for our reply) is older.
void Supervisor::slot_superseded() noexcept {
    if (!page_)
        return;
    slot_page_ = page_.get();
    slot_seen_ = page_->slot().published_seq();
}

// The data request being dispatched, carried out; its result goes back to
// the core (DataDone), at once or when the reader thread has read the bytes.
void Supervisor::run_data_request() {
    const wire::Request &req = *current_request_;
    Received &msg = *current_message_;
    const uint64_t now = monotonic_ns();
    switch (req.type) {
    case wire::RequestType::DataStoreInline:
        try {
            data_result_ = DataBlob::copy_of(req.inline_data, req.size);
        } catch (const std::bad_alloc &) {
            post(core::Event::data_done(now, CS_ERR_NO_MEMORY));
            return;
        }
        post(core::Event::data_done(now, CS_OK));
        return;
    case wire::RequestType::DataStoreMemfd: {
        cs_error_t err = CS_OK;
        auto blob = DataBlob::from_sealed_memfd(msg.fds[0].get(), req.size, err);
        if (!blob) {
            post(core::Event::data_done(now, err,
                                        "sent a data descriptor that is not a sealed memfd of the stated size"));
            return;
        }
        msg.fds[0].reset(); // our mapping keeps the memfd: this close is not its last
        data_result_ = std::move(blob);
        post(core::Event::data_done(now, CS_OK));
        return;
    }
    case wire::RequestType::DataStoreRemote:
        start_remote_store(req);
        return;
    case wire::RequestType::DataDelete:
        data_delete_ = true;
        post(core::Event::data_done(now, CS_OK));
        return;
    case wire::RequestType::Start:
    case wire::RequestType::Stop:
    case wire::RequestType::WarnSignalSet:
    case wire::RequestType::MarkFailed:
        break; // decided by the core alone
    }
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
        post(core::Event::data_done(monotonic_ns(), CS_ERR_TRY_AGAIN));
        return;
    }
    std::shared_ptr<DataBlob> blob;
    try {
        blob = DataBlob::allocate(req.size);
    } catch (const std::bad_alloc &) {
        post(core::Event::data_done(monotonic_ns(), CS_ERR_NO_MEMORY));
        return;
    }
    if (!reader_watched_) {
        if (!reader_.open() || !watch(epoll_.get(), reader_.event_fd(), kReader)) {
            log_now(LOG_WARNING, "cannot prepare reads of instance memory: %s (instances send memfds)",
                    std::strerror(errno));
            post(core::Event::data_done(monotonic_ns(), CS_ERR_NOT_SUPPORTED));
            return;
        }
        reader_watched_ = true;
    }
    if (!reader_.start(child_, req.arg, std::move(blob))) {
        log_now(LOG_WARNING, "cannot start a read of instance %u's memory: %s", lib_.last_instance_id,
                std::strerror(errno));
        post(core::Event::data_done(monotonic_ns(), CS_ERR_TRY_AGAIN));
        return;
    }
    // The request stays pending in the core until on_reader().
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

void Supervisor::exit_like_instance(bool failed, int status_code, int status_kind) {
    standby_.discard(epoll_.get());
    logs_.drain_before_exit(kLogExitWaitMs);
    if (link_) {
        link_->finish(failed ? CorosyncLink::Finish::MarkFailed : CorosyncLink::Finish::DeleteKeys);
        link_.reset();
    }
    std::fflush(nullptr);
    if (status_kind == core::kStatusUnknown || status_kind == CLD_EXITED) {
        const int code = status_kind == CLD_EXITED ? status_code : kExitStatusUnknown;
        // A read still blocked in the kernel (see stop_reader_before_fork())
        // would hold up exit-time work that stops every thread, such as a
        // leak checker's: in that case only, leave without it.
        if (!reader_.stop(reader_stuck_ ? 0 : kReaderStopWaitNs))
            ::_exit(code);
        std::exit(code);
    }
    die_by_signal(status_code);
}

// ---- helpers ----

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

// The timer serves the core's deadline and the flush of lines logged soon.
void Supervisor::rearm_timer(uint64_t core_due) {
    uint64_t at = core_due;
    if (log_flush_at_ns_ != 0 && (at == 0 || log_flush_at_ns_ < at))
        at = log_flush_at_ns_;
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

void Supervisor::drop_channel() {
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
