// SPDX-License-Identifier: BSD-3-Clause
// instance.cpp - instance-side requests and the health-callback thread.
#include "instance.hpp"

#include <chrono>
#include <cstring>
#include <new>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "channel.hpp"
#include "wire.hpp"

namespace sam {

namespace {

cs_error_t call(Library &lib, wire::RequestType type, uint64_t arg = 0, uint64_t size = 0, const void *data = nullptr,
                size_t data_len = 0, int pass_fd = -1) {
    if (!lib.instance.channel)
        return CS_ERR_LIBRARY;
    return channel_call(lib.instance.channel.get(), wire::make_header(type, arg, size), data, data_len, pass_fd);
}

// A buffer is copied into the slot with a plain memcpy only when its pages
// were read successfully by an earlier store: bytes the caller passes that
// cannot be read must fail the store with CS_ERR_LIBRARY (as upstream's
// write() of them fails), not crash the instance. The first store from
// other pages is copied by the kernel (process_vm_readv(2) of this very
// process, one system call), which says EFAULT instead of faulting:
// CS_ERR_LIBRARY. CS_ERR_NOT_SUPPORTED: the kernel or a seccomp filter
// refused that call.
cs_error_t fill_slot(InstanceSide &self, unsigned char *dst, const void *data, size_t size) noexcept {
    static const uintptr_t page_mask = ~static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE) - 1);
    const uintptr_t first = reinterpret_cast<uintptr_t>(data) & page_mask;
    const uintptr_t last = (reinterpret_cast<uintptr_t>(data) + size - 1) & page_mask;
    for (const InstanceSide::PageRange &r : self.readable) {
        if (r.first <= first && last <= r.last && r.last != 0) {
            std::memcpy(dst, data, size);
            return CS_OK;
        }
    }
    iovec local{dst, size};
    iovec remote{const_cast<void *>(data), size};
    const ssize_t n = retry_eintr([&] { return ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0); });
    if (n < 0 && (errno == EPERM || errno == ENOSYS))
        return CS_ERR_NOT_SUPPORTED;
    if (n != static_cast<ssize_t>(size))
        return CS_ERR_LIBRARY;
    self.readable[self.readable_next] = InstanceSide::PageRange{first, last};
    self.readable_next = (self.readable_next + 1) % InstanceSide::kReadableRanges;
    return CS_OK;
}

} // namespace

cs_error_t instance_beat(Library &lib) noexcept {
    if (lib.hot_state.load(std::memory_order_acquire) != ApiState::Started)
        return CS_ERR_BAD_HANDLE;
    HeartbeatPage &page = *lib.instance.page;
    page.beat(monotonic_ns());
    return page.supervisor_gone() ? CS_ERR_LIBRARY : CS_OK;
}

cs_error_t instance_start(Library &lib) {
    const cs_error_t err = call(lib, wire::RequestType::Start);
    if (err != CS_OK)
        return err;
    // The first beat before the state flips, so a beat is never older than the start.
    lib.instance.page->beat(monotonic_ns());
    lib.set_state(ApiState::Started);
    if (lib.instance.callback_thread)
        lib.instance.callback_thread->set_started(true);
    return CS_OK;
}

cs_error_t instance_stop(Library &lib) {
    const cs_error_t err = call(lib, wire::RequestType::Stop);
    if (err != CS_OK)
        return err;
    lib.set_state(ApiState::Registered);
    if (lib.instance.callback_thread)
        lib.instance.callback_thread->set_started(false);
    return CS_OK;
}

cs_error_t instance_data_store(Library &lib, const void *data, size_t size) {
    if (data == nullptr || size == 0) {
        const cs_error_t err = call(lib, wire::RequestType::DataDelete);
        if (err == CS_OK)
            lib.data.clear();
        return err;
    }
    // Small data goes into the slot shared with the supervisor: no system
    // call, no wait (data_slot.hpp). The supervisor's death is one load of
    // the page, as for sam_hc_send(): the store then fails as it would
    // through the channel, and nothing changes.
    const DataSlot slot = lib.instance.page ? lib.instance.page->slot() : DataSlot();
    if (size <= kSlotDataMax && slot.valid() && lib.instance.slot_usable) {
        if (lib.instance.page->supervisor_gone())
            return CS_ERR_LIBRARY;
        const cs_error_t err = fill_slot(lib.instance, slot.next_bytes(), data, size);
        if (err == CS_OK) {
            slot.publish(size, ++lib.instance.slot_seq);
            lib.data.use_slot(slot);
            // Every call that reached the supervisor was a sign of life;
            // this one does not reach it, so it leaves a heartbeat instead.
            lib.instance.page->beat(monotonic_ns());
            return CS_OK;
        }
        // Bytes the kernel could not read for us (unreadable, or memory only
        // this process's own page tables reach, such as memfd_secret): the
        // channel, whose system calls tell the two apart. Or this process
        // may not read itself that way at all: the channel from now on.
        if (err == CS_ERR_NOT_SUPPORTED)
            lib.instance.slot_usable = false;
    }
    // Small data travels in the request; medium data is read by the supervisor
    // out of the caller's buffer while we wait; anything else, or what the
    // supervisor cannot read from outside, goes as a sealed memfd. Our own
    // copy is allocated first (if memory runs out, nothing has been sent and
    // the supervisor's data is untouched) but filled only after the kernel
    // has read the caller's bytes for the supervisor (sendmsg, the
    // supervisor's read, write into the memfd): bytes that cannot be read
    // end in CS_ERR_LIBRARY, as in upstream, whose write() of them fails,
    // rather than in a crash, and the stored data stays as it was.
    const bool in_request = size <= wire::kInlineDataMax;
    if (in_request || (size <= wire::kRemoteDataMax && lib.instance.remote_store)) {
        std::shared_ptr<DataBlob> blob = DataBlob::allocate(size); // may throw bad_alloc -> CS_ERR_NO_MEMORY
        const cs_error_t err = in_request ? call(lib, wire::RequestType::DataStoreInline, 0, size, data, size)
                                          : call(lib, wire::RequestType::DataStoreRemote,
                                                 static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)), size);
        if (err == CS_OK) {
            std::memcpy(blob->bytes(), data, size);
            lib.data.replace(std::move(blob));
        }
        if (in_request || (err != CS_ERR_NOT_SUPPORTED && err != CS_ERR_TRY_AGAIN))
            return err;
        // The supervisor cannot read these bytes from outside: a memfd, for
        // this store only (TRY_AGAIN) or from now on (NOT_SUPPORTED: it may
        // not read our memory at all).
        if (err == CS_ERR_NOT_SUPPORTED)
            lib.instance.remote_store = false;
    }
    cs_error_t err = CS_OK;
    UniqueFd memfd = make_sealed_memfd(data, size, err);
    if (!memfd)
        return err;
    auto blob = DataBlob::from_sealed_memfd(memfd.get(), size, err);
    if (!blob)
        return err;
    err = call(lib, wire::RequestType::DataStoreMemfd, 0, size, nullptr, 0, memfd.get());
    if (err == CS_OK)
        lib.data.replace(std::move(blob));
    return err;
}

cs_error_t instance_warn_signal_set(Library &lib, int sig) {
    const cs_error_t err = call(lib, wire::RequestType::WarnSignalSet, static_cast<uint64_t>(sig));
    if (err != CS_OK)
        return err;
    lib.warn_signal.store(sig);
    // The signal we get if the supervisor dies follows the warn signal.
    (void)::prctl(PR_SET_PDEATHSIG, sig);
    return CS_OK;
}

cs_error_t instance_mark_failed(Library &lib) { return call(lib, wire::RequestType::MarkFailed); }

HcCallbackThread::HcCallbackThread(Library &lib, uint64_t interval_ms, sam_hc_callback_t cb)
    : shared_(std::make_shared<Shared>(lib, interval_ms >= 4 ? interval_ms / 4 : 1, cb)) {
    thread_ = std::thread([s = shared_] { run(s); });
}

HcCallbackThread::~HcCallbackThread() { shutdown(); }

void HcCallbackThread::replace_callback(sam_hc_callback_t cb) {
    std::lock_guard<std::mutex> g(shared_->m);
    shared_->cb = cb;
}

void HcCallbackThread::set_started(bool started) {
    {
        std::lock_guard<std::mutex> g(shared_->m);
        shared_->started = started;
        if (started)
            shared_->unhealthy = false;
    }
    shared_->cv.notify_all();
}

void HcCallbackThread::shutdown() {
    {
        std::lock_guard<std::mutex> g(shared_->m);
        shared_->stopping = true;
    }
    shared_->cv.notify_all();
    if (!thread_.joinable())
        return;
    // sam_finalize() called from inside the callback: the thread cannot join
    // itself. It sees `stopping` once the callback returns and ends on its
    // own, holding its reference to Shared until then.
    if (thread_.get_id() == std::this_thread::get_id())
        thread_.detach();
    else
        thread_.join();
}

void HcCallbackThread::run(const std::shared_ptr<Shared> &s) {
    std::unique_lock<std::mutex> lk(s->m);
    unsigned ticks = 0;
    for (;;) {
        s->cv.wait(lk, [&s] { return s->stopping || s->started; });
        if (s->stopping)
            return;
        const auto tick = std::chrono::milliseconds(s->tick_ms);
        if (s->cv.wait_for(lk, tick, [&s] { return s->stopping || !s->started; })) {
            ticks = 0;
            continue;
        }
        if (s->unhealthy)
            continue;
        if (instance_beat(s->lib) != CS_ERR_BAD_HANDLE)
            ++ticks; // the callback still runs once the supervisor is gone
        if (ticks < 4)
            continue;
        ticks = 0;
        sam_hc_callback_t cb = s->cb;
        if (cb == nullptr)
            continue;
        lk.unlock(); // the callback may call sam_* functions, sam_finalize() included
        const int verdict = cb();
        lk.lock();
        if (verdict != 0)
            s->unhealthy = true;
    }
}

} // namespace sam
