// SPDX-License-Identifier: BSD-3-Clause
// blocking_signals.hpp - signals while the relay's main thread is stuck in a
// blocking libsam call. sam_start() blocks while the cluster is inquorate;
// meanwhile a helper thread forwards the relay's signals to the program. When
// there is no program (not started yet, or it has ended), or the program ends
// after a stop signal was forwarded, nothing would ever pass the signal on:
// the relay then leaves at once, by the signal or the way the program left,
// and the supervisor, which sent the stop, leaves the same way. Scoped: the
// thread lives as long as the object.
#pragma once

#include <atomic>
#include <thread>

#include "base.hpp"
#include "containment.hpp"

namespace samrun {

class SignalsDuringBlockingCall {
  public:
    // `program_pidfd` < 0: no program (yet, or any more); signals go to
    // the whole of `group`, which is ended before the relay leaves.
    SignalsDuringBlockingCall(int signal_fd, int program_pidfd, ProgramGroup &group);
    ~SignalsDuringBlockingCall();
    SignalsDuringBlockingCall(const SignalsDuringBlockingCall &) = delete;
    SignalsDuringBlockingCall &operator=(const SignalsDuringBlockingCall &) = delete;

    // SIGTERM or SIGINT if one was passed on to the program, else 0.
    [[nodiscard]] int stop_forwarded() const { return stop_forwarded_.load(); }

  private:
    void watch(int signal_fd, int program_pidfd, ProgramGroup &group);
    [[noreturn]] static void leave_by(int sig);

    UniqueFd wake_;
    std::atomic<int> stop_forwarded_{0};
    std::thread thread_; // last: it starts running in the constructor
};

} // namespace samrun
