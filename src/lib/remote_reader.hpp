// SPDX-License-Identifier: BSD-3-Clause
// remote_reader.hpp - reads of an instance's memory, off the supervisor's loop.
//
// A medium sam_data_store() has the supervisor copy the bytes straight out of
// the waiting instance with process_vm_readv(2). That read can wait for as
// long as the instance likes: the first touch of a userfaultfd range waits for
// a handler that may never answer, a FUSE-backed mapping for a daemon the
// instance runs. The loop must never wait on that, so the read runs on a
// reader thread: the loop hands over a blob it allocated (the thread never
// allocates), watches event_fd() for the result and meanwhile goes on serving
// its timer, signals and the instance's death. A stalled read ends when its
// process dies (its userfaultfd and FUSE connections die with it), which is
// what the health deadline does to an instance that stops answering.
//
// The thread is started at the first read and kept for the next ones:
// starting a thread per read costs more than reading 64 KiB. No thread of
// ours may exist when the supervisor forks an instance, so stop() ends and
// joins it before every fork.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include <pthread.h>
#include <sys/types.h>

#include <corosync/corotypes.h>

#include "datastore.hpp"

namespace sam {

class RemoteReader {
  public:
    RemoteReader() = default;
    ~RemoteReader();
    RemoteReader(const RemoteReader &) = delete;
    RemoteReader &operator=(const RemoteReader &) = delete;

    // Creates the completion descriptor (once). Returns false with errno set.
    [[nodiscard]] bool open() noexcept;
    // Readable when a read has finished or the thread has ended: call collect().
    [[nodiscard]] int event_fd() const noexcept;

    // True when start() may be called: no read in progress, and no thread
    // left over from a stop() that could not wait for its read.
    [[nodiscard]] bool ready() const noexcept { return !reading_ && !stopping_; }
    // Starts reading into `into` (all of its size) at `address` in `pid`.
    // Only when ready(). Returns false with errno set if no thread can run.
    [[nodiscard]] bool start(pid_t pid, uint64_t address, std::shared_ptr<DataBlob> into) noexcept;

    struct Result {
        std::shared_ptr<DataBlob> blob; // filled when error is CS_OK
        cs_error_t error;
    };
    // After event_fd() was readable: the finished read, if there is one (a
    // read abandoned by stop() is dropped). Joins a thread that has ended.
    std::optional<Result> collect() noexcept;

    // Ends the thread before a fork, waiting up to wait_ns for a read in
    // progress. Returns true when no thread of ours is left. On false the
    // thread is still blocked in the kernel; it ends once its read returns,
    // and collect() joins it.
    bool stop(uint64_t wait_ns) noexcept;

    // In a new instance, where the thread does not exist: closes the
    // descriptor and never touches the thread.
    void abandon_in_child() noexcept;

  private:
    struct Shared;
    static void *run(void *arg) noexcept;
    bool start_thread() noexcept;
    void join() noexcept;

    std::shared_ptr<Shared> shared_;
    pthread_t thread_{};
    bool running_ = false;  // a thread exists (not joined yet)
    bool reading_ = false;  // a read was started and not collected
    bool stopping_ = false; // stop() asked the thread to end
};

} // namespace sam
