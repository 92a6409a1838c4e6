// SPDX-License-Identifier: BSD-3-Clause
// corosync_link.cpp - the supervisor's side of the link process: requests,
// answers, deadlines and restarts, never blocking the supervisor's loop.
#include "corosync_link.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.hpp"
#include "link_process.hpp"
#include "log.hpp"

namespace sam {

namespace {

using linkwire::Direction;
using linkwire::Message;
using linkwire::Type;

enum Tag : uint64_t { kSocket = 1, kTimer = 2 };

constexpr uint64_t kRestartFirstNs = 100ULL * 1000000ULL;   // a link that dies again soon waits 100 ms,
constexpr uint64_t kRestartMaxNs = 2000ULL * 1000000ULL;    // doubling up to 2 s;
constexpr uint64_t kRestartResetNs = 10000ULL * 1000000ULL; // one that ran 10 s restarts at once
constexpr int kMessagesPerWakeup = 64;

bool reaped(pid_t pid) noexcept {
    siginfo_t si{};
    return retry_eintr([&] { return ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG); }) != 0 ||
           si.si_pid == pid;
}

void kill_and_reap(pid_t pid) noexcept {
    (void)::kill(pid, SIGKILL);
    (void)retry_eintr([&] { return ::waitpid(pid, nullptr, 0); });
}

} // namespace

std::unique_ptr<CorosyncLink> CorosyncLink::start(const Config &cfg, cs_error_t &error) {
    std::unique_ptr<CorosyncLink> link(new CorosyncLink(cfg));
    link->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    link->timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTimer;
    if (!link->epoll_ || !link->timer_ ||
        ::epoll_ctl(link->epoll_.get(), EPOLL_CTL_ADD, link->timer_.get(), &ev) != 0 ||
        !link->spawn(/* first= */ true)) {
        error = CS_ERR_LIBRARY;
        return nullptr;
    }
    const uint64_t now = monotonic_ns();
    if (!link->wait_ready(saturating_add(now, kAwaitedWriteWaitNs), error)) {
        // Without CMAP nothing had to be created: a link that is merely slow
        // (corosync stopped) answers later, and until then we are not quorate.
        if (cfg.cmap || error != CS_ERR_TIMEOUT) {
            kill_and_reap(link->pid_);
            link->pid_ = -1;
            return nullptr;
        }
        link->responsive_ = false;
    }
    error = CS_OK;
    link->reported_quorate_ = link->quorate();
    link->next_poll_at_ = saturating_add(now, kQuorumPollNs);
    link->arm_timer();
    return link;
}

CorosyncLink::~CorosyncLink() = default;

void CorosyncLink::note(int priority, const char *format, ...) noexcept {
    char text[256];
    va_list ap;
    va_start(ap, format);
    std::vsnprintf(text, sizeof text, format, ap);
    va_end(ap);
    if (logger_)
        logger_(priority, text);
    else
        log_line(priority, "%s", text);
}

bool CorosyncLink::spawn(bool first) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    UniqueFd mine(sv[0]), theirs(sv[1]);
    if (::fcntl(mine.get(), F_SETFL, O_NONBLOCK) != 0)
        return false;
    LinkConfig lc;
    lc.supervisor_pid = cfg_.supervisor_pid;
    lc.cmap = cfg_.cmap;
    lc.quorum = cfg_.quorum;
    lc.first = first;
    lc.recovery = cfg_.quit ? "quit" : "restart";
    lc.interval_ms = cfg_.interval_ms;
    const pid_t pid = ::fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        mine.reset();
        run_link_process(theirs.get(), lc);
    }
    theirs.reset();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kSocket;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, mine.get(), &ev) != 0) {
        kill_and_reap(pid);
        return false;
    }
    sock_ = std::move(mine);
    output_watched_ = false;
    pid_ = pid;
    spawned_at_ = monotonic_ns();
    return true;
}

bool CorosyncLink::wait_ready(uint64_t until, cs_error_t &error) {
    for (;;) {
        const uint64_t now = monotonic_ns();
        if (now >= until) {
            error = CS_ERR_TIMEOUT;
            return false;
        }
        pollfd p{sock_.get(), POLLIN, 0};
        const int wait_ms = static_cast<int>((until - now) / 1000000ULL) + 1;
        if (retry_eintr([&] { return ::poll(&p, 1, wait_ms); }) <= 0)
            continue;
        Received r = channel_receive(sock_.get(), rx_, sizeof rx_);
        if (r.kind == Received::Kind::Nothing)
            continue;
        const auto m = r.kind == Received::Kind::Message && !r.truncated
                           ? linkwire::decode(Direction::FromLink, rx_, r.len, r.fd_count)
                           : std::nullopt;
        if (!m || static_cast<Type>(m->type) != Type::Ready) {
            error = CS_ERR_LIBRARY;
            return false;
        }
        error = static_cast<cs_error_t>(m->error);
        link_quorate_ = m->flag != 0;
        return error == CS_OK;
    }
}

std::vector<CorosyncLink::Event> CorosyncLink::take_events() {
    std::vector<Event> out;
    uint64_t expirations;
    (void)::read(timer_.get(), &expirations, sizeof expirations);
    reap_old();
    const uint64_t now = monotonic_ns();
    for (int handled = 0; sock_ && handled < kMessagesPerWakeup; ++handled) {
        Received r = channel_receive(sock_.get(), rx_, sizeof rx_);
        if (r.kind == Received::Kind::Nothing)
            break;
        if (r.kind != Received::Kind::Message) {
            link_gone(now);
            break;
        }
        const auto m = r.truncated ? std::nullopt : linkwire::decode(Direction::FromLink, rx_, r.len, r.fd_count);
        if (!m) {
            note(LOG_ERR, "corosync link (pid %d) sent a malformed message", static_cast<int>(pid_));
            link_gone(now);
            break;
        }
        on_message(*m, out);
    }
    if (output_watched_)
        flush();
    on_deadlines(now, out);
    arm_timer();
    return out;
}

void CorosyncLink::on_message(const Message &m, std::vector<Event> &out) {
    set_responsive(true, out);
    switch (static_cast<Type>(m.type)) {
    case Type::Ready:
    case Type::Quorum:
        link_quorate_ = m.flag != 0;
        break;
    case Type::Written: {
        auto it = std::find_if(writes_.begin(), writes_.end(), [&](const Pending &p) { return p.token == m.token; });
        if (it != writes_.end()) {
            writes_.erase(it);
            out.push_back(Event{Event::Kind::StateWritten, false, static_cast<cs_error_t>(m.error), m.token});
        }
        break;
    }
    case Type::QuorumAnswer: {
        link_quorate_ = m.error == CS_OK && m.flag != 0;
        auto it = std::find_if(queries_.begin(), queries_.end(), [&](const Pending &p) { return p.token == m.token; });
        if (it != queries_.end()) {
            if (it->for_supervisor)
                out.push_back(Event{Event::Kind::QuorumChecked, link_quorate_, CS_OK, m.token});
            queries_.erase(it);
        }
        break;
    }
    default:
        break;
    }
    report_quorum(out);
}

void CorosyncLink::on_deadlines(uint64_t now, std::vector<Event> &out) {
    bool overdue = false;
    for (auto it = writes_.begin(); it != writes_.end();) {
        if (now < it->deadline) {
            ++it;
            continue;
        }
        out.push_back(Event{Event::Kind::StateWritten, false, CS_ERR_TIMEOUT, it->token});
        it = writes_.erase(it);
        overdue = true;
    }
    for (auto it = queries_.begin(); it != queries_.end();) {
        if (now < it->deadline) {
            ++it;
            continue;
        }
        if (it->for_supervisor)
            out.push_back(Event{Event::Kind::QuorumChecked, false, CS_ERR_TIMEOUT, it->token});
        it = queries_.erase(it);
        overdue = true;
    }
    if (overdue)
        set_responsive(false, out);

    if (cfg_.quorum && sock_ && now >= next_poll_at_) {
        const bool polling =
            std::any_of(queries_.begin(), queries_.end(), [](const Pending &p) { return !p.for_supervisor; });
        if (!polling)
            (void)ask(/* for_supervisor= */ false, now);
        next_poll_at_ = saturating_add(now, kQuorumPollNs);
    }

    if (!sock_ && restart_at_ != 0 && now >= restart_at_) {
        restart_at_ = 0;
        if (!spawn(/* first= */ false)) {
            note(LOG_ERR, "cannot restart the corosync link: %s", std::strerror(errno));
            restart_at_ = saturating_add(now, kRestartMaxNs);
            return;
        }
        // The new link gets everything again; answers still awaited are
        // asked of it (their deadlines stay).
        update_pending_ = cfg_.cmap && state_ != linkwire::State::None;
        write_token_ = 0;
        for (const Pending &w : writes_)
            write_token_ = w.token;
        watch_pending_ = page_ != nullptr;
        for (const Pending &q : queries_) {
            Message m = linkwire::make(Direction::ToLink, Type::QuorumQuery);
            m.token = q.token;
            (void)linkwire::send_message(sock_.get(), m, -1, /* dont_wait= */ true);
        }
        flush();
    }
}

void CorosyncLink::link_gone(uint64_t now) {
    note(LOG_WARNING, "corosync link (pid %d) ended; restarting it", static_cast<int>(pid_));
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, sock_.get(), nullptr);
    sock_.reset();
    output_watched_ = false;
    if (pid_ > 0) {
        (void)::kill(pid_, SIGKILL); // it may only have closed the socket
        unreaped_.push_back(pid_);
        pid_ = -1;
    }
    reap_old();
    // The link's last word stands until its successor answers, for at most
    // kQuorumAnswerWaitNs like any question: a link that crashed and came
    // back within that time is not worth a QUORUM instance's life.
    if (cfg_.quorum)
        (void)ask(/* for_supervisor= */ false, now);
    if (now - spawned_at_ >= kRestartResetNs)
        restart_step_ = 0;
    else
        restart_step_ = restart_step_ == 0 ? kRestartFirstNs : std::min(restart_step_ * 2, kRestartMaxNs);
    restart_at_ = std::max<uint64_t>(saturating_add(now, restart_step_), 1);
}

void CorosyncLink::reap_old() noexcept {
    unreaped_.erase(std::remove_if(unreaped_.begin(), unreaped_.end(), reaped), unreaped_.end());
}

void CorosyncLink::set_responsive(bool responsive, std::vector<Event> &out) {
    if (responsive == responsive_)
        return;
    responsive_ = responsive;
    if (responsive)
        note(LOG_INFO, "the corosync link answers again");
    else
        note(LOG_WARNING, "the corosync link does not answer (corosync blocked?); treating corosync as unavailable");
    report_quorum(out);
}

void CorosyncLink::report_quorum(std::vector<Event> &out) {
    if (!cfg_.quorum || quorate() == reported_quorate_)
        return;
    reported_quorate_ = quorate();
    out.push_back(Event{Event::Kind::Quorum, reported_quorate_, CS_OK, 0});
}

uint64_t CorosyncLink::ask(bool for_supervisor, uint64_t now) {
    const uint64_t token = ++next_token_;
    queries_.push_back(Pending{token, saturating_add(now, kQuorumAnswerWaitNs), for_supervisor});
    if (sock_) {
        Message m = linkwire::make(Direction::ToLink, Type::QuorumQuery);
        m.token = token;
        // A full socket means a link that does not read: the deadline answers.
        (void)linkwire::send_message(sock_.get(), m, -1, /* dont_wait= */ true);
    }
    return token;
}

uint64_t CorosyncLink::check_quorum() {
    const uint64_t token = ask(/* for_supervisor= */ true, monotonic_ns());
    arm_timer();
    return token;
}

uint64_t CorosyncLink::publish_state(linkwire::State state, bool awaited) {
    const uint64_t now = monotonic_ns();
    if (update_pending_ && write_token_ != 0) {
        // Not sent yet, and a newer state replaces it: nobody waits for it.
        writes_.erase(std::remove_if(writes_.begin(), writes_.end(),
                                     [this](const Pending &p) { return p.token == write_token_; }),
                      writes_.end());
    }
    state_ = state;
    const uint64_t token = awaited ? ++next_token_ : 0;
    if (awaited)
        writes_.push_back(Pending{token, saturating_add(now, kAwaitedWriteWaitNs), true});
    write_token_ = token;
    update_pending_ = true;
    flush();
    arm_timer();
    return token;
}

void CorosyncLink::watch_instance(std::shared_ptr<HeartbeatPage> page) {
    if (!cfg_.cmap)
        return;
    page_ = std::move(page);
    watch_pending_ = page_ != nullptr;
    flush();
}

void CorosyncLink::note_life(uint64_t at_ns) noexcept {
    if (at_ns <= life_ns_)
        return;
    life_ns_ = at_ns;
    // Coalesced: the link publishes at most four stamps per interval, so a
    // stamp a sixteenth of an interval old is as good as a new one.
    const uint64_t step = cfg_.interval_ms == 0 ? 250ULL * 1000000ULL : ms_to_ns(cfg_.interval_ms) / 16;
    if (cfg_.cmap && life_ns_ - life_sent_ns_ >= step) {
        update_pending_ = true;
        flush();
    }
}

void CorosyncLink::set_healthy(bool healthy) noexcept {
    if (healthy == healthy_)
        return;
    healthy_ = healthy;
    if (cfg_.cmap) {
        update_pending_ = true;
        flush();
    }
}

void CorosyncLink::flush() {
    if (!sock_)
        return;
    if (watch_pending_) {
        const int fd = page_ ? page_->fd() : -1;
        if (fd >= 0) {
            const Message m = linkwire::make(Direction::ToLink, Type::Watch);
            if (linkwire::send_message(sock_.get(), m, fd, /* dont_wait= */ true) == EAGAIN) {
                watch_output(true);
                return;
            }
        }
        watch_pending_ = false;
    }
    if (update_pending_) {
        Message m = linkwire::make(Direction::ToLink, Type::Update);
        m.state = static_cast<uint8_t>(state_);
        m.flag = healthy_ ? 1 : 0;
        m.life_ns = life_ns_;
        m.token = write_token_;
        for (const Pending &w : writes_)
            if (w.token == write_token_)
                m.deadline_ns = w.deadline;
        if (linkwire::send_message(sock_.get(), m, -1, /* dont_wait= */ true) == EAGAIN) {
            watch_output(true);
            return;
        }
        // Sent, or the link is gone: a restarted one gets everything anyway.
        update_pending_ = false;
        write_token_ = 0;
        life_sent_ns_ = life_ns_;
    }
    watch_output(false);
}

void CorosyncLink::watch_output(bool on) noexcept {
    if (on == output_watched_ || !sock_)
        return;
    epoll_event ev{};
    ev.events = on ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    ev.data.u64 = kSocket;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, sock_.get(), &ev) == 0)
        output_watched_ = on;
}

void CorosyncLink::arm_timer() {
    uint64_t at = 0;
    for (const Pending &p : writes_)
        at = earlier_deadline(at, p.deadline);
    for (const Pending &p : queries_)
        at = earlier_deadline(at, p.deadline);
    if (cfg_.quorum && sock_)
        at = earlier_deadline(at, next_poll_at_);
    if (!sock_)
        at = earlier_deadline(at, restart_at_);
    if (!unreaped_.empty())
        at = earlier_deadline(at, saturating_add(monotonic_ns(), kRestartFirstNs));
    itimerspec spec{};
    if (at != 0) {
        spec.it_value.tv_sec = static_cast<time_t>(at / 1000000000ULL);
        spec.it_value.tv_nsec = static_cast<long>(at % 1000000000ULL);
    }
    (void)::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

void CorosyncLink::finish(Finish how, bool reap) {
    if (sock_) {
        Message m = linkwire::make(Direction::ToLink, Type::Finish);
        m.flag = how == Finish::MarkFailed ? 1 : 0;
        if (linkwire::send_message(sock_.get(), m, -1, /* dont_wait= */ true) == 0) {
            // The link exits once the write is done: its end closes.
            const uint64_t until = saturating_add(monotonic_ns(), kFinishWaitNs);
            for (;;) {
                const uint64_t now = monotonic_ns();
                if (now >= until)
                    break;
                pollfd p{sock_.get(), POLLIN, 0};
                const int wait_ms = static_cast<int>((until - now) / 1000000ULL) + 1;
                if (retry_eintr([&] { return ::poll(&p, 1, wait_ms); }) <= 0)
                    continue;
                Received r = channel_receive(sock_.get(), rx_, sizeof rx_);
                if (r.kind == Received::Kind::Closed || r.kind == Received::Kind::Error)
                    break;
            }
        }
        sock_.reset();
    }
    if (pid_ > 0) {
        if (!reaped(pid_)) {
            if (reap)
                kill_and_reap(pid_);
            else
                unreaped_.push_back(pid_); // finishing on its own
        }
        pid_ = -1;
    }
    if (reap) {
        for (pid_t p : unreaped_)
            kill_and_reap(p);
        unreaped_.clear();
    }
}

void CorosyncLink::close_in_instance() noexcept {
    logger_ = nullptr;
    sock_.reset();
    epoll_.reset();
    timer_.reset();
    page_.reset();
    pid_ = -1;
    unreaped_.clear();
}

} // namespace sam
