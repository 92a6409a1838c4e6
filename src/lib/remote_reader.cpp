// SPDX-License-Identifier: BSD-3-Clause
// remote_reader.cpp - the reader thread behind medium data stores.
#include "remote_reader.hpp"

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <new>

#include <poll.h>
#include <sys/eventfd.h>

#include "fd.hpp"

namespace sam {

// What the loop and the thread share. The thread holds its own reference, so
// a thread that outlives its RemoteReader (see ~RemoteReader) never touches
// freed memory.
struct RemoteReader::Shared {
    std::mutex m;
    std::condition_variable cv;
    // The read asked for; `into` stays owned here until collected.
    bool has_job = false;
    pid_t pid = 0;
    uint64_t address = 0;
    std::shared_ptr<DataBlob> into;
    // Its outcome.
    bool has_result = false;
    cs_error_t error = CS_OK;
    bool stop = false;
    bool exited = false;
    UniqueFd done; // eventfd: a result is ready or the thread has ended

    void notify() noexcept {
        const uint64_t one = 1;
        (void)retry_eintr([&] { return ::write(done.get(), &one, sizeof one); });
    }
};

RemoteReader::~RemoteReader() {
    if (!running_)
        return;
    // Only when the supervisor gives up (sam_register() failing after its
    // loop ended). A thread still blocked in a read keeps its own reference
    // to the shared state and ends by itself once the read returns.
    if (!stop(100ULL * 1000000ULL))
        (void)::pthread_detach(thread_);
}

bool RemoteReader::open() noexcept {
    if (shared_)
        return true;
    try {
        shared_ = std::make_shared<Shared>();
    } catch (const std::bad_alloc &) {
        errno = ENOMEM;
        return false;
    }
    shared_->done.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!shared_->done) {
        shared_.reset();
        return false;
    }
    return true;
}

int RemoteReader::event_fd() const noexcept { return shared_ ? shared_->done.get() : -1; }

bool RemoteReader::start_thread() noexcept {
    // Owned by the thread from its first instruction; handed over on the heap
    // because the thread may outlive this object.
    auto *ref = new (std::nothrow) std::shared_ptr<Shared>(shared_);
    if (ref == nullptr) {
        errno = ENOMEM;
        return false;
    }
    // Every signal blocked in the thread: the stop signals the supervisor
    // reads from its signalfd must never be delivered to it instead.
    sigset_t all, old;
    sigfillset(&all);
    (void)::pthread_sigmask(SIG_SETMASK, &all, &old);
    const int rc = ::pthread_create(&thread_, nullptr, &RemoteReader::run, ref);
    (void)::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (rc != 0) {
        delete ref;
        errno = rc;
        return false;
    }
    running_ = true;
    return true;
}

bool RemoteReader::start(pid_t pid, uint64_t address, std::shared_ptr<DataBlob> into) noexcept {
    if (!shared_ || !ready()) {
        errno = EBUSY;
        return false;
    }
    if (!running_ && !start_thread())
        return false;
    {
        std::lock_guard<std::mutex> g(shared_->m);
        shared_->has_job = true;
        shared_->pid = pid;
        shared_->address = address;
        shared_->into = std::move(into);
    }
    shared_->cv.notify_one();
    reading_ = true;
    return true;
}

void *RemoteReader::run(void *arg) noexcept {
    auto *ref = static_cast<std::shared_ptr<Shared> *>(arg);
    const std::shared_ptr<Shared> s = std::move(*ref);
    delete ref;
    std::unique_lock<std::mutex> lk(s->m);
    for (;;) {
        s->cv.wait(lk, [&] { return s->has_job || s->stop; });
        if (!s->has_job)
            break;
        DataBlob *into = s->into.get();
        const pid_t pid = s->pid;
        const uint64_t address = s->address;
        lk.unlock();
        // The only call that may block, and it holds no lock of ours or of
        // libc: a fork meanwhile leaves the child nothing half-updated.
        const cs_error_t err = into->read_from_process(pid, address);
        lk.lock();
        s->has_job = false;
        s->has_result = true;
        s->error = err;
        // Woken by this, the loop takes the lock at once: not while we hold it.
        lk.unlock();
        s->notify();
        lk.lock();
    }
    s->exited = true;
    lk.unlock();
    s->notify();
    return nullptr;
}

std::optional<RemoteReader::Result> RemoteReader::collect() noexcept {
    if (!shared_)
        return std::nullopt;
    uint64_t count;
    (void)::read(shared_->done.get(), &count, sizeof count);
    std::optional<Result> out;
    bool exited = false;
    {
        std::lock_guard<std::mutex> g(shared_->m);
        if (shared_->has_result) {
            shared_->has_result = false;
            if (reading_ && !stopping_)
                out = Result{std::move(shared_->into), shared_->error};
            shared_->into.reset();
            reading_ = false;
        }
        exited = shared_->exited;
    }
    if (exited && running_)
        join();
    return out;
}

void RemoteReader::join() noexcept {
    (void)::pthread_join(thread_, nullptr);
    running_ = false;
    stopping_ = false;
    reading_ = false;
    std::lock_guard<std::mutex> g(shared_->m);
    shared_->stop = false;
    shared_->exited = false;
    shared_->has_job = false;
    shared_->has_result = false;
    shared_->into.reset();
}

bool RemoteReader::stop(uint64_t wait_ns) noexcept {
    if (!running_)
        return true;
    {
        std::lock_guard<std::mutex> g(shared_->m);
        shared_->stop = true;
    }
    shared_->cv.notify_one();
    stopping_ = true;
    const uint64_t give_up = saturating_add(monotonic_ns(), wait_ns);
    for (;;) {
        bool exited;
        {
            std::lock_guard<std::mutex> g(shared_->m);
            exited = shared_->exited;
        }
        if (exited) {
            uint64_t count;
            (void)::read(shared_->done.get(), &count, sizeof count);
            join();
            return true;
        }
        const uint64_t now = monotonic_ns();
        if (now >= give_up)
            return false;
        pollfd p{shared_->done.get(), POLLIN, 0};
        const int wait_ms = static_cast<int>((give_up - now + 999999ULL) / 1000000ULL);
        if (retry_eintr([&] { return ::poll(&p, 1, wait_ms); }) > 0) {
            uint64_t count;
            (void)::read(shared_->done.get(), &count, sizeof count);
        }
    }
}

void RemoteReader::abandon_in_child() noexcept {
    running_ = false; // that thread is the supervisor's: never join or detach it here
    reading_ = false;
    stopping_ = false;
    if (shared_)
        shared_->done.reset(); // no lock: the mutex may have been held by that thread at fork
}

} // namespace sam
