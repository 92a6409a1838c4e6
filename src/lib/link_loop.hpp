// SPDX-License-Identifier: BSD-3-Clause
// link_loop.hpp - the link process's one loop (see link_process.hpp).
//
// A poll loop over the supervisor's socket and the cmap and quorum
// connections, read as a list of named steps per wake-up: requests from the
// supervisor, quorum notifications, cmap's descriptor, reconnects that are
// due, awaited writes whose time is up, the last_updated refresh.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <corosync/corotypes.h>

#include "cmap_state.hpp"
#include "health.hpp"
#include "link_process.hpp"
#include "link_refresh.hpp"
#include "link_wire.hpp"
#include "quorum_watch.hpp"

namespace sam {

class LinkLoop {
  public:
    // The final write after the supervisor has gone may block on a stopped
    // corosync: SIGALRM ends the link after this many seconds.
    static constexpr unsigned kFinishAlarmS = 3;

    LinkLoop(int sock, const LinkConfig &cfg) : sock_(sock), cfg_(cfg) {}
    LinkLoop(const LinkLoop &) = delete;
    LinkLoop &operator=(const LinkLoop &) = delete;
    // Connects, reports Ready, then serves until the supervisor goes away or
    // asks to finish: never returns.
    [[noreturn]] void run();

  private:
    // A corosync connection's state as the loop sees it, and while it is
    // down, when to try again.
    struct Connection {
        enum class State { Up, Down };
        static constexpr uint64_t kFirstNs = 100ULL * 1000000ULL; // first retry after 100 ms,
        static constexpr uint64_t kMaxNs = 2000ULL * 1000000ULL;  // doubling up to 2 s
        State state = State::Up;
        uint64_t retry_at = 0; // while Down
        uint64_t step = kFirstNs;

        [[nodiscard]] bool down() const { return state == State::Down; }
        [[nodiscard]] bool retry_due(uint64_t now) const { return down() && now >= retry_at; }
        // When the loop must wake up for it; 0: never.
        [[nodiscard]] uint64_t wake_at() const { return down() ? retry_at : 0; }
        void lost(uint64_t now) {
            if (down())
                return;
            state = State::Down;
            step = kFirstNs;
            retry_at = now + step;
        }
        void failed(uint64_t now) {
            step = step * 2 < kMaxNs ? step * 2 : kMaxNs;
            retry_at = now + step;
        }
        void ok() {
            state = State::Up;
            retry_at = 0;
        }
    };

    // What one poll reported readable.
    struct Readable {
        bool requests = false;
        bool quorum = false;
        bool cmap = false;
    };

    void connect_at_start(uint64_t now);
    void connect_cmap_at_start(uint64_t now);
    void connect_quorum_at_start(uint64_t now);
    void send(const linkwire::Message &m);
    int poll_timeout_ms(uint64_t now) const;

    // Steps of one wake-up, in order.
    Readable wait_for_work();
    void read_requests(uint64_t now);
    void on_quorum_readable(uint64_t now);
    void on_cmap_readable(uint64_t now);
    void reconnect_quorum_if_due(uint64_t now);
    void reconnect_cmap_if_due(uint64_t now);
    void expire_awaited_writes(uint64_t now);
    void refresh_due(uint64_t now);

    // Requests.
    void on_request(const linkwire::Message &m, int fd, uint64_t now);
    void on_update(const linkwire::Message &m, uint64_t now);
    void on_watch(int fd);
    void on_query(const linkwire::Message &m, uint64_t now);
    [[noreturn]] void on_finish(bool failed);

    void write_state(linkwire::State s, uint64_t token, uint64_t deadline, uint64_t now);
    [[nodiscard]] cs_error_t write_state_to_cmap(linkwire::State s, uint64_t now);
    void refresh(uint64_t now, bool force);
    void cmap_lost(cs_error_t err, uint64_t now);
    void quorum_lost(cs_error_t err, uint64_t now);
    void report_quorum();
    void answer_awaited_writes();

    const int sock_;
    const LinkConfig cfg_;
    std::unique_ptr<CmapState> cmap_;
    std::shared_ptr<QuorumWatch> quorum_;
    Connection cmap_conn_, quorum_conn_;
    bool reported_quorate_ = false; // what the supervisor last heard from us

    linkwire::State state_ = linkwire::State::None; // what we last asked cmap to show
    bool healthy_ = false;
    uint64_t life_ns_ = 0;
    std::optional<HeartbeatPage> page_;
    uint64_t published_ = 0; // last last_updated written
    RefreshSchedule refresh_schedule_;

    // Awaited writes that failed for want of cmap: answered when the
    // reconnect has republished the state, or with their error at `until`.
    struct Waiting {
        uint64_t token;
        cs_error_t error;
        uint64_t until;
    };
    std::vector<Waiting> waiting_;
    unsigned char rx_[sizeof(linkwire::Message) + 16];
};

} // namespace sam
