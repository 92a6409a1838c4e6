// SPDX-License-Identifier: BSD-3-Clause
// blocking_signals.cpp - see blocking_signals.hpp.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base.hpp"
#include "blocking_signals.hpp"
#include "log.hpp"
#include "options.hpp"
#include "pidfd.hpp"
#include "process.hpp"

namespace samrun {

SignalsDuringBlockingCall::SignalsDuringBlockingCall(int signal_fd, int program_pidfd, ProgramGroup &group)
    : wake_(eventfd(0, EFD_CLOEXEC)),
      thread_([this, signal_fd, program_pidfd, &group] { watch(signal_fd, program_pidfd, group); }) {}

SignalsDuringBlockingCall::~SignalsDuringBlockingCall() {
    uint64_t one = 1;
    // If the eventfd could not be made, poll() below returns at once.
    (void)!write(wake_.get(), &one, sizeof one);
    thread_.join();
}

void SignalsDuringBlockingCall::leave_by(int sig) {
    // Only this thread unblocks it, so it is delivered here, now, with its
    // default action: the whole relay ends by it.
    die_by_signal(sig);
}

// The main thread is blocked in libsam meanwhile: `group` is ours alone.
void SignalsDuringBlockingCall::watch(int signal_fd, int program_pidfd, ProgramGroup &group) {
    for (;;) {
        pollfd fds[3] = {{signal_fd, POLLIN, 0}, {wake_.get(), POLLIN, 0}, {program_pidfd, POLLIN, 0}};
        if (poll(fds, 3, -1) < 0 && errno != EINTR) {
            return;
        }
        if (fds[1].revents != 0) {
            return;
        }
        if (fds[2].revents != 0) {
            if (int stop = stop_forwarded_.load(); stop != 0) {
                // It ended on the stop we passed on: so do we, now.
                group.end(); // before the reap: the group id stays ours
                siginfo_t info = reap(program_pidfd);
                log_line("program ended (%s) after SIG%s while waiting for quorum", describe_exit(info).c_str(),
                         signal_name(stop).c_str());
                exit_like(info);
            }
            // Ended by itself: the main thread reports that once the call
            // returns. A signal that comes meanwhile reaches nobody.
            program_pidfd = -1;
        }
        signalfd_siginfo si;
        while (read(signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            int sig = static_cast<int>(si.ssi_signo);
            if (program_pidfd >= 0) {
                log_line("forwarding SIG%s to the program", signal_name(sig).c_str());
                if (!group.signal(sig)) {
                    pidfd_send_signal(program_pidfd, sig, nullptr, 0);
                }
                if (sig == SIGTERM || sig == SIGINT) {
                    stop_forwarded_.store(sig);
                }
                continue;
            }
            log_line("SIG%s while waiting for quorum: leaving", signal_name(sig).c_str());
            leave_by(sig);
        }
    }
}

} // namespace samrun
