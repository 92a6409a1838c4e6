// SPDX-License-Identifier: BSD-3-Clause
// link_loop.cpp - requests, writes, refreshes, quorum answers and
// reconnects of the link process.
#include "link_loop.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <poll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "channel.hpp"
#include "log.hpp"

namespace sam {

using linkwire::Message;
using linkwire::State;
using linkwire::Type;

namespace {
// An awaited write that cmap cannot take is answered with cmap's error this
// long before the supervisor stops waiting, so the caller hears the real
// error rather than a time-out.
constexpr uint64_t kAnswerMarginNs = 50ULL * 1000000ULL;
constexpr int kMessagesPerWakeup = 64;
} // namespace

void LinkLoop::send(const Message &m) {
    // Blocking: the supervisor reads whenever it can. It only fails when
    // the supervisor is gone, and then so are we.
    if (linkwire::send_message(sock_, m, -1, /* dont_wait= */ false) != 0)
        ::_exit(0);
}

void LinkLoop::connect_at_start(uint64_t now) {
    if (cfg_.cmap)
        connect_cmap_at_start(now);
    if (cfg_.quorum)
        connect_quorum_at_start(now);
    reported_quorate_ = quorum_ && quorum_->quorate();
    Message m = linkwire::make(linkwire::Direction::FromLink, Type::Ready);
    m.flag = reported_quorate_ ? 1 : 0;
    send(m);
}

// The first link must create the keys or say why it cannot; a restarted one
// republishes them when it can.
void LinkLoop::connect_cmap_at_start(uint64_t now) {
    if (!cfg_.first) {
        cmap_ = CmapState::offline(cfg_.supervisor_pid, cfg_.recovery, cfg_.interval_ms);
        if (cmap_->reconnect() == CS_OK)
            log_line(LOG_INFO, "corosync link restarted; keys of %s republished", cmap_->prefix().c_str());
        else
            cmap_conn_.lost(now);
        return;
    }
    cs_error_t err = CS_OK;
    cmap_ = CmapState::create(cfg_.supervisor_pid, cfg_.recovery, cfg_.interval_ms, err);
    if (!cmap_) {
        Message m = linkwire::make(linkwire::Direction::FromLink, Type::Ready);
        m.error = err;
        send(m);
        ::_exit(0);
    }
}

void LinkLoop::connect_quorum_at_start(uint64_t now) {
    cs_error_t err = CS_OK;
    quorum_ = QuorumWatch::create(err);
    if (quorum_)
        return;
    log_line(LOG_WARNING, "cannot connect to the quorum service (error %d); treating the cluster as not quorate",
             static_cast<int>(err));
    quorum_ = QuorumWatch::offline();
    quorum_conn_.lost(now);
}

void LinkLoop::run() {
    refresh_schedule_.period_ns = refresh_period_ns(cfg_.interval_ms);
    connect_at_start(monotonic_ns());
    for (;;) {
        const Readable r = wait_for_work();
        const uint64_t now = monotonic_ns();
        if (r.requests)
            read_requests(now);
        if (r.quorum)
            on_quorum_readable(now);
        if (r.cmap)
            on_cmap_readable(now);
        reconnect_quorum_if_due(now);
        reconnect_cmap_if_due(now);
        expire_awaited_writes(now);
        refresh_due(now);
    }
}

LinkLoop::Readable LinkLoop::wait_for_work() {
    pollfd fds[3] = {{sock_, POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}};
    if (quorum_ && quorum_->connected())
        fds[1].fd = quorum_->fd();
    if (cmap_ && cmap_->connected())
        fds[2].fd = cmap_->fd();
    if (::poll(fds, 3, poll_timeout_ms(monotonic_ns())) < 0 && errno != EINTR) {
        log_line(LOG_ERR, "corosync link: poll failed: %s", std::strerror(errno));
        ::_exit(1);
    }
    Readable r;
    r.requests = fds[0].revents != 0;
    r.quorum = fds[1].fd >= 0 && fds[1].revents != 0;
    r.cmap = fds[2].fd >= 0 && fds[2].revents != 0;
    return r;
}

int LinkLoop::poll_timeout_ms(uint64_t now) const {
    uint64_t wake_at = 0;
    if (cmap_)
        wake_at = earlier_deadline(refresh_schedule_.next_ns, cmap_conn_.wake_at());
    if (quorum_)
        wake_at = earlier_deadline(wake_at, quorum_conn_.wake_at());
    for (const Waiting &w : waiting_)
        wake_at = earlier_deadline(wake_at, w.until);
    if (wake_at == 0)
        return -1;
    return wake_at <= now ? 0 : static_cast<int>(std::min<uint64_t>((wake_at - now) / 1000000ULL + 1, 60000));
}

void LinkLoop::read_requests(uint64_t now) {
    for (int handled = 0; handled < kMessagesPerWakeup; ++handled) {
        Received r = channel_receive(sock_, rx_, sizeof rx_);
        if (r.kind == Received::Kind::Nothing)
            return;
        // Closed or failed: the supervisor is gone (or going). Leave cmap as
        // it is, as corosync would see a supervisor that died.
        if (r.kind != Received::Kind::Message)
            ::_exit(0);
        const std::optional<Message> m =
            r.truncated ? std::nullopt : linkwire::decode(linkwire::Direction::ToLink, rx_, r.len, r.fd_count);
        if (!m) {
            log_line(LOG_ERR, "corosync link: malformed message from the supervisor; exiting");
            ::_exit(1);
        }
        on_request(*m, r.fd_count > 0 ? r.fds[0].get() : -1, now);
    }
}

void LinkLoop::on_request(const Message &m, int fd, uint64_t now) {
    switch (static_cast<Type>(m.type)) {
    case Type::Update:
        on_update(m, now);
        break;
    case Type::Watch:
        on_watch(fd); // decode() saw exactly one
        break;
    case Type::QuorumQuery:
        on_query(m, now);
        break;
    case Type::Finish:
        on_finish(m.flag != 0);
    default:
        break;
    }
}

void LinkLoop::on_update(const Message &m, uint64_t now) {
    healthy_ = m.flag != 0;
    if (m.life_ns > life_ns_)
        life_ns_ = m.life_ns;
    const auto s = static_cast<State>(m.state);
    if (s != State::None && (s != state_ || m.token != 0))
        write_state(s, m.token, m.deadline_ns, now);
}

void LinkLoop::on_watch(int fd) {
    page_ = HeartbeatPage::map_readonly(fd);
    if (!page_)
        log_line(LOG_WARNING, "corosync link: cannot map the heartbeat page: %s", std::strerror(errno));
}

void LinkLoop::on_query(const Message &m, uint64_t now) {
    Message a = linkwire::make(linkwire::Direction::FromLink, Type::QuorumAnswer);
    a.token = m.token;
    a.error = CS_ERR_LIBRARY;
    if (quorum_ && quorum_->connected()) {
        a.error = quorum_->check();
        if (a.error != CS_OK)
            quorum_lost(static_cast<cs_error_t>(a.error), now);
    }
    reported_quorate_ = a.error == CS_OK && quorum_->quorate();
    a.flag = reported_quorate_ ? 1 : 0;
    send(a);
}

void LinkLoop::on_finish(bool failed) {
    // From now on the supervisor may exit at any moment: its death must not
    // end the final write, but a corosync that does not answer must not keep
    // us forever.
    (void)::prctl(PR_SET_PDEATHSIG, 0);
    ::alarm(kFinishAlarmS);
    if (cmap_) {
        if (!cmap_->connected())
            (void)cmap_->reconnect(); // one last try, so the outcome is visible
        const cs_error_t err = failed ? cmap_->set_state(linkwire::state_name(State::Failed)) : cmap_->delete_keys();
        if (err != CS_OK)
            log_line(LOG_WARNING, "cannot %s in cmap (error %d)",
                     failed ? "record the failed state" : "delete the keys", static_cast<int>(err));
    }
    ::_exit(0);
}

void LinkLoop::write_state(State s, uint64_t token, uint64_t deadline, uint64_t now) {
    state_ = s;
    const cs_error_t err = cmap_ ? write_state_to_cmap(s, now) : CS_OK;
    if (token == 0)
        return;
    if (err != CS_OK) {
        // corosync is away (restarting, most likely): the caller waits a
        // while for the reconnect rather than failing now.
        log_line(LOG_WARNING, "cmap unavailable: state \"%s\" will be written when it is back",
                 linkwire::state_name(s));
        const uint64_t until = deadline > now + kAnswerMarginNs ? deadline - kAnswerMarginNs : now;
        waiting_.push_back(Waiting{token, err, until});
        return;
    }
    Message a = linkwire::make(linkwire::Direction::FromLink, Type::Written);
    a.token = token;
    send(a);
}

cs_error_t LinkLoop::write_state_to_cmap(State s, uint64_t now) {
    // A fresh last_updated goes first: the watchdog service checks it as
    // soon as a process is no longer "stopped".
    if (cmap_->connected() && s != State::Stopped)
        refresh(now, /* force= */ true);
    // Called even when that refresh has just found corosync gone:
    // set_state() remembers the state for the republish, and an awaited
    // write is answered as done once the reconnect has republished it.
    const cs_error_t err = cmap_->set_state(linkwire::state_name(s));
    if (!cmap_->connected())
        return CS_ERR_LIBRARY;
    if (err != CS_OK)
        cmap_lost(err, now);
    return err;
}

// The rule is last_updated_stamp()'s; this only feeds it and writes.
void LinkLoop::refresh(uint64_t now, bool force) {
    if (!cmap_ || !cmap_->connected())
        return;
    RefreshInput in;
    in.state = state_;
    in.healthy = healthy_;
    in.interval_ms = cfg_.interval_ms;
    in.life_ns = life_ns_;
    in.beat_ns = page_ ? page_->last_beat() : 0;
    in.published_ns = published_;
    in.now_ns = now;
    in.force = force;
    const std::optional<uint64_t> stamp = last_updated_stamp(in);
    if (!stamp)
        return;
    const cs_error_t err = cmap_->set_last_updated(*stamp);
    if (err != CS_OK)
        cmap_lost(err, now);
    else
        published_ = *stamp;
}

void LinkLoop::cmap_lost(cs_error_t err, uint64_t now) {
    if (!cmap_conn_.down())
        log_line(LOG_WARNING, "lost the cmap connection (error %d); reconnecting", static_cast<int>(err));
    cmap_->disconnect();
    cmap_conn_.lost(now);
}

void LinkLoop::quorum_lost(cs_error_t err, uint64_t now) {
    log_line(LOG_WARNING, "lost the quorum connection (error %d); treating the cluster as not quorate",
             static_cast<int>(err));
    quorum_->disconnect();
    quorum_conn_.lost(now);
}

void LinkLoop::report_quorum() {
    const bool q = quorum_ && quorum_->connected() && quorum_->quorate();
    if (q == reported_quorate_)
        return;
    reported_quorate_ = q;
    Message m = linkwire::make(linkwire::Direction::FromLink, Type::Quorum);
    m.flag = q ? 1 : 0;
    send(m);
}

void LinkLoop::on_quorum_readable(uint64_t now) {
    const cs_error_t err = quorum_->dispatch();
    if (err != CS_OK)
        quorum_lost(err, now);
    report_quorum();
}

void LinkLoop::on_cmap_readable(uint64_t now) {
    if (!cmap_->connected())
        return;
    const cs_error_t err = cmap_->dispatch();
    if (err != CS_OK)
        cmap_lost(err, now);
}

void LinkLoop::reconnect_quorum_if_due(uint64_t now) {
    if (!quorum_ || !quorum_conn_.retry_due(now))
        return;
    if (quorum_->reconnect() != CS_OK) {
        quorum_conn_.failed(now);
        return;
    }
    quorum_conn_.ok();
    log_line(LOG_INFO, "reconnected to the quorum service (%s)", quorum_->quorate() ? "quorate" : "not quorate");
    report_quorum();
}

void LinkLoop::reconnect_cmap_if_due(uint64_t now) {
    if (!cmap_ || !cmap_conn_.retry_due(now))
        return;
    if (cmap_->reconnect() != CS_OK) {
        cmap_conn_.failed(now);
        return;
    }
    cmap_conn_.ok();
    published_ = 0;
    log_line(LOG_INFO, "reconnected to cmap; keys of %s republished", cmap_->prefix().c_str());
    refresh(now, /* force= */ true);
    answer_awaited_writes();
}

// The reconnect republished the latest state asked for: every write still
// waiting is done.
void LinkLoop::answer_awaited_writes() {
    for (const Waiting &w : waiting_) {
        Message a = linkwire::make(linkwire::Direction::FromLink, Type::Written);
        a.token = w.token;
        send(a);
    }
    waiting_.clear();
}

void LinkLoop::expire_awaited_writes(uint64_t now) {
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (now < it->until) {
            ++it;
            continue;
        }
        Message a = linkwire::make(linkwire::Direction::FromLink, Type::Written);
        a.token = it->token;
        a.error = it->error;
        send(a);
        it = waiting_.erase(it);
    }
}

void LinkLoop::refresh_due(uint64_t now) {
    if (cmap_ && refresh_schedule_.due(now))
        refresh(now, /* force= */ false);
}

} // namespace sam
