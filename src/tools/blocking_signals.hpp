/*
 * blocking_signals.hpp - signals while the relay's main thread is stuck in a
 * blocking libsam call. sam_start() blocks while the cluster is inquorate;
 * meanwhile a helper thread forwards the relay's signals to the program, or,
 * when no program runs yet, lets the relay die of them (the supervisor then
 * leaves the same way). Scoped: the thread lives as long as the object.
 */
#ifndef SAMRUN_BLOCKING_SIGNALS_HPP
#define SAMRUN_BLOCKING_SIGNALS_HPP

#include <thread>

#include "unique_fd.hpp"

namespace samrun {

class SignalsDuringBlockingCall {
  public:
    /* `program_pidfd` < 0: no program yet. */
    SignalsDuringBlockingCall(int signal_fd, int program_pidfd);
    ~SignalsDuringBlockingCall();
    SignalsDuringBlockingCall(const SignalsDuringBlockingCall &) = delete;
    SignalsDuringBlockingCall &operator=(const SignalsDuringBlockingCall &) = delete;

  private:
    void watch(int signal_fd, int program_pidfd);

    UniqueFd wake_;
    std::thread thread_;
};

} // namespace samrun

#endif
