// SPDX-License-Identifier: BSD-3-Clause
// api.cpp - the exported C entry points.
//
// Each function checks its arguments, takes the library lock, checks the
// state and hands over to the instance or supervisor code. No exception
// crosses into C: std::bad_alloc becomes CS_ERR_NO_MEMORY, anything else
// CS_ERR_LIBRARY.
#include <csignal>
#include <cstdlib>
#include <new>
#include <system_error>

#include <corosync/sam.h>

#include "corosync_link.hpp"
#include "instance.hpp"
#include "log.hpp"
#include "quorum_watch.hpp"
#include "state.hpp"
#include "supervisor.hpp"

#define SAM_EXPORT extern "C" __attribute__((visibility("default")))

namespace sam {

Library &Library::get() noexcept {
    // Never destroyed: the supervisor exits with exit(), and other threads of
    // the application may still be calling in while static destructors run.
    static Library *lib = new Library();
    return *lib;
}

namespace {

template <typename F> cs_error_t guarded(F &&body) noexcept {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return CS_ERR_NO_MEMORY;
    } catch (...) {
        return CS_ERR_LIBRARY;
    }
}

bool in_data_state(ApiState s) noexcept {
    return s == ApiState::Initialized || s == ApiState::Registered || s == ApiState::Started;
}

const char *getenv_adapter(const char *name) { return std::getenv(name); }

} // namespace
} // namespace sam

using sam::ApiState;
using sam::guarded;
using sam::Library;

SAM_EXPORT cs_error_t sam_initialize(int time_interval, sam_recovery_policy_t recovery_policy) {
    const unsigned policy = static_cast<unsigned>(recovery_policy);
    const unsigned base = policy & ~static_cast<unsigned>(SAM_RECOVERY_POLICY_QUORUM | SAM_RECOVERY_POLICY_CMAP);
    if (base != SAM_RECOVERY_POLICY_QUIT && base != SAM_RECOVERY_POLICY_RESTART)
        return CS_ERR_INVALID_PARAM;
    return guarded([&] {
        Library &lib = Library::get();
        std::lock_guard<std::mutex> g(lib.mu);
        if (lib.state != ApiState::NotInitialized)
            return CS_ERR_BAD_HANDLE;
        if (time_interval < 0)
            return CS_ERR_INVALID_PARAM;
        sam::log_configure_from_env();
        std::vector<std::string> complaints;
        lib.backoff = sam::read_backoff_config(&sam::getenv_adapter, complaints);
        for (const std::string &c : complaints)
            sam::log_line(LOG_WARNING, "%s", c.c_str());
        lib.policy.raw = policy;
        if (lib.policy.quorum()) {
            cs_error_t err = CS_OK;
            lib.quorum = sam::QuorumWatch::create(err);
            if (!lib.quorum)
                return err;
        }
        lib.interval_ms = time_interval;
        lib.warn_signal.store(SIGTERM);
        lib.set_state(ApiState::Initialized);
        return CS_OK;
    });
}

SAM_EXPORT cs_error_t sam_finalize(void) {
    return guarded([&] {
        Library &lib = Library::get();
        std::shared_ptr<sam::HcCallbackThread> callback_thread;
        {
            std::lock_guard<std::mutex> g(lib.mu);
            if (!sam::in_data_state(lib.state))
                return CS_ERR_BAD_HANDLE;
            if (lib.state == ApiState::Started)
                (void)sam::instance_stop(lib); // finalize goes on even if the supervisor is gone
            callback_thread = std::move(lib.instance.callback_thread);
            lib.data.clear();
            lib.quorum.reset();
            lib.instance.channel.reset();
            lib.set_state(ApiState::Finalized);
        }
        // Joined outside the lock: the callback may be inside a sam_* call.
        if (callback_thread)
            callback_thread->shutdown();
        return CS_OK;
    });
}

SAM_EXPORT cs_error_t sam_start(void) {
    return guarded([&] {
        Library &lib = Library::get();
        std::lock_guard<std::mutex> g(lib.mu);
        if (lib.state != ApiState::Registered)
            return CS_ERR_BAD_HANDLE;
        return sam::instance_start(lib);
    });
}

SAM_EXPORT cs_error_t sam_stop(void) {
    return guarded([&] {
        Library &lib = Library::get();
        std::lock_guard<std::mutex> g(lib.mu);
        if (lib.state != ApiState::Started)
            return CS_ERR_BAD_HANDLE;
        return sam::instance_stop(lib);
    });
}

SAM_EXPORT cs_error_t sam_warn_signal_set(int warn_signal) {
    return guarded([&] {
        Library &lib = Library::get();
        std::lock_guard<std::mutex> g(lib.mu);
        if (!sam::in_data_state(lib.state))
            return CS_ERR_BAD_HANDLE;
        if (warn_signal < 1 || warn_signal >= NSIG)
            return CS_ERR_INVALID_PARAM;
        if (lib.state == ApiState::Initialized) {
            lib.warn_signal.store(warn_signal);
            return CS_OK;
        }
        return sam::instance_warn_signal_set(lib, warn_signal);
    });
}

// An instance's copy of its supervisor object (see sam_register).
sam::Supervisor *g_retained_in_instance = nullptr;

SAM_EXPORT cs_error_t sam_register(unsigned int *instance_id) {
    return guarded([&] {
        Library &lib = Library::get();
        std::unique_ptr<sam::CorosyncLink> link;
        sam::Supervisor *supervisor = nullptr;
        {
            std::lock_guard<std::mutex> g(lib.mu);
            if (lib.state != ApiState::Initialized)
                return CS_ERR_BAD_HANDLE;
            // No corosync connection may outlive this point in the process
            // that becomes the supervisor: every instance would inherit its
            // shared-memory rings. The link process connects afresh.
            // (quorum_finalize only unmaps and closes: it does not wait for
            // corosync.)
            lib.quorum.reset();
            if (lib.policy.cmap() || lib.policy.quorum()) {
                sam::CorosyncLink::Config cfg;
                cfg.supervisor_pid = static_cast<long>(::getpid());
                cfg.cmap = lib.policy.cmap();
                cfg.quorum = lib.policy.quorum();
                cfg.quit = lib.policy.quit();
                cfg.interval_ms = static_cast<uint64_t>(lib.interval_ms);
                cs_error_t err = CS_OK;
                link = sam::CorosyncLink::start(cfg, err);
                if (!link) // with CMAP: the keys could not be created
                    return cfg.cmap ? CS_ERR_BAD_HANDLE : CS_ERR_LIBRARY;
            }
            supervisor = new sam::Supervisor(lib);
            lib.set_state(ApiState::Supervising);
        }
        // Not under the lock: run() forks, and the child re-creates the lock.
        const cs_error_t err = supervisor->run(instance_id, std::move(link));
        if (err == CS_OK) {
            // A new instance: its copy of the supervisor object has closed
            // its descriptors and let its link go. It is kept, not freed:
            // freeing writes to heap pages the instance still shares with
            // its supervisor, and each such page costs a copy on the
            // restart path. Reachable from here, so leak checkers agree.
            g_retained_in_instance = supervisor;
            return CS_OK;
        }
        delete supervisor;
        std::lock_guard<std::mutex> g(lib.mu);
        lib.set_state(ApiState::Initialized);
        return err;
    });
}

SAM_EXPORT cs_error_t sam_hc_send(void) {
    // The fast path: no lock, no system call.
    return sam::instance_beat(Library::get());
}

SAM_EXPORT cs_error_t sam_hc_callback_register(sam_hc_callback_t cb) {
    return guarded([&] {
        Library &lib = Library::get();
        std::lock_guard<std::mutex> g(lib.mu);
        if (lib.state != ApiState::Registered)
            return CS_ERR_BAD_HANDLE;
        if (lib.interval_ms == 0)
            return CS_ERR_INVALID_PARAM;
        if (lib.instance.callback_thread) {
            lib.instance.callback_thread->replace_callback(cb);
            return CS_OK;
        }
        if (cb == nullptr)
            return CS_ERR_INVALID_PARAM;
        try {
            lib.instance.callback_thread =
                std::make_shared<sam::HcCallbackThread>(lib, static_cast<uint64_t>(lib.interval_ms), cb);
        } catch (const std::system_error &) {
            return CS_ERR_LIBRARY;
        }
        return CS_OK;
    });
}

SAM_EXPORT cs_error_t sam_data_getsize(size_t *size) {
    if (size == nullptr)
        return CS_ERR_INVALID_PARAM;
    return guarded([&] {
        Library &lib = Library::get();
        std::lock_guard<std::mutex> g(lib.mu);
        if (!sam::in_data_state(lib.state))
            return CS_ERR_BAD_HANDLE;
        *size = lib.data.size();
        return CS_OK;
    });
}

SAM_EXPORT cs_error_t sam_data_restore(void *data, size_t size) {
    if (data == nullptr)
        return CS_ERR_INVALID_PARAM;
    return guarded([&] {
        Library &lib = Library::get();
        std::lock_guard<std::mutex> g(lib.mu);
        if (!sam::in_data_state(lib.state))
            return CS_ERR_BAD_HANDLE;
        return lib.data.restore(data, size);
    });
}

SAM_EXPORT cs_error_t sam_data_store(const void *data, size_t size) {
    return guarded([&] {
        Library &lib = Library::get();
        std::lock_guard<std::mutex> g(lib.mu);
        if (!sam::in_data_state(lib.state))
            return CS_ERR_BAD_HANDLE;
        if (lib.state != ApiState::Initialized)
            return sam::instance_data_store(lib, data, size);
        // Not registered yet: the data stays here and the first instance inherits it.
        if (data == nullptr || size == 0)
            lib.data.clear();
        else
            lib.data.replace(sam::DataBlob::copy_of(data, size));
        return CS_OK;
    });
}

SAM_EXPORT cs_error_t sam_mark_failed(void) {
    return guarded([&] {
        Library &lib = Library::get();
        std::lock_guard<std::mutex> g(lib.mu);
        if (lib.state != ApiState::Registered && lib.state != ApiState::Started)
            return CS_ERR_BAD_HANDLE;
        if (!lib.policy.cmap())
            return CS_ERR_INVALID_PARAM;
        return sam::instance_mark_failed(lib);
    });
}
