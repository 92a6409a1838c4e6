// corosync_link.hpp - the supervisor's thread that talks to corosync.
//
// cmap and quorum calls can block for seconds while corosync shuts down, so
// none of them runs on the supervisor's loop: this thread owns the cmap
// connection (CmapState) and the quorum connection (QuorumWatch), performs
// the state writes the loop asks for, keeps `last_updated` fresh (coalesced:
// at most four writes per poll period), reconnects with back-off when
// corosync goes away and republishes every key. It reports back through an
// eventfd: quorum changes and the result of writes the loop waits for.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <pthread.h>

#include <corosync/corotypes.h>

#include "fd.hpp"
#include "health.hpp"

namespace sam {

class CmapState;
class QuorumWatch;

class CorosyncLink {
  public:
    // How long an awaited state write (sam_start, sam_stop) waits for cmap to
    // come back: long enough for corosync to restart.
    static constexpr uint64_t kAwaitedWriteWaitNs = 5000ULL * 1000000ULL;

    struct Event {
        enum class Kind { Quorum, StateWritten } kind;
        bool quorate = false;
        cs_error_t error = CS_OK;
        uint64_t token = 0; // StateWritten: what publish_state() returned
    };
    enum class Finish { DeleteKeys, MarkFailed };

    // Takes over connections made before fork (either may be null).
    static std::unique_ptr<CorosyncLink> start(std::unique_ptr<CmapState> cmap, std::shared_ptr<QuorumWatch> quorum,
                                               uint64_t interval_ms);
    ~CorosyncLink();
    CorosyncLink(const CorosyncLink &) = delete;
    CorosyncLink &operator=(const CorosyncLink &) = delete;

    [[nodiscard]] int event_fd() const noexcept { return events_fd_.get(); }
    [[nodiscard]] std::vector<Event> take_events();
    [[nodiscard]] bool quorate() const noexcept { return quorate_.load(); }

    // Asks for the state key to be written. When `awaited`, a StateWritten
    // event carrying the returned token reports the result; if cmap is not
    // there, it comes when a reconnect has republished the state (CS_OK), or
    // with the error after kAwaitedWriteWaitNs. The state also decides what last_updated
    // follows: the instance's heartbeats while "running", the supervisor's
    // own clock while "waiting for quorum".
    uint64_t publish_state(const char *state, bool awaited);
    // The instance's page and the time of its last message, for last_updated.
    void watch_instance(std::shared_ptr<HeartbeatPage> page);
    void note_life(uint64_t at_ns) noexcept { life_ns_.store(at_ns, std::memory_order_relaxed); }
    void set_healthy(bool healthy) noexcept { healthy_.store(healthy); }

    // Final write, then the thread ends. Bounded by corosync's own IPC timeouts.
    void finish(Finish how);
    // In a freshly forked instance: the thread does not exist here. Close our
    // descriptors and forget everything without touching corosync.
    void abandon_in_child() noexcept;

  private:
    CorosyncLink() = default;
    static constexpr size_t kThreadStackSize = 4u << 20;
    static void *thread_main(void *self);
    void run();
    void post(Event e);

    struct Command {
        enum class Kind { State, Finish } kind;
        const char *state = nullptr;
        bool awaited = false;
        Finish finish = Finish::DeleteKeys;
        uint64_t token = 0;
    };

    std::unique_ptr<CmapState> cmap_;
    std::shared_ptr<QuorumWatch> quorum_;
    uint64_t interval_ms_ = 0;

    UniqueFd events_fd_; // loop side: readable when events_ is not empty
    UniqueFd wakeup_fd_; // thread side: readable when commands_ is not empty
    std::mutex m_;
    std::deque<Command> commands_;
    // Thread only: the commands being carried out. A member, not a local, so
    // that an instance forked meanwhile finds nothing reachable only from a
    // thread it does not have (LeakSanitizer would call that a leak).
    std::deque<Command> batch_;
    uint64_t next_token_ = 0;
    std::vector<Event> events_;
    std::shared_ptr<HeartbeatPage> page_;
    std::atomic<uint64_t> life_ns_{0};
    std::atomic<bool> healthy_{false};
    std::atomic<bool> quorate_{false};
    pthread_t thread_{};

    // Owned by the thread (members, not locals of run(), so that a forked
    // instance, where the thread's stack is no longer anyone's, still reaches
    // them from the abandoned link: LeakSanitizer counts them as leaks otherwise).
    struct Waiting {
        uint64_t token;
        cs_error_t error;
        uint64_t until;
    };
    // Awaited state writes that failed for want of cmap: answered when the
    // reconnect has republished the state, or with their error at `until`.
    std::vector<Waiting> waiting_;
    std::string state_;    // what we last asked cmap to show
    bool running_ = false; // thread_ was started and not yet joined
};

} // namespace sam
