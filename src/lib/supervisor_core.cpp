// SPDX-License-Identifier: BSD-3-Clause
// supervisor_core.cpp - the supervisor's state x event decisions: one small
// function per event, each a switch over the phase.
#include "supervisor_core.hpp"

#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <sys/wait.h>
#include <syslog.h>

#include "common/signals.hpp"

namespace sam::core {

namespace {

// The step under way: the state, what it asks for, and the event's time.
struct Step {
    State &s;
    Actions &out;
    uint64_t now;

    void log(int priority, bool soon, const char *format, ...) noexcept __attribute__((format(printf, 4, 5))) {
        Action &a = out.add(Action::Kind::Log);
        a.priority = priority;
        a.flag = soon;
        va_list ap;
        va_start(ap, format);
        (void)std::vsnprintf(a.text, sizeof a.text, format, ap);
        va_end(ap);
    }
    void reply(cs_error_t status) noexcept {
        s.pending = Pending::None;
        if (!s.channel_open)
            return; // nobody to answer: the instance closed its end
        out.add(Action::Kind::Reply).status = status;
    }
    void set_healthy(bool healthy) noexcept {
        if (s.config.link)
            out.add(Action::Kind::SetHealthy).flag = healthy;
    }
    bool publishes() const noexcept { return s.config.link && s.config.policy.cmap(); }
    uint64_t publish(CmapState st, bool awaited) noexcept {
        Action &a = out.add(Action::Kind::PublishState);
        a.cmap_state = st;
        a.flag = awaited;
        a.ticket = awaited ? ++s.next_ticket : 0;
        return a.ticket;
    }
    void signal(int sig, bool queued) noexcept {
        Action &a = out.add(Action::Kind::Signal);
        a.signal = sig;
        a.queued = queued;
    }
    void drop_channel() noexcept {
        s.pending = Pending::None;
        if (!s.channel_open)
            return;
        s.channel_open = false;
        out.add(Action::Kind::DropChannel);
    }

    // Health checking begins (or begins again): the start is a sign of life,
    // and the instance's wait for a CPU is counted from here.
    void start_health_clock() noexcept {
        s.deadline.start(now);
        out.add(Action::Kind::ResetCpuBaseline);
    }

    void warn(const char *why) noexcept {
        if (s.deadline.was_warned() || !has_instance(s.phase))
            return;
        log(LOG_WARNING, false, "instance %u (pid %d): %s; sending SIG%s", s.iid, s.pid, why,
            signal_name(s.warn_signal).c_str());
        // Queued (si_code SI_QUEUE), so the instance can tell our warning from
        // a stop signal passed on with kill() (sam-run relies on that).
        signal(s.warn_signal, /* queued= */ true);
        s.deadline.warned(now);
        set_healthy(false);
    }

    void kill(const char *why, bool marked_failed = false) noexcept {
        if (is_killing(s.phase) || !has_instance(s.phase))
            return;
        log(LOG_WARNING, false, "instance %u (pid %d): %s; sending SIGKILL", s.iid, s.pid, why);
        signal(SIGKILL, /* queued= */ false);
        s.phase = marked_failed ? Phase::KillingMarked : Phase::Killing;
        s.kill_at_ns = 0;
        s.deadline.stop();
        drop_channel();
        set_healthy(false);
    }

    void exit_like_instance(bool failed) noexcept {
        Action &a = out.add(Action::Kind::ExitLikeInstance);
        a.flag = failed;
        a.status_code = s.last_status_code;
        a.status_kind = s.last_status_kind;
        s.phase = Phase::Exiting;
    }

    void spawn() noexcept {
        s.phase = Phase::Spawning;
        out.add(Action::Kind::Spawn);
    }

    void ask_quorum() noexcept {
        if (s.quorum_ticket != 0) {
            s.quorum_ask_again = true;
            return;
        }
        s.quorum_ask_again = false;
        s.quorum_ticket = ++s.next_ticket;
        out.add(Action::Kind::CheckQuorum).ticket = s.quorum_ticket;
    }

    void begin_running() noexcept {
        if (publishes()) {
            s.phase = Phase::PublishingStart;
            s.state_write_ticket = publish(CmapState::Running, /* awaited= */ true);
            return;
        }
        s.phase = Phase::Running;
        start_health_clock();
        out.add(Action::Kind::PrepareSpare);
        reply(CS_OK);
    }

    void enter_waiting_for_quorum() noexcept {
        s.phase = Phase::WaitingForQuorum;
        log(LOG_INFO, false, "instance %u waits for quorum before it starts", s.iid);
        if (publishes())
            (void)publish(CmapState::Waiting, /* awaited= */ false);
    }

    // ---- events ----

    void on_begin() noexcept {
        if (s.phase == Phase::Spawning && !s.spawned_once)
            out.add(Action::Kind::Spawn);
    }

    void on_spawned(const Event &e) noexcept {
        if (s.phase != Phase::Spawning)
            return;
        s.phase = Phase::Idle;
        s.iid = e.iid;
        s.pid = e.pid;
        s.spawned_once = true;
        s.spawned_at_ns = now;
        s.deadline = HealthDeadline(s.config.interval_ms);
        s.pending = Pending::None;
        s.channel_open = true;
        s.quorum_ticket = 0; // an answer still due was for the last instance
        s.quorum_ask_again = false;
        s.state_write_ticket = 0;
        s.kill_at_ns = 0;
        s.restart_at_ns = 0;
        log(LOG_INFO, true, "instance %u started as pid %d", e.iid, e.pid);
    }

    // A new instance could not be made. The first one: sam_register() returns
    // CS_ERR_LIBRARY, as before any instance ran. A restart: retried after the
    // back-off while the failure may pass; otherwise the supervisor exits.
    void on_spawn_failed(const Event &e) noexcept {
        if (s.phase != Phase::Spawning)
            return;
        if (!s.spawned_once) {
            log(LOG_ERR, false, "cannot %s instance %u: %s", e.detail, e.iid, std::strerror(e.error));
            out.add(Action::Kind::GiveUp);
            s.phase = Phase::Exiting;
            return;
        }
        if (!may_pass(e.error)) {
            log(LOG_ERR, false, "cannot %s instance %u: %s; this will not pass: supervisor exits with status %d",
                e.detail, e.iid, std::strerror(e.error), kExitCannotGoOn);
            out.add(Action::Kind::ExitCannotGoOn);
            s.phase = Phase::Exiting;
            return;
        }
        uint64_t delay_ms = s.backoff.on_failure(0);
        if (delay_ms < kSpawnRetryMinMs)
            delay_ms = kSpawnRetryMinMs;
        log(LOG_WARNING, false, "cannot %s instance %u: %s; retrying in %llu ms", e.detail, e.iid,
            std::strerror(e.error), static_cast<unsigned long long>(delay_ms));
        s.phase = Phase::BackingOff;
        s.restart_at_ns = saturating_add(now, ms_to_ns(delay_ms));
    }

    void on_died(const Event &e) noexcept {
        if (!has_instance(s.phase))
            return;
        s.last_status_code = e.status_code;
        s.last_status_kind = e.status_kind;
        const bool by_signal = e.status_kind == CLD_KILLED || e.status_kind == CLD_DUMPED;
        const bool failure = is_killing(s.phase) || was_started(s.phase);
        const bool marked_failed = s.phase == Phase::KillingMarked;
        char how[96];
        if (e.status_kind == kStatusUnknown)
            std::snprintf(how, sizeof how, "was reaped elsewhere in this process (exit status unknown)");
        else if (by_signal)
            std::snprintf(how, sizeof how, "was killed by SIG%s", signal_name(e.status_code).c_str());
        else
            std::snprintf(how, sizeof how, "exited with status %d", e.status_code);
        s.pending = Pending::None;
        s.channel_open = false;
        s.kill_at_ns = 0;
        s.deadline.stop();
        out.add(Action::Kind::ReleaseInstance);
        set_healthy(false);

        if (s.stopping) {
            log(LOG_INFO, false, "instance %u %s after a stop signal; supervisor exits", s.iid, how);
            exit_like_instance(false);
            return;
        }
        if (marked_failed) {
            log(LOG_WARNING, false, "instance %u %s after marking itself failed; supervisor exits", s.iid, how);
            exit_like_instance(true);
            return;
        }
        if (!failure) {
            log(LOG_INFO, false, "instance %u %s while not started; supervisor exits", s.iid, how);
            exit_like_instance(false);
            return;
        }
        if (s.config.policy.quit()) {
            log(LOG_WARNING, false, "instance %u failed (%s); policy quit: supervisor exits", s.iid, how);
            exit_like_instance(true);
            return;
        }
        const uint64_t ran_ms = now > s.spawned_at_ns ? (now - s.spawned_at_ns) / 1000000ULL : 0;
        const uint64_t delay_ms = s.backoff.on_failure(ran_ms);
        if (delay_ms == 0) {
            log(LOG_WARNING, true, "instance %u failed (%s) after %llu ms; restarting", s.iid, how,
                static_cast<unsigned long long>(ran_ms));
            spawn();
            return;
        }
        log(LOG_WARNING, false, "instance %u failed (%s) after %llu ms; quick failure %llu, restarting in %llu ms",
            s.iid, how, static_cast<unsigned long long>(ran_ms),
            static_cast<unsigned long long>(s.backoff.quick_failures()), static_cast<unsigned long long>(delay_ms));
        // No instance runs until the restart. cmap must not keep saying
        // "running" with a last_updated that no longer moves: corosync's
        // watchdog service would count the process as failed.
        if (publishes())
            (void)publish(CmapState::Stopped, /* awaited= */ false);
        s.phase = Phase::BackingOff;
        s.restart_at_ns = saturating_add(now, ms_to_ns(delay_ms));
    }

    void on_request(const Event &e) noexcept {
        if (!s.channel_open)
            return;
        switch (e.request) {
        case Request::Oversized:
            kill("sent an oversized message");
            return;
        case Request::Malformed:
            log(LOG_WARNING, false, "instance %u sent a malformed message (%.*s)", s.iid, e.detail_len,
                e.detail != nullptr ? e.detail : "");
            kill("sent a malformed message");
            return;
        default:
            break;
        }
        if (s.pending != Pending::None) {
            kill("sent a request while another was pending");
            return;
        }
        s.deadline.life(now); // every call from the instance is a sign of life
        if (s.config.link)
            out.add(Action::Kind::NoteLife).at_ns = now;
        switch (e.request) {
        case Request::Start:
            request_start();
            return;
        case Request::Stop:
            request_stop();
            return;
        case Request::Data:
            s.pending = Pending::Data;
            out.add(Action::Kind::RunData);
            return;
        case Request::WarnSignalSet:
            s.warn_signal = static_cast<int>(e.arg);
            out.add(Action::Kind::SetWarnSignal).signal = s.warn_signal;
            reply(CS_OK);
            return;
        case Request::MarkFailed:
            if (!s.config.policy.cmap()) {
                reply(CS_ERR_INVALID_PARAM);
                return;
            }
            kill("marked itself failed", /* marked_failed= */ true);
            return;
        case Request::Oversized:
        case Request::Malformed:
            return;
        }
    }

    void request_start() noexcept {
        if (s.phase != Phase::Idle) {
            reply(CS_ERR_BAD_HANDLE);
            return;
        }
        s.pending = Pending::Start;
        if (!s.config.policy.quorum()) {
            begin_running();
            return;
        }
        // corosync's answer now, not the last notification we saw: another
        // may still be on its way. Until the answer comes, the instance waits.
        s.phase = Phase::AskingQuorum;
        ask_quorum();
    }

    void request_stop() noexcept {
        if (s.phase != Phase::Running && s.phase != Phase::QuorumLost) {
            reply(CS_ERR_BAD_HANDLE);
            return;
        }
        s.deadline.stop();
        s.kill_at_ns = 0;
        if (publishes()) {
            set_healthy(false);
            s.pending = Pending::Stop;
            s.phase = Phase::PublishingStop;
            s.state_write_ticket = publish(CmapState::Stopped, /* awaited= */ true);
            return;
        }
        s.phase = Phase::Idle;
        reply(CS_OK);
    }

    // The end of a data request: stored in one swap, or the instance hears
    // why not. CS_ERR_MESSAGE_ERROR means it lied about its data: killed as
    // hostile, for the reason the shell gave.
    void on_data_done(const Event &e) noexcept {
        if (s.pending != Pending::Data)
            return; // the instance that asked is gone (or never asked)
        if (e.status == CS_OK) {
            out.add(Action::Kind::CommitData);
            reply(CS_OK);
            return;
        }
        if (e.status == CS_ERR_MESSAGE_ERROR) {
            kill(e.detail);
            return;
        }
        reply(e.status);
    }

    void on_timer(const Event &e) noexcept {
        switch (s.phase) {
        case Phase::BackingOff:
            if (now >= s.restart_at_ns)
                spawn();
            return;
        case Phase::QuorumLost:
            if (now >= s.kill_at_ns) {
                kill("still running after the warn signal for quorum loss");
                return;
            }
            break;
        case Phase::Running:
            break;
        case Phase::Spawning:
        case Phase::Idle:
        case Phase::AskingQuorum:
        case Phase::WaitingForQuorum:
        case Phase::PublishingStart:
        case Phase::PublishingStop:
        case Phase::Killing:
        case Phase::KillingMarked:
        case Phase::Exiting:
            return; // nothing timed (the shell's own log flush may wake it)
        }
        const uint64_t life_before = s.deadline.last_life();
        const uint64_t due = s.deadline.next_deadline();
        const HealthVerdict verdict = s.deadline.on_timer(now, e.stamp_ns, e.starved_ns);
        if (s.deadline.last_life() != life_before) {
            // It ran: its waits count from its last sign of life (a wait
            // that began between that and now is not in the run delay yet).
            const uint64_t life = s.deadline.last_life();
            out.add(Action::Kind::KeepCpuSample).at_ns = life < now ? life : now;
        }
        switch (verdict) {
        case HealthVerdict::Wait:
            return;
        case HealthVerdict::Stalled:
            log(LOG_WARNING, false,
                "instance %u (pid %d): no health check within the interval, but the machine stalled (our timer "
                "fired %llu ms late, the instance waited %llu ms for a CPU); one more interval",
                s.iid, s.pid, static_cast<unsigned long long>(now > due ? (now - due) / 1000000ULL : 0),
                static_cast<unsigned long long>(e.starved_ns / 1000000ULL));
            return;
        case HealthVerdict::Warn:
            warn("no health check within the interval");
            return;
        case HealthVerdict::Kill:
            kill("no health check within the interval after the warn signal");
            return;
        case HealthVerdict::Corrupt:
            kill("wrote a time in the future to its heartbeat page");
            return;
        }
    }

    void on_signal(const Event &e) noexcept {
        if (s.phase == Phase::Exiting)
            return;
        const bool stop = e.signal == SIGTERM || e.signal == SIGINT;
        if (has_instance(s.phase)) {
            log(LOG_INFO, false, "forwarding SIG%s to instance %u (pid %d)%s", signal_name(e.signal).c_str(), s.iid,
                s.pid, stop ? "; no restart after it ends" : "");
            signal(e.signal, /* queued= */ false);
        }
        if (!stop)
            return;
        s.stopping = true;
        if (!has_instance(s.phase)) {
            log(LOG_INFO, false, "SIG%s while waiting to restart: exiting", signal_name(e.signal).c_str());
            exit_like_instance(false);
        }
    }

    void on_quorum(const Event &e) noexcept {
        if (e.quorate == s.quorate || s.phase == Phase::Exiting)
            return;
        s.quorate = e.quorate;
        if (s.phase == Phase::Spawning)
            return; // seen while a fork waited for cmap: no instance to act on, nothing logged
        log(e.quorate ? LOG_INFO : LOG_WARNING, false, "cluster is %s", e.quorate ? "quorate" : "not quorate");
        if (!s.config.policy.quorum())
            return;
        switch (s.phase) {
        case Phase::AskingQuorum:
        case Phase::WaitingForQuorum:
            if (e.quorate)
                ask_quorum(); // a notification says so: corosync confirms first
            return;
        case Phase::Running:
        case Phase::QuorumLost:
            if (!e.quorate) {
                warn("quorum lost");
                const uint64_t grace = s.deadline.timed() ? s.deadline.interval_ns() : kQuorumKillDefaultNs;
                s.kill_at_ns = saturating_add(now, grace);
                s.phase = Phase::QuorumLost;
            }
            return;
        case Phase::Spawning:
        case Phase::Idle:
        case Phase::PublishingStart: // decided when the write completes
        case Phase::PublishingStop:
        case Phase::Killing:
        case Phase::KillingMarked:
        case Phase::BackingOff:
        case Phase::Exiting:
            return;
        }
    }

    // The only way out of waiting for quorum into running: corosync's own
    // answer, given after everything it had queued for us was dispatched.
    void on_quorum_answer(const Event &e) noexcept {
        if (e.ticket == 0 || e.ticket != s.quorum_ticket)
            return;
        s.quorum_ticket = 0;
        if (s.phase != Phase::AskingQuorum && s.phase != Phase::WaitingForQuorum)
            return;
        if (e.quorate) {
            begin_running();
            return;
        }
        if (s.phase == Phase::AskingQuorum)
            enter_waiting_for_quorum();
        if (s.quorum_ask_again)
            ask_quorum();
    }

    void on_state_written(const Event &e) noexcept {
        if (e.ticket == 0 || e.ticket != s.state_write_ticket)
            return;
        if (s.phase != Phase::PublishingStart && s.phase != Phase::PublishingStop)
            return;
        s.state_write_ticket = 0;
        if (e.status != CS_OK) {
            log(LOG_WARNING, false, "cannot publish the state of instance %u in cmap (error %d)", s.iid,
                static_cast<int>(e.status));
            // The request fails and nothing changes: a failed start stays
            // registered, a failed stop stays started. cmap must show what
            // really holds, once corosync is back.
            if (s.phase == Phase::PublishingStop) {
                s.phase = Phase::Running;
                start_health_clock();
                set_healthy(true);
                (void)publish(CmapState::Running, /* awaited= */ false);
            } else {
                s.phase = Phase::Idle;
                (void)publish(CmapState::Stopped, /* awaited= */ false);
            }
            reply(e.status);
            return;
        }
        if (s.phase == Phase::PublishingStop) {
            s.phase = Phase::Idle;
            reply(CS_OK);
            return;
        }
        if (s.config.policy.quorum() && !s.quorate) {
            enter_waiting_for_quorum(); // quorum went away while we were writing
            return;
        }
        s.phase = Phase::Running;
        start_health_clock();
        set_healthy(true);
        out.add(Action::Kind::PrepareSpare);
        reply(CS_OK);
    }
};

} // namespace

Action &Actions::add(Action::Kind k) noexcept {
    // The longest steps (a kill for a malformed message, a failed stop's
    // write) ask for six actions; more than kMax is a bug in this file, which
    // the unit table and the fuzzer would hit.
    if (n_ == kMax)
        std::abort();
    Action &a = a_[n_++];
    a = Action{};
    a.kind = k;
    return a;
}

Actions step(State &s, const Event &e) noexcept {
    Actions out;
    // Once the supervisor ends nothing happens any more. While a fork is
    // under way the shell reports its outcome before anything else it saw;
    // only the quorum notifications read while the fork waited for cmap come
    // first.
    if (s.phase == Phase::Exiting)
        return out;
    if (s.phase == Phase::Spawning && e.kind != Event::Kind::Begin && e.kind != Event::Kind::Spawned &&
        e.kind != Event::Kind::SpawnFailed && e.kind != Event::Kind::Quorum)
        return out;
    Step st{s, out, e.now_ns};
    switch (e.kind) {
    case Event::Kind::Begin:
        st.on_begin();
        break;
    case Event::Kind::Spawned:
        st.on_spawned(e);
        break;
    case Event::Kind::SpawnFailed:
        st.on_spawn_failed(e);
        break;
    case Event::Kind::Died:
        st.on_died(e);
        break;
    case Event::Kind::Request:
        st.on_request(e);
        break;
    case Event::Kind::ChannelClosed:
        // It can still beat through the page, and its death will be seen.
        st.drop_channel();
        break;
    case Event::Kind::DataDone:
        st.on_data_done(e);
        break;
    case Event::Kind::Timer:
        st.on_timer(e);
        break;
    case Event::Kind::Signal:
        st.on_signal(e);
        break;
    case Event::Kind::Quorum:
        st.on_quorum(e);
        break;
    case Event::Kind::QuorumAnswer:
        st.on_quorum_answer(e);
        break;
    case Event::Kind::StateWritten:
        st.on_state_written(e);
        break;
    }
    // A fork under way arms the timer when it reports; an exit never waits.
    if (s.phase != Phase::Spawning && s.phase != Phase::Exiting)
        out.add(Action::Kind::ArmTimer).at_ns = timer_due(s);
    return out;
}

uint64_t timer_due(const State &s) noexcept {
    switch (s.phase) {
    case Phase::Running:
        return s.deadline.next_deadline();
    case Phase::QuorumLost: {
        const uint64_t health = s.deadline.next_deadline();
        return health != 0 && health < s.kill_at_ns ? health : s.kill_at_ns;
    }
    case Phase::BackingOff:
        return s.restart_at_ns;
    case Phase::Spawning:
    case Phase::Idle:
    case Phase::AskingQuorum:
    case Phase::WaitingForQuorum:
    case Phase::PublishingStart:
    case Phase::PublishingStop:
    case Phase::Killing:
    case Phase::KillingMarked:
    case Phase::Exiting:
        return 0;
    }
    return 0;
}

bool has_instance(Phase p) noexcept { return p != Phase::Spawning && p != Phase::BackingOff && p != Phase::Exiting; }

bool was_started(Phase p) noexcept {
    switch (p) {
    case Phase::AskingQuorum:
    case Phase::WaitingForQuorum:
    case Phase::PublishingStart:
    case Phase::PublishingStop:
    case Phase::Running:
    case Phase::QuorumLost:
        return true;
    default:
        return false;
    }
}

bool health_timed(Phase p) noexcept { return p == Phase::Running || p == Phase::QuorumLost; }

bool is_killing(Phase p) noexcept { return p == Phase::Killing || p == Phase::KillingMarked; }

bool may_pass(int err) noexcept {
    switch (err) {
    case EAGAIN:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOSPC:
    case EINTR:
        return true;
    default:
        return false;
    }
}

} // namespace sam::core
