// SPDX-License-Identifier: BSD-3-Clause
// supervisor_core.hpp - the supervisor's decisions, with no system call.
//
// Everything the supervisor decides (when an instance starts, is warned,
// killed, restarted; what a request is answered; what cmap is told; when the
// supervisor exits) is one call: step(state, event) -> actions. The state is
// plain data: the phase, the deadlines the timer serves, what waits for an
// answer. Events are what the loop saw (a death, a request, the timer, a stop
// signal, an answer of the link); actions are what the loop must do (fork,
// signal, reply, write a state, arm the timer, log). supervisor.cpp is the
// shell that turns epoll readiness into events and carries the actions out.
//
// Kept apart from the shell so that every phase x event combination can be
// tested without processes (tests/unit/check_supervisor_core.cpp) and driven
// by the fuzzer (tests/fuzz); nothing here reads a clock: time comes in the
// events.
#pragma once

#include <cstddef>
#include <cstdint>

#include <corosync/corotypes.h>

#include "backoff.hpp"
#include "health.hpp"
#include "state.hpp"

namespace sam::core {

enum class Phase {
    Spawning,         // an instance is being forked (the first, or a restart)
    Idle,             // registered, nothing timed (before sam_start or after sam_stop)
    AskingQuorum,     // sam_start() waits for corosync's answer: is the cluster quorate now?
    WaitingForQuorum, // sam_start() waits: not quorate, and the instance was told so (log, cmap)
    PublishingStart,  // sam_start() waits for "running" to reach cmap
    PublishingStop,   // sam_stop() waits for "stopped" to reach cmap
    Running,          // started: health deadline armed
    QuorumLost,       // started, warned for quorum loss: SIGKILL at kill_at_ns unless it ends first
    Killing,          // SIGKILL sent, waiting for the death
    KillingMarked,    // the same, after the instance marked itself failed (the supervisor exits then)
    BackingOff,       // no instance: waiting before the next restart
    Exiting,          // the supervisor is ending: nothing more happens
};
constexpr size_t kPhaseCount = static_cast<size_t>(Phase::Exiting) + 1;
[[nodiscard]] const char *phase_name(Phase p) noexcept;

// The request of the instance that waits for its reply (one at a time).
enum class Pending { None, Start, Stop, Data };

struct Config {
    Policy policy;
    bool link = false; // a link process exists (CMAP or QUORUM)
    uint64_t interval_ms = 0;
    BackoffConfig backoff;
};

struct State {
    State(const Config &c, int warn_signal_now, bool quorate_now) noexcept
        : config(c), warn_signal(warn_signal_now), quorate(quorate_now), deadline(c.interval_ms), backoff(c.backoff) {}

    Config config;
    Phase phase = Phase::Spawning;
    Pending pending = Pending::None;
    bool channel_open = false; // the instance's channel is still read
    // A stop signal came: no restart after the instance ends. Not a phase:
    // until it ends, the instance is supervised as before in whatever phase.
    bool stopping = false;
    int warn_signal;
    bool quorate; // the last notification of the link

    HealthDeadline deadline;
    RestartBackoff backoff;

    // The current (or last) instance.
    unsigned iid = 0;
    int pid = -1;
    bool spawned_once = false; // from then on sam_register() never returns
    uint64_t spawned_at_ns = 0;
    int last_status_code = 0; // si_status of the last death
    int last_status_kind = 0; // si_code (CLD_*), or kStatusUnknown

    uint64_t kill_at_ns = 0;    // QuorumLost: SIGKILL at this time
    uint64_t restart_at_ns = 0; // BackingOff: the next instance at this time

    // Answers awaited from the link, by the ticket the core gave its question.
    uint64_t next_ticket = 0;
    uint64_t state_write_ticket = 0; // PublishingStart / PublishingStop
    uint64_t quorum_ticket = 0;      // a quorum question in flight (0: none)
    bool quorum_ask_again = false;   // quorum came back while it was in flight
};

// No si_code of waitid(): the instance was reaped by someone else.
constexpr int kStatusUnknown = 0;
// The supervisor's exit status when it cannot go on after an instance has
// run (EX_OSERR; documented in sam_register(3)).
constexpr int kExitCannotGoOn = 71;

// With no health interval, a quorum loss still ends in SIGKILL this long
// after the warn signal.
constexpr uint64_t kQuorumKillDefaultNs = 1000000000ULL;
// A restart that could not be spawned is retried after the restart back-off,
// but never sooner than this: retrying at once meets the same shortage.
constexpr uint64_t kSpawnRetryMinMs = 100;

// What a request asks, as far as decisions go (decoded by the shell).
enum class Request {
    Start,
    Stop,
    Data, // store (inline, memfd, remote) or delete: carried out by the shell
    WarnSignalSet,
    MarkFailed,
    Oversized, // not a request: the datagram did not fit
    Malformed, // not a request: it did not decode
};

struct Event {
    enum class Kind {
        Begin,         // sam_register(): make the first instance
        Spawned,       // iid, pid
        SpawnFailed,   // iid, what, error
        Died,          // status_code, status_kind
        Request,       // request, arg, detail
        ChannelClosed, // the instance closed its end (or it failed)
        DataDone,      // status, detail (the reason to kill when status is CS_ERR_MESSAGE_ERROR)
        Timer,         // stamp (the heartbeat page), starved_ns
        Signal,        // signal (a stop signal reached the supervisor)
        Quorum,        // quorate (a notification of the link)
        QuorumAnswer,  // ticket, quorate (corosync's answer to CheckQuorum)
        StateWritten,  // ticket, status (the answer to an awaited PublishState)
    };
    Kind kind = Kind::Begin;
    uint64_t now_ns = 0; // CLOCK_MONOTONIC when the event was seen
    Request request = Request::Start;
    uint64_t arg = 0;
    const char *detail = nullptr;
    int detail_len = 0;
    unsigned iid = 0;
    int pid = -1;
    int error = 0; // errno of SpawnFailed
    int status_code = 0, status_kind = 0;
    cs_error_t status = CS_OK;
    uint64_t stamp_ns = 0, starved_ns = 0;
    int signal = 0;
    bool quorate = false;
    uint64_t ticket = 0;

    static Event begin(uint64_t now);
    static Event spawned(uint64_t now, unsigned iid, int pid);
    static Event spawn_failed(uint64_t now, unsigned iid, const char *what, int err);
    static Event died(uint64_t now, int status_code, int status_kind);
    static Event request_of(uint64_t now, Request r, uint64_t arg = 0, const char *detail = nullptr, int len = 0);
    static Event channel_closed(uint64_t now);
    static Event data_done(uint64_t now, cs_error_t status, const char *lie = nullptr);
    static Event timer(uint64_t now, uint64_t stamp, uint64_t starved_ns = 0);
    static Event signal_of(uint64_t now, int sig);
    static Event quorum(uint64_t now, bool quorate);
    static Event quorum_answer(uint64_t now, uint64_t ticket, bool quorate);
    static Event state_written(uint64_t now, uint64_t ticket, cs_error_t status);
};
constexpr size_t kEventKindCount = static_cast<size_t>(Event::Kind::StateWritten) + 1;
[[nodiscard]] const char *event_name(Event::Kind k) noexcept;

// The state written to cmap.
enum class CmapState { Stopped, Running, Waiting };

struct Action {
    enum class Kind {
        Spawn,            // fork the next instance; report Spawned, SpawnFailed (and Died if reaped at once)
        Signal,           // signal (queued: as sigqueue(), falling back to a plain one)
        ReleaseInstance,  // it is dead: close its pidfd, channel and /proc files, let its page go
        DropChannel,      // stop reading the channel, close it
        Reply,            // status to the pending request
        RunData,          // carry out the data request just received; report DataDone
        CommitData,       // the data the shell holds for the request replaces the stored data
        SetWarnSignal,    // signal: the instance's new warn signal (inherited by the next ones)
        NoteLife,         // at_ns: the instance showed life (the link's last_updated)
        SetHealthy,       // flag: what the link says of the instance's health
        PublishState,     // cmap_state, flag (awaited), ticket
        CheckQuorum,      // ticket: ask corosync through the link
        PrepareSpare,     // make the next instance's channel and page ahead of time
        ResetCpuBaseline, // health checking begins: sample the instance's CPU use now
        KeepCpuSample,    // the sample taken for this timer event is the new baseline, dated at_ns
        ArmTimer,         // at_ns: the earliest time the core wants a Timer event (0: none)
        Log,              // priority, flag (soon: may wait for the loop's next wake-up), text
        ExitLikeInstance, // flag (failed), status_code, status_kind
        ExitCannotGoOn,   // kill what is left, exit with Supervisor::kExitCannotGoOn
        GiveUp,           // no instance ever ran: sam_register() returns CS_ERR_LIBRARY
    };
    static constexpr size_t kTextMax = 256;

    Kind kind = Kind::Log;
    int signal = 0;
    bool queued = false;
    bool flag = false;
    cs_error_t status = CS_OK;
    uint64_t at_ns = 0;
    uint64_t ticket = 0;
    CmapState cmap_state = CmapState::Stopped;
    int priority = 0;
    int status_code = 0, status_kind = 0;
    char text[kTextMax] = {};
};
constexpr size_t kActionKindCount = static_cast<size_t>(Action::Kind::GiveUp) + 1;
[[nodiscard]] const char *action_name(Action::Kind k) noexcept;

// What one step asks for, in order. Fixed capacity: a step allocates nothing.
class Actions {
  public:
    static constexpr size_t kMax = 12;
    [[nodiscard]] size_t size() const noexcept { return n_; }
    [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
    [[nodiscard]] const Action &operator[](size_t i) const noexcept { return a_[i]; }
    [[nodiscard]] const Action *begin() const noexcept { return a_; }
    [[nodiscard]] const Action *end() const noexcept { return a_ + n_; }
    Action &add(Action::Kind k) noexcept;

  private:
    Action a_[kMax];
    size_t n_ = 0;
};

// Every transition of the supervisor goes through here.
[[nodiscard]] Actions step(State &s, const Event &e) noexcept;

// When the core wants the next Timer event (0: never); step() ends with an
// ArmTimer action carrying it whenever the loop goes on waiting.
[[nodiscard]] uint64_t timer_due(const State &s) noexcept;

// Named groups of phases.
// An instance exists (alive or not yet reaped).
[[nodiscard]] bool has_instance(Phase p) noexcept;
// sam_start() was called: the instance counts as started (also while it
// waits for quorum or for its state to reach cmap, as upstream).
[[nodiscard]] bool was_started(Phase p) noexcept;
// Health checking runs: a Timer event needs a fresh CPU sample.
[[nodiscard]] bool health_timed(Phase p) noexcept;
[[nodiscard]] bool is_killing(Phase p) noexcept;

// Shortages the system may recover from (a retry may succeed); anything
// else (EPERM from a seccomp filter, ENOSYS, EINVAL) fails the same way
// every time.
[[nodiscard]] bool may_pass(int err) noexcept;

} // namespace sam::core
