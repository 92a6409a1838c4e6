// SPDX-License-Identifier: BSD-3-Clause
// notify.hpp - both ends of the systemd notify protocol as sam-run uses them:
// a server socket offered to the supervised program as NOTIFY_SOCKET, and a
// minimal client that tells sam-run's own service manager how things stand.
// The protocol: AF_UNIX datagrams holding newline-separated KEY=VALUE lines,
// socket names are file-system paths or, starting with '@', abstract names.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base.hpp"
#include "descriptor_sink.hpp"
#include "notify_datagram.hpp"

namespace samrun {

struct NotifyMessage {
    pid_t sender = 0; // from SCM_CREDENTIALS, checked by the kernel
    uid_t sender_uid = static_cast<uid_t>(-1);
    NotifyFields fields;
    // Descriptors the program passed (SCM_RIGHTS), close-on-exec. Never
    // close() them: hand them to NotifyServer::dispose() when done.
    std::vector<int> fds;
};

// Decides from the kernel's credentials whether a sender may send at all.
using SenderCheck = std::function<bool(pid_t pid, uid_t uid)>;

class NotifyServer {
  public:
    // Binds `address` (path or @abstract); throws std::system_error.
    explicit NotifyServer(const std::string &address);
    NotifyServer(NotifyServer &&) = default;
    NotifyServer &operator=(NotifyServer &&) = default;

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const std::string &address() const { return address_; }

    enum class Receive { Message, Rejected, Empty };
    // Reads one datagram without blocking. The sender's credentials are
    // checked before anything else in it: Rejected when there are none, when
    // `allowed` refuses them, or when the datagram was truncated; `why` says
    // which, and no field of a rejected datagram is looked at. Descriptors
    // of a rejected datagram go to the sink, never to a close() here; those
    // of a Message are in message.fds, for the caller to keep (FDSTORE=1)
    // and then dispose().
    [[nodiscard]] Receive receive(NotifyMessage &message, std::string &why, const SenderCheck &allowed);
    // Makes our copies of `fds` go away without a blocking close().
    void dispose(const std::vector<int> &fds) {
        if (!fds.empty()) {
            sink_.dispose(fds, /* stranger= */ false);
        }
    }

  private:
    UniqueFd fd_;
    std::string address_;
    DescriptorSink sink_;
};

// The client side, towards $NOTIFY_SOCKET of sam-run itself (for example
// systemd with Type=notify). Without that variable every send is a no-op.
class UpstreamNotifier {
  public:
    UpstreamNotifier() = default;
    // Reads NOTIFY_SOCKET and WATCHDOG_USEC from the environment.
    static UpstreamNotifier from_environment();

    [[nodiscard]] bool enabled() const { return fd_.valid(); }
    // WATCHDOG_USEC given to sam-run, or 0.
    [[nodiscard]] unsigned long long watchdog_usec() const { return watchdog_usec_; }
    // Best effort: a service manager that went away must not stop us.
    void send(const std::string &text) const;

  private:
    UniqueFd fd_;
    std::string address_;
    unsigned long long watchdog_usec_ = 0;
};

} // namespace samrun
