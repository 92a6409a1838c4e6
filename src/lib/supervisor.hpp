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
// reader thread's eventfd (see remote_reader.hpp). The instance is always in one
// Phase; every event has one handler, and each handler is a small switch
// over the phase (state x event, as in s6-supervise).
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

#include <corosync/corotypes.h>

#include "backoff.hpp"
#include "channel.hpp"
#include "descriptor_sink.hpp"
#include "fd.hpp"
#include "health.hpp"
#include "log.hpp"
#include "log_outbox.hpp"
#include "remote_reader.hpp"
#include "state.hpp"
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
    static constexpr int kExitCannotGoOn = 71; // EX_OSERR

    enum class Phase {
        Idle,             // registered, nothing timed (before sam_start or after sam_stop)
        WaitingForQuorum, // sam_start() waits: the cluster is not quorate
        Publishing,       // sam_start()/sam_stop() waits for its cmap state write
        Running,          // started: health deadline armed
        Killing,          // SIGKILL sent, waiting for the pidfd
        BackingOff,       // no instance: waiting before the next restart
    };

  private:
    enum class Outcome { Continue, BecameInstance, Fatal };

    // Set-up and the loop.
    bool set_up(std::unique_ptr<CorosyncLink> link);
    void undo_set_up() noexcept;
    Outcome spawn_instance();
    Outcome spawn_failed(unsigned iid, const char *what, int err);
    [[noreturn]] void exit_cannot_go_on();
    bool signal_instance(int sig, bool queued) noexcept;
    bool make_spare();
    void prepare_spare();
    void publish_stopped_before_fork();
    void become_instance(ChannelPair &pair, std::shared_ptr<HeartbeatPage> page);
    Outcome loop();

    // Events: one handler each.
    Outcome on_instance_exit();
    Outcome on_channel();
    Outcome on_timer();
    Outcome on_signal();
    Outcome on_link();
    Outcome on_reader();

    // Requests from the instance (valid ones only).
    bool on_message(Received &msg);
    void handle_request(const wire::Request &req, Received &msg);
    void dispose_passed(Received &msg);
    void start_remote_store(const wire::Request &req);
    void finish_store(std::shared_ptr<const DataBlob> blob, cs_error_t err, const char *lie);
    void stop_reader_before_fork(unsigned iid);
    void request_start();
    void request_stop();

    // Transitions.
    void begin_running();
    void enter_waiting_for_quorum();
    void ask_quorum();
    void on_quorum(bool quorate);
    void on_quorum_checked(uint64_t token, bool quorate);
    void on_state_written(cs_error_t err);
    void warn_instance(const char *why);
    void kill_instance(const char *why);
    Outcome after_death(int status_code, int status_kind);
    // Leaves cmap as the outcome deserves (state "failed", or keys deleted), then
    // exits with the instance's exit code or dies by the signal that killed it.
    [[noreturn]] void exit_like_instance(bool failed);

    void start_health_clock();
    void rearm_timer();
    void log_now(int priority, const char *format, ...) noexcept __attribute__((format(printf, 3, 4)));
    void log_soon(int priority, const char *format, ...) noexcept __attribute__((format(printf, 3, 4)));
    void flush_logs() noexcept;
    void watch_log_descriptor() noexcept;
    void reply(cs_error_t status);
    void drop_channel();
    void restore_signal_actions() noexcept;

    Library &lib_;
    const Policy policy_;
    const pid_t self_;
    HealthDeadline deadline_;
    RestartBackoff backoff_;
    std::unique_ptr<CorosyncLink> link_;
    static constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    static constexpr size_t kForwardedCount = sizeof(kForwardedSignals) / sizeof(int);
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
    // Every datagram from the instance lands here: the largest valid request
    // (header and inline data), reused so that receiving allocates nothing.
    static constexpr size_t kRxBufSize = sizeof(wire::RequestHeader) + wire::kInlineDataMax;
    std::unique_ptr<unsigned char[]> rx_buf_;
    std::shared_ptr<HeartbeatPage> page_;
    // Descriptors an instance passed are closed there, never here.
    DescriptorSink sink_;
    // Medium stores: the read out of the instance runs off this thread.
    RemoteReader reader_;
    bool reader_watched_ = false;
    bool remote_store_pending_ = false; // the pending request waits for reader_
    bool reader_stuck_ = false;         // a stop before a fork could not wait for its read
    // What the next instance gets, prepared once the current one has started
    // so that a restart does not wait for it.
    ChannelPair spare_pair_;
    std::shared_ptr<HeartbeatPage> spare_page_;
    bool quorate_ = true;
    struct sigaction original_sigchld_ {};
    pid_t child_ = -1;
    unsigned *instance_id_out_ = nullptr;

    Phase phase_ = Phase::Idle;
    Phase publishing_to_ = Phase::Idle; // what Publishing turns into when the write completes
    bool reply_pending_ = false;
    uint64_t awaited_token_ = 0; // the cmap write Publishing waits for
    // WaitingForQuorum: the quorum question in flight (0: none), whether the
    // wait was announced (log, cmap state), and whether quorum came back
    // while the question was in flight (ask again if the answer is no).
    uint64_t quorum_check_token_ = 0;
    bool waiting_announced_ = false;
    bool recheck_quorum_ = false;
    bool stop_requested_ = false; // SIGTERM/SIGINT seen: no more restarts
    bool mark_failed_ = false;
    bool killed_by_us_ = false;
    uint64_t kill_at_ns_ = 0;    // quorum loss: SIGKILL at this time unless dead already
    uint64_t restart_at_ns_ = 0; // BackingOff: next instance at this time
    uint64_t spawned_at_ns_ = 0;
    uint64_t armed_at_ = 0; // what the timerfd is set to (0 = disarmed)
    LogOutbox logs_;        // see log_now() and log_soon()
    uint64_t log_flush_at_ns_ = 0;
    int log_watched_fd_ = -1;  // in epoll_ for EPOLLOUT while lines wait
    int last_status_code_ = 0; // si_status of the last instance
    int last_status_kind_ = 0; // si_code: CLD_EXITED, CLD_KILLED, CLD_DUMPED, or kStatusUnknown
    // No si_code of waitid(): the instance was reaped by someone else.
    static constexpr int kStatusUnknown = 0;
    bool spawned_once_ = false; // from then on sam_register() never returns here
};

} // namespace sam
