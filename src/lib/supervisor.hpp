// SPDX-License-Identifier: BSD-3-Clause
// supervisor.hpp - the process that stays behind in sam_register().
//
// One event loop (epoll) over: the instance's pidfd (death, seen at once
// whatever the instance did with its descriptors, or whoever reaped it; and
// the only way the instance is ever signalled), its channel (requests),
// one timerfd (health deadline, kill escalation, restart back-off), a
// signalfd (stop signals to forward), the corosync link's descriptor
// (quorum changes and answers, completed cmap writes; the link is a process
// of its own, see corosync_link.hpp), and, once a medium store came, the
// reader thread's eventfd (see remote_reader.hpp). This file is the shell:
// it turns readiness into events for the pure core (supervisor_core.hpp),
// where every decision is one step(state, event) -> actions, each handler a
// small switch over the phase (state x event, as in s6-supervise), and it
// carries out the actions the core returns.
//
// epoll directly rather than libqb's qb_loop: every fork() gives the new
// instance a copy of the loop that it must drop without touching the
// supervisor's. An epoll instance is shared across fork(), so removing
// sources through a loop API in the child would unregister them in the
// supervisor too; ours is simply closed. Six descriptors need no job
// queues or timer lists.
#pragma once

#include <csignal>
#include <cstdint>
#include <memory>
#include <vector>

#include <corosync/corotypes.h>

#include "backoff.hpp"
#include "channel.hpp"
#include "common/signals.hpp"
#include "descriptor_sink.hpp"
#include "fd.hpp"
#include "health.hpp"
#include "log.hpp"
#include "log_outbox.hpp"
#include "remote_reader.hpp"
#include "standby.hpp"
#include "state.hpp"
#include "supervisor_core.hpp"
#include "wire.hpp"

namespace sam {

class CorosyncLink;

class Supervisor {
  public:
    explicit Supervisor(Library &lib);
    ~Supervisor();
    Supervisor(const Supervisor &) = delete;
    Supervisor &operator=(const Supervisor &) = delete;

    // Runs the supervisor. Returns CS_OK in a new instance (the child side of
    // a fork), or CS_ERR_LIBRARY in the supervisor after an internal error.
    // Otherwise it never returns: the supervisor exits like its instance.
    // With CMAP or QUORUM, `link` is the link process sam_register() started.
    [[nodiscard]] cs_error_t run(unsigned *instance_id, std::unique_ptr<CorosyncLink> link);

    // The supervisor's own exit statuses, where it cannot exit like its
    // instance (both documented in sam_register(3); values from sysexits.h).
    // The instance was reaped elsewhere in this process (another thread's
    // wait, or SIGCHLD ignored): its status is lost.
    static constexpr int kExitStatusUnknown = 70; // EX_SOFTWARE
    // After an instance has run, the supervisor cannot go on: a restart
    // failed in a way retrying cannot cure, or its event loop failed.
    static constexpr int kExitCannotGoOn = core::kExitCannotGoOn;

  private:
    enum class Outcome { Continue, BecameInstance, Fatal };

    // Set-up and the loop.
    bool set_up(std::unique_ptr<CorosyncLink> link);
    void undo_set_up() noexcept;
    Outcome loop();

    // Readiness into events: one reader per descriptor.
    Outcome on_instance_exit();
    Outcome on_channel();
    Outcome on_message(Received &msg);
    Outcome on_timer();
    Outcome on_signal();
    Outcome on_link();
    Outcome on_reader();

    // Events go to the core (supervisor_core.hpp) in the order seen; what it
    // asks for is carried out here. An action may report events of its own
    // (a fork's outcome, a data request's result): they queue behind.
    void post(const core::Event &e);
    Outcome drain();
    Outcome dispatch(const core::Event &e) {
        post(e);
        return drain();
    }
    Outcome execute(const core::Action &a);

    // Actions with more than a line to them.
    Outcome spawn_instance();
    [[noreturn]] void exit_cannot_go_on();
    // Leaves cmap as the outcome deserves (state "failed", or keys deleted), then
    // exits with the instance's exit code or dies by the signal that killed it.
    [[noreturn]] void exit_like_instance(bool failed, int status_code, int status_kind);
    bool signal_instance(int sig, bool queued) noexcept;
    bool make_spare();
    void prepare_spare();
    void publish_stopped_before_fork();
    void become_instance(ChannelPair &pair, std::shared_ptr<HeartbeatPage> page);
    void leave_supervisor(ChannelPair &pair, HeartbeatPage &page) noexcept;
    void enter_instance(ChannelPair &pair, std::shared_ptr<HeartbeatPage> page);
    // The standby (see standby.hpp).
    [[nodiscard]] bool standby_wanted() const noexcept;
    Outcome fork_standby();
    Outcome become_standby();
    Outcome on_standby_exit();
    void retire_standby() noexcept;
    void release_instance();
    void harvest_slot(bool last) noexcept;
    void slot_superseded() noexcept;
    void run_data_request();
    void start_remote_store(const wire::Request &req);
    void dispose_passed(Received &msg);
    void stop_reader_before_fork(unsigned iid);

    void rearm_timer(uint64_t core_due);
    void log_now(int priority, const char *format, ...) noexcept __attribute__((format(printf, 3, 4)));
    void log_soon(int priority, const char *format, ...) noexcept __attribute__((format(printf, 3, 4)));
    void flush_logs() noexcept;
    void watch_log_descriptor() noexcept;
    void drop_channel();
    void restore_signal_actions() noexcept;

    Library &lib_;
    const Policy policy_;
    const pid_t self_;
    core::State core_; // every decision's input: see supervisor_core.hpp
    std::unique_ptr<CorosyncLink> link_;
    sigset_t forwarded_{};
    sigset_t original_mask_{};
    bool mask_changed_ = false;
    // The application's own actions for the forwarded signals, while ours
    // redirect them to this thread (see set_up()).
    struct sigaction original_actions_[kForwardedCount] {};
    size_t actions_changed_ = 0; // how many of original_actions_ are ours to restore
    bool sigchld_changed_ = false;

    UniqueFd epoll_, timer_, signals_;
    UniqueFd pidfd_, channel_;
    UniqueFd schedstat_, stat_; // the instance's /proc/PID/schedstat and stat (may be closed)
    CpuSample cpu_at_life_;     // what they said when it last showed life
    CpuSample timer_sample_;    // what they said when the timer last fired
    // Every datagram from the instance lands here: the largest valid request
    // (header and inline data), reused so that receiving allocates nothing.
    static constexpr size_t kRxBufSize = sizeof(wire::RequestHeader) + wire::kInlineDataMax;
    std::unique_ptr<unsigned char[]> rx_buf_;
    std::shared_ptr<HeartbeatPage> page_;
    // The last slot sequence of that page the data here already covers: a
    // store through the channel supersedes earlier slot stores, a harvest
    // took (or rejected) the slot up to it. Counts from 0 for each page.
    const HeartbeatPage *slot_page_ = nullptr;
    uint64_t slot_seen_ = 0;
    // Descriptors an instance passed are closed there, never here.
    DescriptorSink sink_;
    // Medium stores: the read out of the instance runs off this thread.
    RemoteReader reader_;
    bool reader_watched_ = false;
    bool reader_stuck_ = false; // a stop before a fork could not wait for its read
    // The request being dispatched, for RunData; and its result, which a
    // CommitData action stores (a null blob with data_delete_: clear).
    const wire::Request *current_request_ = nullptr;
    Received *current_message_ = nullptr;
    std::shared_ptr<const DataBlob> data_result_;
    bool data_delete_ = false;
    // What the next instance gets, prepared once the current one has started
    // so that a restart does not wait for it.
    ChannelPair spare_pair_;
    std::shared_ptr<HeartbeatPage> spare_page_;
    // The next instance, forked ahead of time; while it waits it holds the
    // spare's instance end (closed here) and its page.
    Standby standby_;
    const bool standby_enabled_; // SAM_STANDBY=0 turns standbys off
    bool standby_due_ = false;   // fork one before the loop sleeps
    bool standby_threads_logged_ = false;
    bool link_watch_due_ = false; // the link is told of the new instance's page at the next wake-up
    struct sigaction original_sigchld_ {};
    pid_t child_ = -1;
    unsigned *instance_id_out_ = nullptr;

    std::vector<core::Event> events_; // posted, not yet stepped
    // The link's tokens of the questions the core is waiting on, with the
    // core's tickets for them: answers to anything older are dropped.
    uint64_t write_token_ = 0, write_ticket_ = 0;
    uint64_t check_token_ = 0, check_ticket_ = 0;
    uint64_t armed_at_ = 0; // what the timerfd is set to (0 = disarmed)
    LogOutbox logs_;        // see log_now() and log_soon()
    uint64_t log_flush_at_ns_ = 0;
    int log_watched_fd_ = -1; // in epoll_ for EPOLLOUT while lines wait
};

} // namespace sam
