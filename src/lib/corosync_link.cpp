// corosync_link.cpp - cmap writes, quorum dispatch and reconnects, off the
// supervisor's timing path.
#include "corosync_link.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <poll.h>
#include <sys/eventfd.h>

#include "cmap_state.hpp"
#include "log.hpp"
#include "quorum_watch.hpp"

namespace sam {

namespace {

constexpr uint64_t kReconnectFirstNs = 100ULL * 1000000ULL;   // first retry after 100 ms,
constexpr uint64_t kReconnectMaxNs = 2000ULL * 1000000ULL;    // doubling up to 2 s
constexpr uint64_t kMinRefreshNs = 10ULL * 1000000ULL;        // never refresh more often than this
constexpr uint64_t kLivenessRefreshNs = 1000ULL * 1000000ULL; // interval 0: refresh once a second

void bump(int fd) noexcept {
    const uint64_t one = 1;
    (void)::write(fd, &one, sizeof one);
}

void drain(int fd) noexcept {
    uint64_t count;
    (void)::read(fd, &count, sizeof count);
}

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

} // namespace

std::unique_ptr<CorosyncLink> CorosyncLink::start(std::unique_ptr<CmapState> cmap, std::shared_ptr<QuorumWatch> quorum,
                                                  uint64_t interval_ms) {
    std::unique_ptr<CorosyncLink> link(new CorosyncLink());
    link->cmap_ = std::move(cmap);
    link->quorum_ = std::move(quorum);
    link->interval_ms_ = interval_ms;
    link->quorate_.store(link->quorum_ && link->quorum_->quorate());
    link->events_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    link->wakeup_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!link->events_fd_ || !link->wakeup_fd_)
        return nullptr;
    // Created by the supervisor thread after it blocked the forwarded
    // signals, so this thread inherits the mask and never takes them.
    //
    // Its stack: corosync's dispatch functions keep a 1 MiB buffer on the
    // stack, so 4 MiB is ample; and being smaller than the 8 MiB default, the
    // stack this thread leaves behind in a forked instance is never handed by
    // glibc's stack cache (with this thread's id) to a default-sized thread
    // the instance starts, which ThreadSanitizer reports as a duplicate thread.
    pthread_attr_t attr;
    int err = ::pthread_attr_init(&attr);
    if (err == 0) {
        err = ::pthread_attr_setstacksize(&attr, kThreadStackSize);
        if (err == 0)
            err = ::pthread_create(&link->thread_, &attr, &CorosyncLink::thread_main, link.get());
        (void)::pthread_attr_destroy(&attr);
    }
    if (err != 0) {
        errno = err;
        return nullptr;
    }
    link->running_ = true;
    return link;
}

void *CorosyncLink::thread_main(void *self) {
    static_cast<CorosyncLink *>(self)->run();
    return nullptr;
}

CorosyncLink::~CorosyncLink() {
    if (running_)
        finish(Finish::DeleteKeys);
}

std::vector<CorosyncLink::Event> CorosyncLink::take_events() {
    std::lock_guard<std::mutex> g(m_);
    std::vector<Event> out;
    out.swap(events_);
    return out;
}

void CorosyncLink::post(Event e) {
    {
        std::lock_guard<std::mutex> g(m_);
        events_.push_back(e);
    }
    bump(events_fd_.get());
}

uint64_t CorosyncLink::publish_state(const char *state, bool awaited) {
    uint64_t token;
    {
        std::lock_guard<std::mutex> g(m_);
        token = ++next_token_;
        commands_.push_back(Command{Command::Kind::State, state, awaited, Finish::DeleteKeys, token});
    }
    bump(wakeup_fd_.get());
    return token;
}

void CorosyncLink::watch_instance(std::shared_ptr<HeartbeatPage> page) {
    std::lock_guard<std::mutex> g(m_);
    page_ = std::move(page);
}

void CorosyncLink::finish(Finish how) {
    if (!running_)
        return;
    {
        std::lock_guard<std::mutex> g(m_);
        commands_.push_back(Command{Command::Kind::Finish, nullptr, false, how, 0});
    }
    bump(wakeup_fd_.get());
    (void)::pthread_join(thread_, nullptr);
    running_ = false;
}

void CorosyncLink::abandon_in_child() noexcept {
    running_ = false; // the thread exists only in the supervisor
    if (cmap_)
        cmap_->abandon();
    if (quorum_)
        quorum_->abandon();
    events_fd_.reset();
    wakeup_fd_.reset();
}

void CorosyncLink::run() {
    Retry cmap_retry, quorum_retry;
    // With no interval only death is watched: a live instance is healthy, and
    // last_updated still has to stay fresh for the watchdog service, whose own
    // default period then applies.
    const uint64_t refresh_ns =
        interval_ms_ == 0 ? kLivenessRefreshNs : std::max(ms_to_ns(interval_ms_) / 4, kMinRefreshNs);
    uint64_t published = 0; // last last_updated written
    uint64_t next_refresh = 0;

    auto cmap_lost = [&](cs_error_t err, uint64_t now) {
        if (cmap_retry.at == 0)
            log_line(LOG_WARNING, "lost the cmap connection (error %d); reconnecting", static_cast<int>(err));
        cmap_->disconnect();
        cmap_retry.lost(now);
    };
    auto set_quorate = [&](bool q) {
        if (quorate_.exchange(q) != q)
            post(Event{Event::Kind::Quorum, q, CS_OK, 0});
    };
    // last_updated follows the instance's heartbeats while it runs, and the
    // supervisor's clock while it waits for quorum; otherwise it stays.
    auto refresh = [&](uint64_t now, bool force) {
        if (!cmap_ || !cmap_->connected())
            return;
        uint64_t value = 0;
        if (state_ == "running" && healthy_.load() && interval_ms_ == 0) {
            value = now;
        } else if (state_ == "running" && healthy_.load()) {
            std::shared_ptr<HeartbeatPage> page;
            {
                std::lock_guard<std::mutex> g(m_);
                page = page_;
            }
            value = life_ns_.load(std::memory_order_relaxed);
            const uint64_t beat = page ? page->last_beat() : 0;
            if (beat > value && beat <= now)
                value = beat;
        } else if (state_ == "waiting for quorum" || (force && state_ == "running")) {
            value = now;
        }
        if (value == 0 || (value <= published && !force))
            return;
        if (force && value < published)
            value = now;
        const cs_error_t err = cmap_->set_last_updated(value);
        if (err != CS_OK)
            cmap_lost(err, now);
        else
            published = value;
    };

    for (;;) {
        uint64_t now = monotonic_ns();
        uint64_t wake_at = 0;
        auto earliest = [&wake_at](uint64_t t) {
            if (t != 0 && (wake_at == 0 || t < wake_at))
                wake_at = t;
        };
        if (cmap_) {
            if (next_refresh == 0)
                next_refresh = now + refresh_ns;
            earliest(next_refresh);
        }
        if (cmap_)
            earliest(cmap_retry.at);
        if (quorum_)
            earliest(quorum_retry.at);
        for (const Waiting &w : waiting_)
            earliest(w.until);

        pollfd fds[3] = {{wakeup_fd_.get(), POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}};
        if (quorum_ && quorum_->connected())
            fds[1].fd = quorum_->fd();
        if (cmap_ && cmap_->connected())
            fds[2].fd = cmap_->fd();
        int timeout_ms = -1;
        if (wake_at != 0)
            timeout_ms =
                wake_at <= now ? 0 : static_cast<int>(std::min<uint64_t>((wake_at - now) / 1000000ULL + 1, 60000));
        const int n = ::poll(fds, 3, timeout_ms);
        if (n < 0 && errno != EINTR) {
            log_line(LOG_ERR, "corosync link: poll failed: %s", std::strerror(errno));
            return;
        }
        now = monotonic_ns();

        if (fds[0].revents != 0) {
            drain(wakeup_fd_.get());
            {
                std::lock_guard<std::mutex> g(m_);
                batch_.swap(commands_);
            }
            for (const Command &c : batch_) {
                if (c.kind == Command::Kind::Finish) {
                    if (cmap_) {
                        if (!cmap_->connected())
                            (void)cmap_->reconnect(); // one last try, so the outcome is visible
                        const cs_error_t err =
                            c.finish == Finish::MarkFailed ? cmap_->set_state("failed") : cmap_->delete_keys();
                        if (err != CS_OK)
                            log_line(LOG_WARNING, "cannot %s in cmap (error %d)",
                                     c.finish == Finish::MarkFailed ? "record the failed state" : "delete the keys",
                                     static_cast<int>(err));
                    }
                    return;
                }
                state_ = c.state;
                cs_error_t err = CS_OK;
                if (cmap_) {
                    if (!cmap_->connected()) {
                        err = CS_ERR_LIBRARY;
                        (void)cmap_->set_state(c.state); // remembered for the republish
                    } else {
                        // A fresh last_updated goes first: the watchdog service
                        // checks it as soon as a process is no longer "stopped".
                        if (state_ != "stopped")
                            refresh(now, true);
                        if (cmap_->connected()) {
                            err = cmap_->set_state(c.state);
                            if (err != CS_OK)
                                cmap_lost(err, now);
                        } else {
                            err = CS_ERR_LIBRARY;
                        }
                    }
                }
                if (c.awaited && err != CS_OK && cmap_) {
                    // corosync is away (restarting, most likely): the caller
                    // waits a while for the reconnect rather than failing now.
                    log_line(LOG_WARNING, "cmap unavailable: state \"%s\" will be written when it is back", c.state);
                    waiting_.push_back(Waiting{c.token, err, now + kAwaitedWriteWaitNs});
                } else if (c.awaited) {
                    post(Event{Event::Kind::StateWritten, false, err, c.token});
                }
            }
            batch_.clear();
        }

        if (fds[1].fd >= 0 && fds[1].revents != 0) {
            const cs_error_t err = quorum_->dispatch();
            if (err != CS_OK) {
                log_line(LOG_WARNING, "lost the quorum connection (error %d); treating the cluster as not quorate",
                         static_cast<int>(err));
                quorum_->disconnect();
                quorum_retry.lost(now);
                set_quorate(false);
            } else {
                set_quorate(quorum_->quorate());
            }
        }

        if (fds[2].fd >= 0 && fds[2].revents != 0 && cmap_->connected()) {
            const cs_error_t err = cmap_->dispatch();
            if (err != CS_OK)
                cmap_lost(err, now);
        }

        if (quorum_ && quorum_retry.at != 0 && now >= quorum_retry.at) {
            if (quorum_->reconnect() == CS_OK) {
                quorum_retry.ok();
                log_line(LOG_INFO, "reconnected to the quorum service (%s)",
                         quorum_->quorate() ? "quorate" : "not quorate");
                set_quorate(quorum_->quorate());
            } else {
                quorum_retry.failed(now);
            }
        }
        if (cmap_ && cmap_retry.at != 0 && now >= cmap_retry.at) {
            if (cmap_->reconnect() == CS_OK) {
                cmap_retry.ok();
                published = 0;
                log_line(LOG_INFO, "reconnected to cmap; keys of %s republished", cmap_->prefix().c_str());
                refresh(now, true);
                // The republished state is the latest one asked for.
                for (const Waiting &w : waiting_)
                    post(Event{Event::Kind::StateWritten, false, CS_OK, w.token});
                waiting_.clear();
            } else {
                cmap_retry.failed(now);
            }
        }
        for (auto it = waiting_.begin(); it != waiting_.end();) {
            if (now < it->until) {
                ++it;
                continue;
            }
            post(Event{Event::Kind::StateWritten, false, it->error, it->token});
            it = waiting_.erase(it);
        }
        if (next_refresh != 0 && now >= next_refresh) {
            refresh(now, false);
            next_refresh = now + refresh_ns;
        }
    }
}

} // namespace sam
