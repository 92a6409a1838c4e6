// SPDX-License-Identifier: BSD-3-Clause
// supervisor_core_setup.hpp - brings a supervisor core into each phase by
// real events only, for the phase x event table (check_supervisor_core.cpp).
#pragma once

#include <cerrno>
#include <csignal>
#include <string>

#include <sys/wait.h>

#include "supervisor_core.hpp"

namespace coretest {

using sam::core::Action;
using sam::core::Event;
using sam::core::Phase;
using sam::core::State;

constexpr uint64_t kMs = 1000000ULL;
constexpr uint64_t kT0 = 1000 * kMs; // the first event's time
constexpr int kPid = 4242;

// RESTART with QUORUM and CMAP (every phase is reachable), a 1 s health
// interval, and a back-off from the first failure (burst 0) so that a death
// backs off rather than restarts at once.
inline sam::core::Config full_config() {
    sam::core::Config c;
    c.policy.raw = SAM_RECOVERY_POLICY_RESTART | SAM_RECOVERY_POLICY_QUORUM | SAM_RECOVERY_POLICY_CMAP;
    c.link = true;
    c.interval_ms = 1000;
    c.backoff.burst = 0;
    c.backoff.delay_ms = 100;
    return c;
}

// The actions of one step as short words, ArmTimer left out (checked apart).
inline std::string describe(const sam::core::Actions &as) {
    std::string out;
    for (const Action &a : as) {
        if (a.kind == Action::Kind::ArmTimer)
            continue;
        if (!out.empty())
            out += ' ';
        switch (a.kind) {
        case Action::Kind::Signal:
            out += a.signal == SIGKILL ? "kill" : (a.queued ? "warn" : "forward");
            break;
        case Action::Kind::Reply:
            out += "reply:" + std::to_string(static_cast<int>(a.status));
            break;
        case Action::Kind::PublishState:
            out += a.cmap_state == sam::core::CmapState::Running
                       ? "publish:running"
                       : (a.cmap_state == sam::core::CmapState::Waiting ? "publish:waiting" : "publish:stopped");
            if (a.flag)
                out += "!";
            break;
        case Action::Kind::SetHealthy:
            out += a.flag ? "healthy" : "unhealthy";
            break;
        case Action::Kind::ExitLikeInstance:
            out += a.flag ? "exit:failed" : "exit";
            break;
        default: {
            std::string name = sam::core::action_name(a.kind);
            for (char &ch : name)
                if (ch == ' ')
                    ch = '-';
            out += name;
        }
        }
    }
    return out;
}

// A core and its clock; feed() steps it and keeps what it asked for.
struct Driver {
    State s;
    uint64_t now = kT0;
    uint64_t last_ticket = 0; // of the last PublishState (awaited) or CheckQuorum
    sam::core::Actions last;

    explicit Driver(const sam::core::Config &c = full_config()) : s(c, SIGTERM, /* quorate_now= */ true) {}

    const sam::core::Actions &feed(const Event &e) {
        last = sam::core::step(s, e);
        for (const Action &a : last)
            if ((a.kind == Action::Kind::PublishState && a.flag) || a.kind == Action::Kind::CheckQuorum)
                last_ticket = a.ticket;
        return last;
    }
    void at(uint64_t t) { now = t; }
    void later(uint64_t dt) { now += dt; }

    void spawned() { feed(Event::spawned(now, 1, kPid)); }
    void request(sam::core::Request r, uint64_t arg = 0) { feed(Event::request_of(now, r, arg)); }
    void answer_quorum(bool q) { feed(Event::quorum_answer(now, last_ticket, q)); }
    void written(cs_error_t st = CS_OK) { feed(Event::state_written(now, last_ticket, st)); }
};

// Drives a fresh core with `c` into phase `p` through events only.
inline Driver into(Phase p, const sam::core::Config &c = full_config()) {
    Driver d(c);
    d.feed(Event::begin(d.now));
    if (p == Phase::Spawning)
        return d;
    d.spawned();
    if (p == Phase::Idle)
        return d;
    if (p == Phase::Exiting) {
        d.feed(Event::died(d.now, 0, CLD_EXITED)); // not started: the supervisor exits
        return d;
    }
    if (p == Phase::Killing) {
        d.request(sam::core::Request::Oversized);
        return d;
    }
    d.request(sam::core::Request::Start);
    if (c.policy.quorum()) {
        if (p == Phase::AskingQuorum)
            return d;
        if (p == Phase::WaitingForQuorum) {
            d.answer_quorum(false);
            d.feed(Event::quorum(d.now, false)); // the notification agrees
            return d;
        }
        d.answer_quorum(true);
    }
    if (c.policy.cmap()) {
        if (p == Phase::PublishingStart)
            return d;
        d.written();
    }
    if (p == Phase::Running)
        return d;
    if (p == Phase::PublishingStop) {
        d.request(sam::core::Request::Stop);
        return d;
    }
    if (p == Phase::QuorumLost) {
        d.feed(Event::quorum(d.now, false));
        return d;
    }
    if (p == Phase::KillingMarked) {
        d.request(sam::core::Request::MarkFailed);
        return d;
    }
    if (p == Phase::BackingOff) {
        d.later(10 * kMs);
        d.feed(Event::died(d.now, 1, CLD_EXITED));
        return d;
    }
    return d;
}

// The event named `v` (the table's column), 1 ms after the driver's clock;
// "timer-due" fires when the core asked (or 1 ms later if it asked nothing).
inline Event event_named(const std::string &v, const Driver &d) {
    using sam::core::Request;
    const uint64_t n = d.now + kMs;
    if (v == "begin")
        return Event::begin(n);
    if (v == "spawned")
        return Event::spawned(n, 2, kPid + 1);
    if (v == "spawn-failed")
        return Event::spawn_failed(n, 2, "fork", EAGAIN);
    if (v == "died")
        return Event::died(n, 1, CLD_EXITED);
    if (v == "start")
        return Event::request_of(n, Request::Start);
    if (v == "stop")
        return Event::request_of(n, Request::Stop);
    if (v == "data")
        return Event::request_of(n, Request::Data);
    if (v == "warn-signal")
        return Event::request_of(n, Request::WarnSignalSet, SIGUSR1);
    if (v == "mark-failed")
        return Event::request_of(n, Request::MarkFailed);
    if (v == "oversized")
        return Event::request_of(n, Request::Oversized);
    if (v == "malformed")
        return Event::request_of(n, Request::Malformed, 0, "bad magic", 9);
    if (v == "closed")
        return Event::channel_closed(n);
    if (v == "data-ok")
        return Event::data_done(n, CS_OK);
    if (v == "data-refused")
        return Event::data_done(n, CS_ERR_TRY_AGAIN);
    if (v == "data-lie")
        return Event::data_done(n, CS_ERR_MESSAGE_ERROR, "lied about its data");
    if (v == "timer-early")
        return Event::timer(n, 0);
    if (v == "timer-due") {
        const uint64_t due = sam::core::timer_due(d.s);
        return Event::timer(due > n ? due : n, 0);
    }
    if (v == "sigterm")
        return Event::signal_of(n, SIGTERM);
    if (v == "sighup")
        return Event::signal_of(n, SIGHUP);
    if (v == "quorum-yes")
        return Event::quorum(n, true);
    if (v == "quorum-no")
        return Event::quorum(n, false);
    if (v == "answer-yes")
        return Event::quorum_answer(n, d.last_ticket, true);
    if (v == "answer-no")
        return Event::quorum_answer(n, d.last_ticket, false);
    if (v == "answer-stale")
        return Event::quorum_answer(n, d.last_ticket + 100, true);
    if (v == "written-ok")
        return Event::state_written(n, d.last_ticket, CS_OK);
    if (v == "written-error")
        return Event::state_written(n, d.last_ticket, CS_ERR_TRY_AGAIN);
    if (v == "written-stale")
        return Event::state_written(n, d.last_ticket + 100, CS_OK);
    return Event::begin(n); // unknown name: the table's check fails on it
}

} // namespace coretest
