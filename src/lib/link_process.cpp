// link_process.cpp - the link process: one poll loop over the supervisor's
// socket and the cmap and quorum connections.
#include "link_process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "channel.hpp"
#include "cmap_state.hpp"
#include "health.hpp"
#include "link_wire.hpp"
#include "log.hpp"
#include "quorum_watch.hpp"

namespace sam {

namespace {

using linkwire::Message;
using linkwire::State;
using linkwire::Type;

constexpr uint64_t kReconnectFirstNs = 100ULL * 1000000ULL;   // first retry after 100 ms,
constexpr uint64_t kReconnectMaxNs = 2000ULL * 1000000ULL;    // doubling up to 2 s
constexpr uint64_t kMinRefreshNs = 10ULL * 1000000ULL;        // never refresh more often than this
constexpr uint64_t kLivenessRefreshNs = 1000ULL * 1000000ULL; // interval 0: refresh once a second
// An awaited write that cmap cannot take is answered with cmap's error this
// long before the supervisor stops waiting, so the caller hears the real
// error rather than a time-out.
constexpr uint64_t kAnswerMarginNs = 50ULL * 1000000ULL;
// The final write after the supervisor has gone may block on a stopped
// corosync: SIGALRM ends the link after this many seconds.
constexpr unsigned kFinishAlarmS = 3;
constexpr int kMessagesPerWakeup = 64;

// Reconnect schedule: 0 = connected, else the time of the next attempt.
struct Retry {
    uint64_t at = 0;
    uint64_t step = kReconnectFirstNs;
    void lost(uint64_t now) {
        if (at == 0) {
            step = kReconnectFirstNs;
            at = now + step;
        }
    }
    void failed(uint64_t now) {
        step = std::min(step * 2, kReconnectMaxNs);
        at = now + step;
    }
    void ok() { at = 0; }
};

pid_t g_supervisor_pid = 0;

// PR_SET_PDEATHSIG's signal (SIGHUP may also come from a terminal: only
// the supervisor's death counts).
void on_parent_death(int) {
    if (::getppid() != g_supervisor_pid)
        ::alarm(kFinishAlarmS);
}

// Everything else the process inherited is the application's or the
// supervisor's (instance channels, listening sockets, pipes): holding it
// would keep it open behind their back.
void close_other_descriptors(int keep) noexcept {
#ifdef SYS_close_range
    const bool low_ok = keep <= 3 || ::syscall(SYS_close_range, 3U, static_cast<unsigned>(keep - 1), 0U) == 0;
    if (low_ok && ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0U, 0U) == 0)
        return;
#endif
    DIR *d = ::opendir("/proc/self/fd");
    if (d == nullptr)
        return;
    std::vector<int> fds;
    while (dirent *e = ::readdir(d)) {
        const int fd = std::atoi(e->d_name);
        if (e->d_name[0] != '.' && fd > 2 && fd != keep && fd != ::dirfd(d))
            fds.push_back(fd);
    }
    ::closedir(d);
    for (int fd : fds)
        ::close(fd);
}

class LinkProcess {
  public:
    LinkProcess(int sock, const LinkConfig &cfg) : sock_(sock), cfg_(cfg) {}
    [[noreturn]] void run();

  private:
    void connect_at_start(uint64_t now);
    void send(const Message &m);
    int poll_timeout_ms(uint64_t now) const;

    // Steps of one wake-up, in order.
    void read_requests(uint64_t now);
    void on_quorum_readable(uint64_t now);
    void on_cmap_readable(uint64_t now);
    void reconnect_due(uint64_t now);
    void answer_late_writes(uint64_t now);
    void refresh_due(uint64_t now);

    // Requests.
    void on_update(const Message &m, uint64_t now);
    void on_watch(int fd);
    void on_query(const Message &m, uint64_t now);
    [[noreturn]] void on_finish(bool failed);

    void write_state(State s, uint64_t token, uint64_t deadline, uint64_t now);
    void refresh(uint64_t now, bool force);
    void cmap_lost(cs_error_t err, uint64_t now);
    void quorum_lost(cs_error_t err, uint64_t now);
    void report_quorum();

    const int sock_;
    const LinkConfig cfg_;
    std::unique_ptr<CmapState> cmap_;
    std::shared_ptr<QuorumWatch> quorum_;
    Retry cmap_retry_, quorum_retry_;
    bool reported_quorate_ = false; // what the supervisor last heard from us

    State state_ = State::None; // what we last asked cmap to show
    bool healthy_ = false;
    uint64_t life_ns_ = 0;
    std::optional<HeartbeatPage> page_;
    uint64_t published_ = 0; // last last_updated written
    uint64_t refresh_ns_ = 0;
    uint64_t next_refresh_ = 0;

    // Awaited writes that failed for want of cmap: answered when the
    // reconnect has republished the state, or with their error at `until`.
    struct Waiting {
        uint64_t token;
        cs_error_t error;
        uint64_t until;
    };
    std::vector<Waiting> waiting_;
    unsigned char rx_[sizeof(Message) + 16];
};

void LinkProcess::send(const Message &m) {
    // Blocking: the supervisor reads whenever it can. It only fails when
    // the supervisor is gone, and then so are we.
    if (linkwire::send_message(sock_, m, -1, /* dont_wait= */ false) != 0)
        ::_exit(0);
}

void LinkProcess::connect_at_start(uint64_t now) {
    if (cfg_.cmap) {
        if (cfg_.first) {
            cs_error_t err = CS_OK;
            cmap_ = CmapState::create(cfg_.supervisor_pid, cfg_.recovery, cfg_.interval_ms, err);
            if (!cmap_) {
                Message m = linkwire::make(linkwire::Direction::FromLink, Type::Ready);
                m.error = err;
                send(m);
                ::_exit(0);
            }
        } else {
            cmap_ = CmapState::offline(cfg_.supervisor_pid, cfg_.recovery, cfg_.interval_ms);
            if (cmap_->reconnect() == CS_OK)
                log_line(LOG_INFO, "corosync link restarted; keys of %s republished", cmap_->prefix().c_str());
            else
                cmap_retry_.lost(now);
        }
    }
    if (cfg_.quorum) {
        cs_error_t err = CS_OK;
        quorum_ = QuorumWatch::create(err);
        if (!quorum_) {
            log_line(LOG_WARNING,
                     "cannot connect to the quorum service (error %d); treating the cluster as not quorate",
                     static_cast<int>(err));
            quorum_ = QuorumWatch::offline();
            quorum_retry_.lost(now);
        }
    }
    reported_quorate_ = quorum_ && quorum_->quorate();
    Message m = linkwire::make(linkwire::Direction::FromLink, Type::Ready);
    m.flag = reported_quorate_ ? 1 : 0;
    send(m);
}

void LinkProcess::run() {
    // With no interval only death is watched: a live instance is healthy, and
    // last_updated still has to stay fresh for the watchdog service, whose own
    // default period then applies.
    refresh_ns_ = cfg_.interval_ms == 0 ? kLivenessRefreshNs : std::max(ms_to_ns(cfg_.interval_ms) / 4, kMinRefreshNs);
    connect_at_start(monotonic_ns());
    for (;;) {
        uint64_t now = monotonic_ns();
        pollfd fds[3] = {{sock_, POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}};
        if (quorum_ && quorum_->connected())
            fds[1].fd = quorum_->fd();
        if (cmap_ && cmap_->connected())
            fds[2].fd = cmap_->fd();
        const int n = ::poll(fds, 3, poll_timeout_ms(now));
        if (n < 0 && errno != EINTR) {
            log_line(LOG_ERR, "corosync link: poll failed: %s", std::strerror(errno));
            ::_exit(1);
        }
        now = monotonic_ns();
        if (fds[0].revents != 0)
            read_requests(now);
        if (fds[1].fd >= 0 && fds[1].revents != 0)
            on_quorum_readable(now);
        if (fds[2].fd >= 0 && fds[2].revents != 0)
            on_cmap_readable(now);
        reconnect_due(now);
        answer_late_writes(now);
        refresh_due(now);
    }
}

int LinkProcess::poll_timeout_ms(uint64_t now) const {
    uint64_t wake_at = 0;
    auto earliest = [&wake_at](uint64_t t) {
        if (t != 0 && (wake_at == 0 || t < wake_at))
            wake_at = t;
    };
    if (cmap_) {
        earliest(next_refresh_);
        earliest(cmap_retry_.at);
    }
    if (quorum_)
        earliest(quorum_retry_.at);
    for (const Waiting &w : waiting_)
        earliest(w.until);
    if (wake_at == 0)
        return -1;
    return wake_at <= now ? 0 : static_cast<int>(std::min<uint64_t>((wake_at - now) / 1000000ULL + 1, 60000));
}

void LinkProcess::read_requests(uint64_t now) {
    for (int handled = 0; handled < kMessagesPerWakeup; ++handled) {
        Received r = channel_receive(sock_, rx_, sizeof rx_);
        switch (r.kind) {
        case Received::Kind::Nothing:
            return;
        case Received::Kind::Closed:
        case Received::Kind::Error:
            // The supervisor is gone (or going): leave cmap as it is, as
            // corosync would see a supervisor that died.
            ::_exit(0);
        case Received::Kind::Message:
            break;
        }
        const std::optional<Message> m =
            r.truncated ? std::nullopt : linkwire::decode(linkwire::Direction::ToLink, rx_, r.len, r.fd_count);
        if (!m) {
            log_line(LOG_ERR, "corosync link: malformed message from the supervisor; exiting");
            ::_exit(1);
        }
        switch (static_cast<Type>(m->type)) {
        case Type::Update:
            on_update(*m, now);
            break;
        case Type::Watch:
            on_watch(r.fd.get());
            break;
        case Type::QuorumQuery:
            on_query(*m, now);
            break;
        case Type::Finish:
            on_finish(m->flag != 0);
        default:
            break;
        }
    }
}

void LinkProcess::on_update(const Message &m, uint64_t now) {
    healthy_ = m.flag != 0;
    if (m.life_ns > life_ns_)
        life_ns_ = m.life_ns;
    const auto s = static_cast<State>(m.state);
    if (s != State::None && (s != state_ || m.token != 0))
        write_state(s, m.token, m.deadline_ns, now);
}

void LinkProcess::on_watch(int fd) {
    page_ = HeartbeatPage::map_readonly(fd);
    if (!page_)
        log_line(LOG_WARNING, "corosync link: cannot map the heartbeat page: %s", std::strerror(errno));
}

void LinkProcess::on_query(const Message &m, uint64_t now) {
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

void LinkProcess::on_finish(bool failed) {
    // From now on the supervisor may exit at any moment: its death must not
    // end the final write, but a corosync that does not answer must not keep
    // us forever.
    (void)::prctl(PR_SET_PDEATHSIG, 0);
    ::alarm(kFinishAlarmS);
    if (cmap_) {
        if (!cmap_->connected())
            (void)cmap_->reconnect(); // one last try, so the outcome is visible
        const cs_error_t err = failed ? cmap_->set_state("failed") : cmap_->delete_keys();
        if (err != CS_OK)
            log_line(LOG_WARNING, "cannot %s in cmap (error %d)",
                     failed ? "record the failed state" : "delete the keys", static_cast<int>(err));
    }
    ::_exit(0);
}

void LinkProcess::write_state(State s, uint64_t token, uint64_t deadline, uint64_t now) {
    state_ = s;
    const char *name = linkwire::state_name(s);
    cs_error_t err = CS_OK;
    if (cmap_) {
        if (!cmap_->connected()) {
            err = CS_ERR_LIBRARY;
            (void)cmap_->set_state(name); // remembered for the republish
        } else {
            // A fresh last_updated goes first: the watchdog service checks it
            // as soon as a process is no longer "stopped".
            if (s != State::Stopped)
                refresh(now, true);
            if (cmap_->connected()) {
                err = cmap_->set_state(name);
                if (err != CS_OK)
                    cmap_lost(err, now);
            } else {
                err = CS_ERR_LIBRARY;
            }
        }
    }
    if (token == 0)
        return;
    if (err != CS_OK && cmap_) {
        // corosync is away (restarting, most likely): the caller waits a
        // while for the reconnect rather than failing now.
        log_line(LOG_WARNING, "cmap unavailable: state \"%s\" will be written when it is back", name);
        const uint64_t until = deadline > now + kAnswerMarginNs ? deadline - kAnswerMarginNs : now;
        waiting_.push_back(Waiting{token, err, until});
        return;
    }
    Message a = linkwire::make(linkwire::Direction::FromLink, Type::Written);
    a.token = token;
    a.error = err;
    send(a);
}

// last_updated follows the instance's heartbeats while it runs, and the
// supervisor's clock while it waits for quorum; otherwise it stays.
void LinkProcess::refresh(uint64_t now, bool force) {
    if (!cmap_ || !cmap_->connected())
        return;
    uint64_t value = 0;
    if (state_ == State::Running && healthy_ && cfg_.interval_ms == 0) {
        value = now;
    } else if (state_ == State::Running && healthy_) {
        value = life_ns_;
        const uint64_t beat = page_ ? page_->last_beat() : 0;
        if (beat > value && beat <= now)
            value = beat;
    } else if (state_ == State::WaitingForQuorum || (force && state_ == State::Running)) {
        value = now;
    }
    if (value == 0 || (value <= published_ && !force))
        return;
    if (force && value < published_)
        value = now;
    const cs_error_t err = cmap_->set_last_updated(value);
    if (err != CS_OK)
        cmap_lost(err, now);
    else
        published_ = value;
}

void LinkProcess::cmap_lost(cs_error_t err, uint64_t now) {
    if (cmap_retry_.at == 0)
        log_line(LOG_WARNING, "lost the cmap connection (error %d); reconnecting", static_cast<int>(err));
    cmap_->disconnect();
    cmap_retry_.lost(now);
}

void LinkProcess::quorum_lost(cs_error_t err, uint64_t now) {
    log_line(LOG_WARNING, "lost the quorum connection (error %d); treating the cluster as not quorate",
             static_cast<int>(err));
    quorum_->disconnect();
    quorum_retry_.lost(now);
}

void LinkProcess::report_quorum() {
    const bool q = quorum_ && quorum_->connected() && quorum_->quorate();
    if (q == reported_quorate_)
        return;
    reported_quorate_ = q;
    Message m = linkwire::make(linkwire::Direction::FromLink, Type::Quorum);
    m.flag = q ? 1 : 0;
    send(m);
}

void LinkProcess::on_quorum_readable(uint64_t now) {
    const cs_error_t err = quorum_->dispatch();
    if (err != CS_OK)
        quorum_lost(err, now);
    report_quorum();
}

void LinkProcess::on_cmap_readable(uint64_t now) {
    if (!cmap_->connected())
        return;
    const cs_error_t err = cmap_->dispatch();
    if (err != CS_OK)
        cmap_lost(err, now);
}

void LinkProcess::reconnect_due(uint64_t now) {
    if (quorum_ && quorum_retry_.at != 0 && now >= quorum_retry_.at) {
        if (quorum_->reconnect() == CS_OK) {
            quorum_retry_.ok();
            log_line(LOG_INFO, "reconnected to the quorum service (%s)",
                     quorum_->quorate() ? "quorate" : "not quorate");
            report_quorum();
        } else {
            quorum_retry_.failed(now);
        }
    }
    if (cmap_ && cmap_retry_.at != 0 && now >= cmap_retry_.at) {
        if (cmap_->reconnect() == CS_OK) {
            cmap_retry_.ok();
            published_ = 0;
            log_line(LOG_INFO, "reconnected to cmap; keys of %s republished", cmap_->prefix().c_str());
            refresh(now, true);
            // The republished state is the latest one asked for.
            for (const Waiting &w : waiting_) {
                Message a = linkwire::make(linkwire::Direction::FromLink, Type::Written);
                a.token = w.token;
                send(a);
            }
            waiting_.clear();
        } else {
            cmap_retry_.failed(now);
        }
    }
}

void LinkProcess::answer_late_writes(uint64_t now) {
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

void LinkProcess::refresh_due(uint64_t now) {
    if (!cmap_)
        return;
    if (next_refresh_ == 0) {
        next_refresh_ = now + refresh_ns_;
        return;
    }
    if (now < next_refresh_)
        return;
    refresh(now, false);
    next_refresh_ = now + refresh_ns_;
}

} // namespace

void run_link_process(int sock, const LinkConfig &cfg) noexcept {
    // Stop signals meant for the supervised program (a terminal's ^C goes to
    // the whole process group) are the supervisor's business: the link
    // stays until it is told to finish. SIGALRM bounds the final write.
    for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE})
        (void)::signal(sig, SIG_IGN);
    for (int sig : {SIGALRM, SIGCHLD})
        (void)::signal(sig, SIG_DFL);
    // Dies with the supervisor, which forked us from the thread it runs on
    // (that thread lives as long as the supervisor does): SIGHUP when it
    // dies, and then at most kFinishAlarmS more seconds, time enough to read
    // a Finish the supervisor sent before exiting while we were blocked on
    // corosync. The socket's hang-up ends us at once otherwise.
    g_supervisor_pid = static_cast<pid_t>(cfg.supervisor_pid);
    struct sigaction hup {};
    hup.sa_handler = on_parent_death;
    hup.sa_flags = SA_RESTART;
    sigemptyset(&hup.sa_mask);
    (void)::sigaction(SIGHUP, &hup, nullptr);
    (void)::prctl(PR_SET_PDEATHSIG, SIGHUP);
    if (::getppid() != g_supervisor_pid)
        ::_exit(0);
    (void)::prctl(PR_SET_NAME, "sam-link");
    sigset_t none;
    sigemptyset(&none);
    (void)::sigprocmask(SIG_SETMASK, &none, nullptr);

    // syslog's descriptor is closed below: forget it first, or a later
    // syslog() would write into whatever socket reuses its number.
    ::closelog();
    if (sock <= 2) {
        const int moved = ::fcntl(sock, F_DUPFD_CLOEXEC, 3);
        if (moved < 0)
            ::_exit(1);
        sock = moved;
    }
    close_other_descriptors(sock);
    try {
        LinkProcess(sock, cfg).run();
    } catch (...) {
        log_line(LOG_ERR, "corosync link: out of memory");
    }
    ::_exit(1);
}

} // namespace sam
