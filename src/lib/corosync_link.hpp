// SPDX-License-Identifier: BSD-3-Clause
// corosync_link.hpp - the supervisor's handle on its link process.
//
// Every corosync connection lives in the link process (link_process.hpp),
// so that instances inherit nothing of corosync and a hung corosync cannot
// stall the supervisor. This object is the supervisor's side of it: it
// forks the link, sends it requests on a non-blocking socket, keeps the
// deadlines of the answers it waits for on its own timer, and restarts the
// link when it dies. Nothing here ever blocks on the link except finish(),
// which is bounded.
//
// The supervisor's loop watches event_fd() (an epoll descriptor over the
// socket and the timer) and calls take_events() when it is readable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <sys/types.h>

#include <corosync/corotypes.h>

#include "fd.hpp"
#include "health.hpp"
#include "link_wire.hpp"

namespace sam {

class CorosyncLink {
  public:
    // How long an awaited state write (sam_start, sam_stop) waits: long
    // enough for corosync to restart. The link answers with cmap's error a
    // little earlier if cmap is simply not there; no answer at all is
    // CS_ERR_TIMEOUT.
    static constexpr uint64_t kAwaitedWriteWaitNs = 5000ULL * 1000000ULL;
    // A quorum question unanswered this long: corosync counts as unavailable
    // (not quorate) until the link answers again.
    static constexpr uint64_t kQuorumAnswerWaitNs = 2000ULL * 1000000ULL;
    // With QUORUM, how often the link is asked (corosync's answer doubles as
    // proof that the link and corosync still respond).
    static constexpr uint64_t kQuorumPollNs = 1000ULL * 1000000ULL;
    // How long the supervisor's exit waits for the final write.
    static constexpr uint64_t kFinishWaitNs = 500ULL * 1000000ULL;

    struct Event {
        enum class Kind { Quorum, StateWritten, QuorumChecked } kind;
        bool quorate = false;
        cs_error_t error = CS_OK;
        uint64_t token = 0; // what publish_state() or check_quorum() returned
    };
    enum class Finish { DeleteKeys, MarkFailed };
    struct Config {
        long supervisor_pid = 0;
        bool cmap = false;
        bool quorum = false;
        bool quit = false;
        uint64_t interval_ms = 0;
    };

    // Forks the link and waits (at most kAwaitedWriteWaitNs) until it has
    // created the keys and connected. On failure returns nullptr with
    // `error`: cmap's error, CS_ERR_TIMEOUT, or CS_ERR_LIBRARY (no process).
    static std::unique_ptr<CorosyncLink> start(const Config &cfg, cs_error_t &error);
    // Closes descriptors only: never signals the link (this may be an
    // instance's copy). The supervisor calls finish() first.
    ~CorosyncLink();
    CorosyncLink(const CorosyncLink &) = delete;
    CorosyncLink &operator=(const CorosyncLink &) = delete;

    [[nodiscard]] int event_fd() const noexcept { return epoll_.get(); }
    [[nodiscard]] std::vector<Event> take_events();
    // The link's last word on quorum, false while it does not answer.
    [[nodiscard]] bool quorate() const noexcept { return responsive_ && link_quorate_; }

    // Asks for the state key to be written. When `awaited`, a StateWritten
    // event carrying the returned token reports the result: CS_OK, cmap's
    // error, or CS_ERR_TIMEOUT after kAwaitedWriteWaitNs. The state also
    // decides what last_updated follows: the instance's heartbeats while
    // running, the link's clock while waiting for quorum.
    uint64_t publish_state(linkwire::State state, bool awaited);
    // Asks corosync, through the link, whether the cluster is quorate now
    // (after every queued notification). A QuorumChecked event with the
    // returned token answers; not quorate if no answer within
    // kQuorumAnswerWaitNs.
    uint64_t check_quorum();
    // The instance's page and the time of its last message, for last_updated.
    void watch_instance(std::shared_ptr<HeartbeatPage> page);
    void note_life(uint64_t at_ns) noexcept;
    void set_healthy(bool healthy) noexcept;

    // The final write (state "failed", or the keys deleted), waiting for it
    // at most kFinishWaitNs; the link finishes it on its own after that.
    // With `reap`, the link is also gone when this returns (SIGKILL after the
    // wait): for a sam_register() that fails and returns to the application.
    void finish(Finish how, bool reap = false);
    // In a new instance: close our descriptors, forget the link.
    void close_in_instance() noexcept;
    // Where our log lines go: the supervisor's own queue, which never blocks
    // its loop (without one, the library's plain log_line()).
    void set_logger(std::function<void(int priority, const char *line)> logger) { logger_ = std::move(logger); }

  private:
    explicit CorosyncLink(const Config &cfg) : cfg_(cfg) {}
    void note(int priority, const char *format, ...) noexcept __attribute__((format(printf, 3, 4)));
    bool spawn(bool first);
    bool wait_ready(uint64_t until, cs_error_t &error);
    void link_gone(uint64_t now);
    void reap_old() noexcept;
    void on_message(const linkwire::Message &m, std::vector<Event> &out);
    void on_deadlines(uint64_t now, std::vector<Event> &out);
    void set_responsive(bool responsive, std::vector<Event> &out);
    void report_quorum(std::vector<Event> &out);
    uint64_t ask(bool for_supervisor, uint64_t now);
    void flush();
    void watch_output(bool on) noexcept;
    void arm_timer();

    const Config cfg_;
    std::function<void(int, const char *)> logger_;
    UniqueFd epoll_, timer_, sock_;
    pid_t pid_ = -1;
    std::vector<pid_t> unreaped_; // links that died and are not reaped yet
    uint64_t next_token_ = 0;

    // What the link should show; sent when it changes, and again to a
    // restarted link.
    linkwire::State state_ = linkwire::State::None;
    bool healthy_ = false;
    uint64_t life_ns_ = 0, life_sent_ns_ = 0;
    bool update_pending_ = false;         // the link has not got the latest yet
    uint64_t write_token_ = 0;            // the pending update asks for a write answered with this
    std::shared_ptr<HeartbeatPage> page_; // the instance's, passed to every link
    bool watch_pending_ = false;
    bool output_watched_ = false;

    struct Pending {
        uint64_t token;
        uint64_t deadline;
        bool for_supervisor; // an answer the supervisor waits for (else our own poll)
    };
    std::vector<Pending> writes_, queries_;
    uint64_t next_poll_at_ = 0;

    bool link_quorate_ = false;     // the link's last word
    bool responsive_ = true;        // no answer overdue
    bool reported_quorate_ = false; // what the supervisor last heard through events

    uint64_t restart_at_ = 0;
    uint64_t restart_step_ = 0;
    uint64_t spawned_at_ = 0;
    unsigned char rx_[sizeof(linkwire::Message) + 16];
};

} // namespace sam
