// SPDX-License-Identifier: BSD-3-Clause
// datastore.hpp - the user data kept by sam_data_store().
//
// The bytes live in the supervisor, as in upstream, and reach each new
// instance through fork. A stored value is an immutable DataBlob: up to
// 64 MiB a copy (read straight out of the instance's memory above 32 KiB,
// see wire.hpp; from 4 MiB in anonymous memory offered for huge pages),
// larger ones sealed memfds mapped read-only, never copied, which can never
// be changed after the fact. Replacing the blob is a pointer swap: a store either
// completes or leaves the previous data whole.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include <sys/types.h>

#include <corosync/corotypes.h>

#include "data_slot.hpp"
#include "fd.hpp"

namespace sam {

class DataBlob {
  public:
    DataBlob(const DataBlob &) = delete;
    DataBlob &operator=(const DataBlob &) = delete;

    // Heap copy; throws std::bad_alloc.
    static std::shared_ptr<const DataBlob> copy_of(const void *data, size_t size);

    // A blob owning `size` uninitialised bytes (heap; from 4 MiB anonymous
    // memory offered for huge pages), to be filled through bytes() or
    // read_from_process() before it is shared; throws std::bad_alloc.
    static std::shared_ptr<DataBlob> allocate(size_t size);
    [[nodiscard]] unsigned char *bytes() noexcept { return const_cast<unsigned char *>(data_); }

    // Fills this heap blob with the bytes at `address` in process `pid`, read
    // with process_vm_readv(2); may block for as long as that process makes
    // the read wait (a userfaultfd range, a FUSE mapping). Returns CS_OK;
    // CS_ERR_NOT_SUPPORTED when this process may not read the other's memory
    // at all; CS_ERR_TRY_AGAIN when those bytes cannot be read from outside
    // (not mapped there, or memory no other process can reach: memfd_secret,
    // VM_IO/VM_PFNMAP mappings); CS_ERR_NO_MEMORY; CS_ERR_LIBRARY when the
    // process is gone.
    [[nodiscard]] cs_error_t read_from_process(pid_t pid, uint64_t address) noexcept;

    // Maps a memfd that must be sealed against writing, growing and shrinking
    // and be exactly `size` bytes long. Returns nullptr with `error` set:
    // CS_ERR_NO_MEMORY when it cannot be mapped, CS_ERR_MESSAGE_ERROR when the
    // descriptor is not what the sender claimed.
    static std::shared_ptr<const DataBlob> from_sealed_memfd(int fd, size_t size, cs_error_t &error) noexcept;

    [[nodiscard]] const unsigned char *data() const noexcept { return data_; }
    [[nodiscard]] size_t size() const noexcept { return size_; }
    // Makes the bytes ready to read without page faults.
    void prefault() const noexcept;

  private:
    DataBlob() = default;
    std::unique_ptr<unsigned char[]> heap_;
    Mapping mapping_;
    mutable std::atomic<bool> prefaulted_{false}; // the supervisor never restores, so each instance starts false
    const unsigned char *data_ = nullptr;
    size_t size_ = 0;
};

// Writes `size` bytes into a new memfd and seals it. Returns an invalid fd with
// `error` set (CS_ERR_NO_MEMORY when memory or tmpfs space ran out).
[[nodiscard]] UniqueFd make_sealed_memfd(const void *data, size_t size, cs_error_t &error) noexcept;

class DataStore {
  public:
    [[nodiscard]] size_t size() const noexcept {
        if (slot_.valid())
            return slot_.own_size();
        return blob_ ? blob_->size() : 0;
    }
    // Copies the data out; see sam_data_restore() for the rules.
    [[nodiscard]] cs_error_t restore(void *out, size_t out_size) const noexcept;
    void replace(std::shared_ptr<const DataBlob> blob) noexcept {
        slot_ = DataSlot();
        blob_ = std::move(blob);
        ++generation_;
    }
    // In an instance: the data is what it last wrote into its slot. The
    // blob it replaces is freed (which may return memory to the system).
    void use_slot(DataSlot slot) noexcept {
        blob_.reset();
        slot_ = slot;
        ++generation_;
    }
    void clear() noexcept { replace(nullptr); }
    // The bytes as they are now (nullptr when empty); valid until the next change.
    [[nodiscard]] const unsigned char *bytes() const noexcept {
        if (slot_.valid())
            return slot_.own_bytes();
        return blob_ ? blob_->data() : nullptr;
    }
    // Changes with every replace(), clear() and use_slot(): a process forked
    // from this one holds the same data as long as the generation it saw is
    // current (the supervisor's changes only through replace() and clear()).
    [[nodiscard]] uint64_t generation() const noexcept { return generation_; }

  private:
    std::shared_ptr<const DataBlob> blob_;
    DataSlot slot_;
    uint64_t generation_ = 0;
};

} // namespace sam
