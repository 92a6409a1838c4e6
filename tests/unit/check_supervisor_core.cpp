// SPDX-License-Identifier: BSD-3-Clause
// check_supervisor_core.cpp - tests of supervisor_core.hpp: the phase x
// event table (every phase meets every kind of event, the ignored
// combinations included), then the paths the table cannot show in one step
// (quorum rechecks, stale answers, the back-off, the timer's target).
#include <cstring>
#include <string>

#include <CppUTest/TestHarness.h>

#include "supervisor_core_setup.hpp"

using namespace coretest;
using sam::core::Request;
using P = sam::core::Phase;

namespace {

struct Row {
    P phase;             // reached from a fresh core by real events (into())
    const char *event;   // see event_named()
    const char *actions; // what the step asks, in order, ArmTimer left out
    P next;
};

// Replies: 1 CS_OK, 6 CS_ERR_TRY_AGAIN, 9 CS_ERR_BAD_HANDLE. "publish:X!" is
// an awaited write. With the full policy (RESTART, QUORUM, CMAP), a 1 s
// interval and a back-off from the first failure.
const Row kTable[] = {
    {P::Spawning, "begin", "spawn", P::Spawning},
    {P::Spawning, "spawned", "log", P::Idle},
    {P::Spawning, "spawn-failed", "log give-up", P::Exiting},
    {P::Spawning, "died", "", P::Spawning},
    {P::Spawning, "start", "", P::Spawning},
    {P::Spawning, "stop", "", P::Spawning},
    {P::Spawning, "data", "", P::Spawning},
    {P::Spawning, "warn-signal", "", P::Spawning},
    {P::Spawning, "mark-failed", "", P::Spawning},
    {P::Spawning, "oversized", "", P::Spawning},
    {P::Spawning, "malformed", "", P::Spawning},
    {P::Spawning, "closed", "", P::Spawning},
    {P::Spawning, "data-ok", "", P::Spawning},
    {P::Spawning, "data-refused", "", P::Spawning},
    {P::Spawning, "data-lie", "", P::Spawning},
    {P::Spawning, "timer-early", "", P::Spawning},
    {P::Spawning, "timer-due", "", P::Spawning},
    {P::Spawning, "sigterm", "", P::Spawning},
    {P::Spawning, "sighup", "", P::Spawning},
    {P::Spawning, "quorum-yes", "", P::Spawning},
    {P::Spawning, "quorum-no", "", P::Spawning},
    {P::Spawning, "answer-yes", "", P::Spawning},
    {P::Spawning, "answer-no", "", P::Spawning},
    {P::Spawning, "answer-stale", "", P::Spawning},
    {P::Spawning, "written-ok", "", P::Spawning},
    {P::Spawning, "written-error", "", P::Spawning},
    {P::Spawning, "written-stale", "", P::Spawning},

    {P::Idle, "begin", "", P::Idle},
    {P::Idle, "spawned", "", P::Idle},
    {P::Idle, "spawn-failed", "", P::Idle},
    {P::Idle, "died", "release-instance unhealthy log exit", P::Exiting},
    {P::Idle, "start", "note-life check-quorum", P::AskingQuorum},
    {P::Idle, "stop", "note-life reply:9", P::Idle},
    {P::Idle, "data", "note-life run-data", P::Idle},
    {P::Idle, "warn-signal", "note-life set-warn-signal reply:1", P::Idle},
    {P::Idle, "mark-failed", "note-life log kill drop-channel unhealthy", P::KillingMarked},
    {P::Idle, "oversized", "log kill drop-channel unhealthy", P::Killing},
    {P::Idle, "malformed", "log log kill drop-channel unhealthy", P::Killing},
    {P::Idle, "closed", "drop-channel", P::Idle},
    {P::Idle, "data-ok", "", P::Idle},
    {P::Idle, "data-refused", "", P::Idle},
    {P::Idle, "data-lie", "", P::Idle},
    {P::Idle, "timer-early", "", P::Idle},
    {P::Idle, "timer-due", "", P::Idle},
    {P::Idle, "sigterm", "log forward", P::Idle},
    {P::Idle, "sighup", "log forward", P::Idle},
    {P::Idle, "quorum-yes", "", P::Idle},
    {P::Idle, "quorum-no", "log", P::Idle},
    {P::Idle, "answer-yes", "", P::Idle},
    {P::Idle, "answer-no", "", P::Idle},
    {P::Idle, "answer-stale", "", P::Idle},
    {P::Idle, "written-ok", "", P::Idle},
    {P::Idle, "written-error", "", P::Idle},
    {P::Idle, "written-stale", "", P::Idle},

    {P::AskingQuorum, "begin", "", P::AskingQuorum},
    {P::AskingQuorum, "spawned", "", P::AskingQuorum},
    {P::AskingQuorum, "spawn-failed", "", P::AskingQuorum},
    {P::AskingQuorum, "died", "release-instance unhealthy log publish:stopped", P::BackingOff},
    {P::AskingQuorum, "start", "log kill drop-channel unhealthy", P::Killing},
    {P::AskingQuorum, "stop", "log kill drop-channel unhealthy", P::Killing},
    {P::AskingQuorum, "data", "log kill drop-channel unhealthy", P::Killing},
    {P::AskingQuorum, "warn-signal", "log kill drop-channel unhealthy", P::Killing},
    {P::AskingQuorum, "mark-failed", "log kill drop-channel unhealthy", P::Killing},
    {P::AskingQuorum, "oversized", "log kill drop-channel unhealthy", P::Killing},
    {P::AskingQuorum, "malformed", "log log kill drop-channel unhealthy", P::Killing},
    {P::AskingQuorum, "closed", "drop-channel", P::AskingQuorum},
    {P::AskingQuorum, "data-ok", "", P::AskingQuorum},
    {P::AskingQuorum, "data-refused", "", P::AskingQuorum},
    {P::AskingQuorum, "data-lie", "", P::AskingQuorum},
    {P::AskingQuorum, "timer-early", "", P::AskingQuorum},
    {P::AskingQuorum, "timer-due", "", P::AskingQuorum},
    {P::AskingQuorum, "sigterm", "log forward", P::AskingQuorum},
    {P::AskingQuorum, "sighup", "log forward", P::AskingQuorum},
    {P::AskingQuorum, "quorum-yes", "", P::AskingQuorum},
    {P::AskingQuorum, "quorum-no", "log", P::AskingQuorum},
    {P::AskingQuorum, "answer-yes", "publish:running!", P::PublishingStart},
    {P::AskingQuorum, "answer-no", "log publish:waiting", P::WaitingForQuorum},
    {P::AskingQuorum, "answer-stale", "", P::AskingQuorum},
    {P::AskingQuorum, "written-ok", "", P::AskingQuorum},
    {P::AskingQuorum, "written-error", "", P::AskingQuorum},
    {P::AskingQuorum, "written-stale", "", P::AskingQuorum},

    {P::WaitingForQuorum, "begin", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "spawned", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "spawn-failed", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "died", "release-instance unhealthy log publish:stopped", P::BackingOff},
    {P::WaitingForQuorum, "start", "log kill drop-channel unhealthy", P::Killing},
    {P::WaitingForQuorum, "stop", "log kill drop-channel unhealthy", P::Killing},
    {P::WaitingForQuorum, "data", "log kill drop-channel unhealthy", P::Killing},
    {P::WaitingForQuorum, "warn-signal", "log kill drop-channel unhealthy", P::Killing},
    {P::WaitingForQuorum, "mark-failed", "log kill drop-channel unhealthy", P::Killing},
    {P::WaitingForQuorum, "oversized", "log kill drop-channel unhealthy", P::Killing},
    {P::WaitingForQuorum, "malformed", "log log kill drop-channel unhealthy", P::Killing},
    {P::WaitingForQuorum, "closed", "drop-channel", P::WaitingForQuorum},
    {P::WaitingForQuorum, "data-ok", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "data-refused", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "data-lie", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "timer-early", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "timer-due", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "sigterm", "log forward", P::WaitingForQuorum},
    {P::WaitingForQuorum, "sighup", "log forward", P::WaitingForQuorum},
    {P::WaitingForQuorum, "quorum-yes", "log check-quorum", P::WaitingForQuorum},
    {P::WaitingForQuorum, "quorum-no", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "answer-yes", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "answer-no", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "answer-stale", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "written-ok", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "written-error", "", P::WaitingForQuorum},
    {P::WaitingForQuorum, "written-stale", "", P::WaitingForQuorum},

    {P::PublishingStart, "begin", "", P::PublishingStart},
    {P::PublishingStart, "spawned", "", P::PublishingStart},
    {P::PublishingStart, "spawn-failed", "", P::PublishingStart},
    {P::PublishingStart, "died", "release-instance unhealthy log publish:stopped", P::BackingOff},
    {P::PublishingStart, "start", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStart, "stop", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStart, "data", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStart, "warn-signal", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStart, "mark-failed", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStart, "oversized", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStart, "malformed", "log log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStart, "closed", "drop-channel", P::PublishingStart},
    {P::PublishingStart, "data-ok", "", P::PublishingStart},
    {P::PublishingStart, "data-refused", "", P::PublishingStart},
    {P::PublishingStart, "data-lie", "", P::PublishingStart},
    {P::PublishingStart, "timer-early", "", P::PublishingStart},
    {P::PublishingStart, "timer-due", "", P::PublishingStart},
    {P::PublishingStart, "sigterm", "log forward", P::PublishingStart},
    {P::PublishingStart, "sighup", "log forward", P::PublishingStart},
    {P::PublishingStart, "quorum-yes", "", P::PublishingStart},
    {P::PublishingStart, "quorum-no", "log", P::PublishingStart},
    {P::PublishingStart, "answer-yes", "", P::PublishingStart},
    {P::PublishingStart, "answer-no", "", P::PublishingStart},
    {P::PublishingStart, "answer-stale", "", P::PublishingStart},
    {P::PublishingStart, "written-ok", "reset-cpu-baseline healthy prepare-spare reply:1", P::Running},
    {P::PublishingStart, "written-error", "log publish:stopped reply:6", P::Idle},
    {P::PublishingStart, "written-stale", "", P::PublishingStart},

    {P::PublishingStop, "begin", "", P::PublishingStop},
    {P::PublishingStop, "spawned", "", P::PublishingStop},
    {P::PublishingStop, "spawn-failed", "", P::PublishingStop},
    {P::PublishingStop, "died", "release-instance unhealthy log publish:stopped", P::BackingOff},
    {P::PublishingStop, "start", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStop, "stop", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStop, "data", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStop, "warn-signal", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStop, "mark-failed", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStop, "oversized", "log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStop, "malformed", "log log kill drop-channel unhealthy", P::Killing},
    {P::PublishingStop, "closed", "drop-channel", P::PublishingStop},
    {P::PublishingStop, "data-ok", "", P::PublishingStop},
    {P::PublishingStop, "data-refused", "", P::PublishingStop},
    {P::PublishingStop, "data-lie", "", P::PublishingStop},
    {P::PublishingStop, "timer-early", "", P::PublishingStop},
    {P::PublishingStop, "timer-due", "", P::PublishingStop},
    {P::PublishingStop, "sigterm", "log forward", P::PublishingStop},
    {P::PublishingStop, "sighup", "log forward", P::PublishingStop},
    {P::PublishingStop, "quorum-yes", "", P::PublishingStop},
    {P::PublishingStop, "quorum-no", "log", P::PublishingStop},
    {P::PublishingStop, "answer-yes", "", P::PublishingStop},
    {P::PublishingStop, "answer-no", "", P::PublishingStop},
    {P::PublishingStop, "answer-stale", "", P::PublishingStop},
    {P::PublishingStop, "written-ok", "reply:1", P::Idle},
    {P::PublishingStop, "written-error", "log reset-cpu-baseline healthy publish:running reply:6", P::Running},
    {P::PublishingStop, "written-stale", "", P::PublishingStop},

    {P::Running, "begin", "", P::Running},
    {P::Running, "spawned", "", P::Running},
    {P::Running, "spawn-failed", "", P::Running},
    {P::Running, "died", "release-instance unhealthy log publish:stopped", P::BackingOff},
    {P::Running, "start", "note-life reply:9", P::Running},
    {P::Running, "stop", "note-life unhealthy publish:stopped!", P::PublishingStop},
    {P::Running, "data", "note-life run-data", P::Running},
    {P::Running, "warn-signal", "note-life set-warn-signal reply:1", P::Running},
    {P::Running, "mark-failed", "note-life log kill drop-channel unhealthy", P::KillingMarked},
    {P::Running, "oversized", "log kill drop-channel unhealthy", P::Killing},
    {P::Running, "malformed", "log log kill drop-channel unhealthy", P::Killing},
    {P::Running, "closed", "drop-channel", P::Running},
    {P::Running, "data-ok", "", P::Running},
    {P::Running, "data-refused", "", P::Running},
    {P::Running, "data-lie", "", P::Running},
    {P::Running, "timer-early", "", P::Running},
    {P::Running, "timer-due", "log warn unhealthy", P::Running},
    {P::Running, "sigterm", "log forward", P::Running},
    {P::Running, "sighup", "log forward", P::Running},
    {P::Running, "quorum-yes", "", P::Running},
    {P::Running, "quorum-no", "log log warn unhealthy", P::QuorumLost},
    {P::Running, "answer-yes", "", P::Running},
    {P::Running, "answer-no", "", P::Running},
    {P::Running, "answer-stale", "", P::Running},
    {P::Running, "written-ok", "", P::Running},
    {P::Running, "written-error", "", P::Running},
    {P::Running, "written-stale", "", P::Running},

    {P::QuorumLost, "begin", "", P::QuorumLost},
    {P::QuorumLost, "spawned", "", P::QuorumLost},
    {P::QuorumLost, "spawn-failed", "", P::QuorumLost},
    {P::QuorumLost, "died", "release-instance unhealthy log publish:stopped", P::BackingOff},
    {P::QuorumLost, "start", "note-life reply:9", P::QuorumLost},
    {P::QuorumLost, "stop", "note-life unhealthy publish:stopped!", P::PublishingStop},
    {P::QuorumLost, "data", "note-life run-data", P::QuorumLost},
    {P::QuorumLost, "warn-signal", "note-life set-warn-signal reply:1", P::QuorumLost},
    {P::QuorumLost, "mark-failed", "note-life log kill drop-channel unhealthy", P::KillingMarked},
    {P::QuorumLost, "oversized", "log kill drop-channel unhealthy", P::Killing},
    {P::QuorumLost, "malformed", "log log kill drop-channel unhealthy", P::Killing},
    {P::QuorumLost, "closed", "drop-channel", P::QuorumLost},
    {P::QuorumLost, "data-ok", "", P::QuorumLost},
    {P::QuorumLost, "data-refused", "", P::QuorumLost},
    {P::QuorumLost, "data-lie", "", P::QuorumLost},
    {P::QuorumLost, "timer-early", "", P::QuorumLost},
    {P::QuorumLost, "timer-due", "log kill drop-channel unhealthy", P::Killing},
    {P::QuorumLost, "sigterm", "log forward", P::QuorumLost},
    {P::QuorumLost, "sighup", "log forward", P::QuorumLost},
    {P::QuorumLost, "quorum-yes", "log", P::QuorumLost},
    {P::QuorumLost, "quorum-no", "", P::QuorumLost},
    {P::QuorumLost, "answer-yes", "", P::QuorumLost},
    {P::QuorumLost, "answer-no", "", P::QuorumLost},
    {P::QuorumLost, "answer-stale", "", P::QuorumLost},
    {P::QuorumLost, "written-ok", "", P::QuorumLost},
    {P::QuorumLost, "written-error", "", P::QuorumLost},
    {P::QuorumLost, "written-stale", "", P::QuorumLost},

    {P::Killing, "begin", "", P::Killing},
    {P::Killing, "spawned", "", P::Killing},
    {P::Killing, "spawn-failed", "", P::Killing},
    {P::Killing, "died", "release-instance unhealthy log publish:stopped", P::BackingOff},
    {P::Killing, "start", "", P::Killing},
    {P::Killing, "stop", "", P::Killing},
    {P::Killing, "data", "", P::Killing},
    {P::Killing, "warn-signal", "", P::Killing},
    {P::Killing, "mark-failed", "", P::Killing},
    {P::Killing, "oversized", "", P::Killing},
    {P::Killing, "malformed", "", P::Killing},
    {P::Killing, "closed", "", P::Killing},
    {P::Killing, "data-ok", "", P::Killing},
    {P::Killing, "data-refused", "", P::Killing},
    {P::Killing, "data-lie", "", P::Killing},
    {P::Killing, "timer-early", "", P::Killing},
    {P::Killing, "timer-due", "", P::Killing},
    {P::Killing, "sigterm", "log forward", P::Killing},
    {P::Killing, "sighup", "log forward", P::Killing},
    {P::Killing, "quorum-yes", "", P::Killing},
    {P::Killing, "quorum-no", "log", P::Killing},
    {P::Killing, "answer-yes", "", P::Killing},
    {P::Killing, "answer-no", "", P::Killing},
    {P::Killing, "answer-stale", "", P::Killing},
    {P::Killing, "written-ok", "", P::Killing},
    {P::Killing, "written-error", "", P::Killing},
    {P::Killing, "written-stale", "", P::Killing},

    {P::KillingMarked, "begin", "", P::KillingMarked},
    {P::KillingMarked, "spawned", "", P::KillingMarked},
    {P::KillingMarked, "spawn-failed", "", P::KillingMarked},
    {P::KillingMarked, "died", "release-instance unhealthy log exit:failed", P::Exiting},
    {P::KillingMarked, "start", "", P::KillingMarked},
    {P::KillingMarked, "stop", "", P::KillingMarked},
    {P::KillingMarked, "data", "", P::KillingMarked},
    {P::KillingMarked, "warn-signal", "", P::KillingMarked},
    {P::KillingMarked, "mark-failed", "", P::KillingMarked},
    {P::KillingMarked, "oversized", "", P::KillingMarked},
    {P::KillingMarked, "malformed", "", P::KillingMarked},
    {P::KillingMarked, "closed", "", P::KillingMarked},
    {P::KillingMarked, "data-ok", "", P::KillingMarked},
    {P::KillingMarked, "data-refused", "", P::KillingMarked},
    {P::KillingMarked, "data-lie", "", P::KillingMarked},
    {P::KillingMarked, "timer-early", "", P::KillingMarked},
    {P::KillingMarked, "timer-due", "", P::KillingMarked},
    {P::KillingMarked, "sigterm", "log forward", P::KillingMarked},
    {P::KillingMarked, "sighup", "log forward", P::KillingMarked},
    {P::KillingMarked, "quorum-yes", "", P::KillingMarked},
    {P::KillingMarked, "quorum-no", "log", P::KillingMarked},
    {P::KillingMarked, "answer-yes", "", P::KillingMarked},
    {P::KillingMarked, "answer-no", "", P::KillingMarked},
    {P::KillingMarked, "answer-stale", "", P::KillingMarked},
    {P::KillingMarked, "written-ok", "", P::KillingMarked},
    {P::KillingMarked, "written-error", "", P::KillingMarked},
    {P::KillingMarked, "written-stale", "", P::KillingMarked},

    {P::BackingOff, "begin", "", P::BackingOff},
    {P::BackingOff, "spawned", "", P::BackingOff},
    {P::BackingOff, "spawn-failed", "", P::BackingOff},
    {P::BackingOff, "died", "", P::BackingOff},
    {P::BackingOff, "start", "", P::BackingOff},
    {P::BackingOff, "stop", "", P::BackingOff},
    {P::BackingOff, "data", "", P::BackingOff},
    {P::BackingOff, "warn-signal", "", P::BackingOff},
    {P::BackingOff, "mark-failed", "", P::BackingOff},
    {P::BackingOff, "oversized", "", P::BackingOff},
    {P::BackingOff, "malformed", "", P::BackingOff},
    {P::BackingOff, "closed", "", P::BackingOff},
    {P::BackingOff, "data-ok", "", P::BackingOff},
    {P::BackingOff, "data-refused", "", P::BackingOff},
    {P::BackingOff, "data-lie", "", P::BackingOff},
    {P::BackingOff, "timer-early", "", P::BackingOff},
    {P::BackingOff, "timer-due", "spawn", P::Spawning},
    {P::BackingOff, "sigterm", "log exit", P::Exiting},
    {P::BackingOff, "sighup", "", P::BackingOff},
    {P::BackingOff, "quorum-yes", "", P::BackingOff},
    {P::BackingOff, "quorum-no", "log", P::BackingOff},
    {P::BackingOff, "answer-yes", "", P::BackingOff},
    {P::BackingOff, "answer-no", "", P::BackingOff},
    {P::BackingOff, "answer-stale", "", P::BackingOff},
    {P::BackingOff, "written-ok", "", P::BackingOff},
    {P::BackingOff, "written-error", "", P::BackingOff},
    {P::BackingOff, "written-stale", "", P::BackingOff},

    {P::Exiting, "begin", "", P::Exiting},
    {P::Exiting, "spawned", "", P::Exiting},
    {P::Exiting, "spawn-failed", "", P::Exiting},
    {P::Exiting, "died", "", P::Exiting},
    {P::Exiting, "start", "", P::Exiting},
    {P::Exiting, "stop", "", P::Exiting},
    {P::Exiting, "data", "", P::Exiting},
    {P::Exiting, "warn-signal", "", P::Exiting},
    {P::Exiting, "mark-failed", "", P::Exiting},
    {P::Exiting, "oversized", "", P::Exiting},
    {P::Exiting, "malformed", "", P::Exiting},
    {P::Exiting, "closed", "", P::Exiting},
    {P::Exiting, "data-ok", "", P::Exiting},
    {P::Exiting, "data-refused", "", P::Exiting},
    {P::Exiting, "data-lie", "", P::Exiting},
    {P::Exiting, "timer-early", "", P::Exiting},
    {P::Exiting, "timer-due", "", P::Exiting},
    {P::Exiting, "sigterm", "", P::Exiting},
    {P::Exiting, "sighup", "", P::Exiting},
    {P::Exiting, "quorum-yes", "", P::Exiting},
    {P::Exiting, "quorum-no", "", P::Exiting},
    {P::Exiting, "answer-yes", "", P::Exiting},
    {P::Exiting, "answer-no", "", P::Exiting},
    {P::Exiting, "answer-stale", "", P::Exiting},
    {P::Exiting, "written-ok", "", P::Exiting},
    {P::Exiting, "written-error", "", P::Exiting},
    {P::Exiting, "written-stale", "", P::Exiting},
};

bool ends(P p) { return p == P::Spawning || p == P::Exiting; }

} // namespace

TEST_GROUP(SupervisorCore){};

TEST(SupervisorCore, PhaseByEventTable) {
    size_t rows_per_phase[sam::core::kPhaseCount] = {};
    for (const Row &r : kTable) {
        Driver d = into(r.phase);
        const std::string where = std::string(sam::core::phase_name(r.phase)) + " x " + r.event;
        CHECK_TEXT(d.s.phase == r.phase, ("set-up did not reach " + where).c_str());
        const bool channel_before = d.s.channel_open;
        const sam::core::Actions &as = d.feed(event_named(r.event, d));
        STRCMP_EQUAL_TEXT(r.actions, describe(as).c_str(), where.c_str());
        STRCMP_EQUAL_TEXT(sam::core::phase_name(r.next), sam::core::phase_name(d.s.phase), where.c_str());
        // The timer: armed for what the core wants at the end of every step,
        // except while a fork is under way or the supervisor ends.
        size_t arms = 0;
        for (const sam::core::Action &a : as) {
            if (a.kind != sam::core::Action::Kind::ArmTimer)
                continue;
            ++arms;
            UNSIGNED_LONGS_EQUAL_TEXT(sam::core::timer_due(d.s), a.at_ns, where.c_str());
            CHECK_TEXT(&a == as.end() - 1, where.c_str());
        }
        UNSIGNED_LONGS_EQUAL_TEXT(ends(d.s.phase) ? 0 : 1, arms, where.c_str());
        // A reply goes only where the instance can read it; a phase without
        // an instance has no channel and no pending request.
        for (const sam::core::Action &a : as)
            if (a.kind == sam::core::Action::Kind::Reply)
                CHECK_TEXT(channel_before, where.c_str());
        if (!sam::core::has_instance(d.s.phase) || sam::core::is_killing(d.s.phase))
            CHECK_TEXT(!d.s.channel_open && d.s.pending == sam::core::Pending::None, where.c_str());
        ++rows_per_phase[static_cast<size_t>(r.phase)];
    }
    // Every phase meets every event of the table's columns.
    for (size_t p = 0; p < sam::core::kPhaseCount; ++p)
        UNSIGNED_LONGS_EQUAL_TEXT(27, rows_per_phase[p], sam::core::phase_name(static_cast<P>(p)));
}

namespace {

sam::core::Config plain_config(unsigned policy) {
    sam::core::Config c;
    c.policy.raw = policy;
    c.interval_ms = 1000;
    return c;
}

const sam::core::Action *find(const sam::core::Actions &as, sam::core::Action::Kind k) {
    for (const sam::core::Action &a : as)
        if (a.kind == k)
            return &a;
    return nullptr;
}

} // namespace

// Without a link nothing waits for corosync: a start runs at once, a stop
// stops at once, and marking failed is refused (it needs CMAP).
TEST(SupervisorCore, WithoutLinkStartAndStopAnswerAtOnce) {
    Driver d = into(P::Idle, plain_config(SAM_RECOVERY_POLICY_RESTART));
    d.request(Request::Start);
    STRCMP_EQUAL("reset-cpu-baseline prepare-spare reply:1", describe(d.last).c_str());
    CHECK(d.s.phase == P::Running);
    UNSIGNED_LONGS_EQUAL(d.now + 1000 * kMs, sam::core::timer_due(d.s));
    d.request(Request::MarkFailed);
    STRCMP_EQUAL("reply:7", describe(d.last).c_str()); // CS_ERR_INVALID_PARAM
    d.request(Request::Stop);
    STRCMP_EQUAL("reply:1", describe(d.last).c_str());
    CHECK(d.s.phase == P::Idle);
    UNSIGNED_LONGS_EQUAL(0, sam::core::timer_due(d.s));
}

TEST(SupervisorCore, PolicyQuitExitsWithAFailedInstance) {
    Driver d = into(P::Running, plain_config(SAM_RECOVERY_POLICY_QUIT));
    d.feed(Event::died(d.now, SIGSEGV, CLD_KILLED));
    STRCMP_EQUAL("release-instance log exit:failed", describe(d.last).c_str());
    const sam::core::Action *exit = find(d.last, sam::core::Action::Kind::ExitLikeInstance);
    CHECK(exit != nullptr);
    LONGS_EQUAL(SIGSEGV, exit->status_code);
    LONGS_EQUAL(CLD_KILLED, exit->status_kind);
    STRCMP_CONTAINS("was killed by SIGSEGV", d.last[1].text);
}

// Reaped by someone else before its pidfd was open: a death with no status,
// before any start, ends the supervisor.
TEST(SupervisorCore, InstanceReapedAtOnceEndsTheSupervisor) {
    Driver d = into(P::Idle);
    d.feed(Event::died(d.now, 0, sam::core::kStatusUnknown));
    CHECK(d.s.phase == P::Exiting);
    STRCMP_CONTAINS("reaped elsewhere", find(d.last, sam::core::Action::Kind::Log)->text);
    // Nothing happens after the end.
    CHECK(d.feed(Event::signal_of(d.now, SIGTERM)).empty());
}

// Quorum comes back while the instance waits: corosync is asked, and only
// its answer starts the instance.
TEST(SupervisorCore, WaitingForQuorumStartsOnCorosyncsAnswerOnly) {
    Driver d = into(P::WaitingForQuorum);
    d.feed(Event::quorum(d.now, true));
    STRCMP_EQUAL("log check-quorum", describe(d.last).c_str());
    d.answer_quorum(false); // a notification was ahead of corosync: wait on, silently
    STRCMP_EQUAL("", describe(d.last).c_str());
    CHECK(d.s.phase == P::WaitingForQuorum);
    d.feed(Event::quorum(d.now, false));
    d.feed(Event::quorum(d.now, true));
    d.answer_quorum(true);
    STRCMP_EQUAL("publish:running!", describe(d.last).c_str());
    CHECK(d.s.phase == P::PublishingStart);
    CHECK(d.s.pending == sam::core::Pending::Start);
}

// A notification while a question is in flight asks again once the answer
// is no: the answer may predate it.
TEST(SupervisorCore, QuorumNotificationDuringAQuestionAsksAgain) {
    Driver d = into(P::Idle);
    d.feed(Event::quorum(d.now, false));
    d.request(Request::Start);
    const uint64_t first = d.last_ticket;
    d.feed(Event::quorum(d.now, true));
    STRCMP_EQUAL("log", describe(d.last).c_str()); // no second question while one is in flight
    d.feed(Event::quorum_answer(d.now, first, false));
    STRCMP_EQUAL("log publish:waiting check-quorum", describe(d.last).c_str());
    CHECK(d.s.phase == P::WaitingForQuorum);
    CHECK(d.last_ticket != first);
    d.feed(Event::quorum_answer(d.now, first, true)); // the old answer again: stale
    CHECK(d.s.phase == P::WaitingForQuorum);
    d.answer_quorum(true);
    CHECK(d.s.phase == P::PublishingStart);
}

// Quorum went away while "running" was being written: the start waits.
TEST(SupervisorCore, QuorumLostDuringTheStartWriteWaits) {
    Driver d = into(P::PublishingStart);
    d.feed(Event::quorum(d.now, false));
    CHECK(d.s.phase == P::PublishingStart);
    d.written();
    STRCMP_EQUAL("log publish:waiting", describe(d.last).c_str());
    CHECK(d.s.phase == P::WaitingForQuorum);
    CHECK(d.s.pending == sam::core::Pending::Start);
}

// An answer meant for an earlier instance never starts the next one.
TEST(SupervisorCore, AnswersForAnEarlierInstanceAreDropped) {
    Driver d = into(P::AskingQuorum);
    const uint64_t old = d.last_ticket;
    d.feed(Event::died(d.now, 1, CLD_EXITED));
    d.feed(Event::timer(sam::core::timer_due(d.s), 0));
    STRCMP_EQUAL("spawn", describe(d.last).c_str());
    d.spawned();
    d.feed(Event::quorum_answer(d.now, old, true));
    STRCMP_EQUAL("", describe(d.last).c_str());
    CHECK(d.s.phase == P::Idle);
}

TEST(SupervisorCore, DataRequestsEndInOneReplyOrAKill) {
    Driver d = into(P::Running);
    d.request(Request::Data);
    CHECK(d.s.pending == sam::core::Pending::Data);
    d.feed(Event::data_done(d.now, CS_OK));
    STRCMP_EQUAL("commit-data reply:1", describe(d.last).c_str());
    CHECK(d.s.pending == sam::core::Pending::None);

    d.request(Request::Data);
    d.feed(Event::data_done(d.now, CS_ERR_NO_MEMORY));
    STRCMP_EQUAL("reply:8", describe(d.last).c_str()); // CS_ERR_NO_MEMORY

    d.request(Request::Data);
    d.request(Request::Data); // a second request before the reply: hostile
    CHECK(d.s.phase == P::Killing);
    STRCMP_CONTAINS("while another was pending", d.last[0].text);
    d.feed(Event::data_done(d.now, CS_OK)); // the read of a killed instance ends: nothing stored
    STRCMP_EQUAL("", describe(d.last).c_str());

    Driver e = into(P::Idle);
    e.request(Request::Data);
    e.feed(Event::data_done(e.now, CS_ERR_MESSAGE_ERROR, "lied about its data"));
    CHECK(e.s.phase == P::Killing);
    STRCMP_CONTAINS("lied about its data; sending SIGKILL", e.last[0].text);

    Driver f = into(P::Idle);
    f.request(Request::Data);
    f.feed(Event::channel_closed(f.now));
    f.feed(Event::data_done(f.now, CS_OK));
    STRCMP_EQUAL("", describe(f.last).c_str());
}

// Quorum lost while running: warned at once, killed an interval later even
// if quorum comes back; lost again, the kill moves to an interval from then.
TEST(SupervisorCore, QuorumLossWarnsThenKills) {
    Driver d = into(P::Running);
    d.later(100 * kMs);
    d.feed(Event::quorum(d.now, false));
    CHECK(d.s.phase == P::QuorumLost);
    UNSIGNED_LONGS_EQUAL(d.now + 1000 * kMs, d.s.kill_at_ns);
    d.later(100 * kMs);
    d.feed(Event::quorum(d.now, true));
    STRCMP_EQUAL("log", describe(d.last).c_str());
    CHECK(d.s.phase == P::QuorumLost);
    d.later(100 * kMs);
    d.feed(Event::quorum(d.now, false));
    STRCMP_EQUAL("log", describe(d.last).c_str()); // warned once only
    UNSIGNED_LONGS_EQUAL(d.now + 1000 * kMs, d.s.kill_at_ns);
    d.feed(Event::timer(d.s.kill_at_ns, d.now));
    CHECK(d.s.phase == P::Killing);
    STRCMP_CONTAINS("warn signal for quorum loss", d.last[0].text);
}

// The quorum kill time belongs to its instance: after its death the timer
// serves the restart only.
TEST(SupervisorCore, BackOffAfterAQuorumKillArmsTheRestartOnly) {
    Driver d = into(P::QuorumLost);
    const uint64_t kill_at = d.s.kill_at_ns;
    d.s.config.backoff.delay_ms = 5000; // a restart later than the kill time
    d.s.backoff = sam::RestartBackoff(d.s.config.backoff);
    d.feed(Event::died(d.now, 0, CLD_EXITED));
    CHECK(d.s.phase == P::BackingOff);
    const sam::core::Action *arm = find(d.last, sam::core::Action::Kind::ArmTimer);
    CHECK(arm != nullptr);
    CHECK(arm->at_ns > kill_at);
    UNSIGNED_LONGS_EQUAL(d.s.restart_at_ns, arm->at_ns);
    d.feed(Event::timer(kill_at, 0)); // woken early (a log flush): nothing due
    STRCMP_EQUAL("", describe(d.last).c_str());
    UNSIGNED_LONGS_EQUAL(d.s.restart_at_ns, d.last[0].at_ns);
}

TEST(SupervisorCore, RestartAtOnceInsideTheBurst) {
    sam::core::Config c = full_config();
    c.backoff.burst = 3;
    Driver d = into(P::Running, c);
    d.later(50 * kMs);
    d.feed(Event::died(d.now, 3, CLD_EXITED));
    STRCMP_EQUAL("release-instance unhealthy log spawn", describe(d.last).c_str());
    CHECK(d.last[2].flag); // logged soon: the new instance runs first
    STRCMP_CONTAINS("exited with status 3) after 50 ms; restarting", d.last[2].text);
    CHECK(d.s.phase == P::Spawning);
}

// A restart that cannot be forked: retried while the shortage may pass,
// the end otherwise; the first instance failing makes sam_register() fail.
TEST(SupervisorCore, SpawnFailures) {
    Driver d = into(P::BackingOff);
    d.feed(Event::timer(d.s.restart_at_ns, 0));
    d.feed(Event::spawn_failed(d.now, 2, "fork", EAGAIN));
    CHECK(d.s.phase == P::BackingOff);
    CHECK(d.s.restart_at_ns >= d.now + sam::core::kSpawnRetryMinMs * kMs);
    d.feed(Event::timer(d.s.restart_at_ns, 0));
    d.feed(Event::spawn_failed(d.now, 2, "fork", EPERM));
    STRCMP_EQUAL("log exit-cannot-go-on", describe(d.last).c_str());
    CHECK(d.s.phase == P::Exiting);

    Driver first;
    first.feed(Event::begin(first.now));
    first.feed(Event::spawn_failed(first.now, 1, "fork", EAGAIN));
    STRCMP_EQUAL("log give-up", describe(first.last).c_str());
}

// After a stop signal the instance's end is the supervisor's, started or not.
TEST(SupervisorCore, StopSignalEndsSupervisionWhenTheInstanceEnds) {
    Driver d = into(P::Running);
    d.feed(Event::signal_of(d.now, SIGINT));
    STRCMP_CONTAINS("no restart after it ends", d.last[0].text);
    CHECK(d.s.phase == P::Running);
    d.feed(Event::died(d.now, SIGINT, CLD_KILLED));
    STRCMP_EQUAL("release-instance unhealthy log exit", describe(d.last).c_str());
}

// The timer's verdicts, as health.hpp decides them, become actions.
TEST(SupervisorCore, HealthVerdictsBecomeActions) {
    Driver d = into(P::Running);
    const uint64_t started = d.now;
    d.feed(Event::timer(started + 500 * kMs, started + 400 * kMs)); // a beat: the CPU baseline moves
    STRCMP_EQUAL("keep-cpu-sample", describe(d.last).c_str());
    UNSIGNED_LONGS_EQUAL(started + 400 * kMs, d.last[0].at_ns);
    UNSIGNED_LONGS_EQUAL(started + 1400 * kMs, sam::core::timer_due(d.s));
    d.feed(Event::timer(started + 1400 * kMs, 0));
    STRCMP_EQUAL("log warn unhealthy", describe(d.last).c_str());
    LONGS_EQUAL(SIGTERM, d.last[1].signal);
    d.request(Request::WarnSignalSet, SIGUSR2); // a later warn goes by the new signal
    LONGS_EQUAL(SIGUSR2, d.s.warn_signal);
    d.feed(Event::timer(sam::core::timer_due(d.s), 0));
    STRCMP_EQUAL("log kill drop-channel unhealthy", describe(d.last).c_str());

    Driver e = into(P::Running);
    e.feed(Event::timer(e.now + kMs, e.now + 60000 * kMs)); // a stamp from the future
    CHECK(e.s.phase == P::Killing);
    STRCMP_CONTAINS("time in the future", e.last[0].text);

    Driver f = into(P::Running);
    f.feed(Event::timer(sam::core::timer_due(f.s), 0, /* starved_ns= */ 900 * kMs));
    STRCMP_EQUAL("log", describe(f.last).c_str()); // a stall buys one interval
    STRCMP_CONTAINS("the machine stalled", f.last[0].text);
    CHECK(f.s.phase == P::Running);
}

// A failed write leaves the request's phase as it was, and cmap is told
// what really holds.
TEST(SupervisorCore, FailedWritesChangeNothing) {
    Driver d = into(P::PublishingStop);
    d.written(CS_ERR_TIMEOUT);
    CHECK(d.s.phase == P::Running);
    CHECK(sam::core::timer_due(d.s) != 0);
    const sam::core::Action *reply = find(d.last, sam::core::Action::Kind::Reply);
    CHECK(reply != nullptr);
    LONGS_EQUAL(CS_ERR_TIMEOUT, reply->status);
}
