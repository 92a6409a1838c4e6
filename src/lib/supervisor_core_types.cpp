// SPDX-License-Identifier: BSD-3-Clause
// supervisor_core_types.cpp - the core's events as the shell builds them,
// and the names of phases, events and actions (for tests and diagnostics).
#include "supervisor_core.hpp"

namespace sam::core {

Event Event::begin(uint64_t now) {
    Event e;
    e.kind = Kind::Begin;
    e.now_ns = now;
    return e;
}
Event Event::spawned(uint64_t now, unsigned iid, int pid) {
    Event e;
    e.kind = Kind::Spawned;
    e.now_ns = now;
    e.iid = iid;
    e.pid = pid;
    return e;
}
Event Event::spawn_failed(uint64_t now, unsigned iid, const char *what, int err) {
    Event e;
    e.kind = Kind::SpawnFailed;
    e.now_ns = now;
    e.iid = iid;
    e.detail = what;
    e.error = err;
    return e;
}
Event Event::died(uint64_t now, int status_code, int status_kind) {
    Event e;
    e.kind = Kind::Died;
    e.now_ns = now;
    e.status_code = status_code;
    e.status_kind = status_kind;
    return e;
}
Event Event::request_of(uint64_t now, Request r, uint64_t arg, const char *detail, int len) {
    Event e;
    e.kind = Kind::Request;
    e.now_ns = now;
    e.request = r;
    e.arg = arg;
    e.detail = detail;
    e.detail_len = len;
    return e;
}
Event Event::channel_closed(uint64_t now) {
    Event e;
    e.kind = Kind::ChannelClosed;
    e.now_ns = now;
    return e;
}
Event Event::data_done(uint64_t now, cs_error_t status, const char *lie) {
    Event e;
    e.kind = Kind::DataDone;
    e.now_ns = now;
    e.status = status;
    e.detail = lie;
    return e;
}
Event Event::timer(uint64_t now, uint64_t stamp, uint64_t starved_ns) {
    Event e;
    e.kind = Kind::Timer;
    e.now_ns = now;
    e.stamp_ns = stamp;
    e.starved_ns = starved_ns;
    return e;
}
Event Event::signal_of(uint64_t now, int sig) {
    Event e;
    e.kind = Kind::Signal;
    e.now_ns = now;
    e.signal = sig;
    return e;
}
Event Event::quorum(uint64_t now, bool quorate) {
    Event e;
    e.kind = Kind::Quorum;
    e.now_ns = now;
    e.quorate = quorate;
    return e;
}
Event Event::quorum_answer(uint64_t now, uint64_t ticket, bool quorate) {
    Event e;
    e.kind = Kind::QuorumAnswer;
    e.now_ns = now;
    e.ticket = ticket;
    e.quorate = quorate;
    return e;
}
Event Event::state_written(uint64_t now, uint64_t ticket, cs_error_t status) {
    Event e;
    e.kind = Kind::StateWritten;
    e.now_ns = now;
    e.ticket = ticket;
    e.status = status;
    return e;
}

const char *phase_name(Phase p) noexcept {
    static const char *const names[kPhaseCount] = {
        "spawning", "idle",        "asking quorum", "waiting for quorum",      "publishing start", "publishing stop",
        "running",  "quorum lost", "killing",       "killing (marked failed)", "backing off",      "exiting"};
    const auto i = static_cast<size_t>(p);
    return i < kPhaseCount ? names[i] : "?";
}

const char *event_name(Event::Kind k) noexcept {
    static const char *const names[kEventKindCount] = {"begin",   "spawned",        "spawn failed",  "died",
                                                       "request", "channel closed", "data done",     "timer",
                                                       "signal",  "quorum",         "quorum answer", "state written"};
    const auto i = static_cast<size_t>(k);
    return i < kEventKindCount ? names[i] : "?";
}

const char *action_name(Action::Kind k) noexcept {
    static const char *const names[kActionKindCount] = {
        "spawn",         "signal",       "release instance",   "drop channel",       "reply",
        "run data",      "commit data",  "set warn signal",    "note life",          "set healthy",
        "publish state", "check quorum", "prepare spare",      "reset cpu baseline", "keep cpu sample",
        "arm timer",     "log",          "exit like instance", "exit cannot go on",  "give up"};
    const auto i = static_cast<size_t>(k);
    return i < kActionKindCount ? names[i] : "?";
}

} // namespace sam::core
