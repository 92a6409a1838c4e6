// SPDX-License-Identifier: BSD-3-Clause
// datastore.cpp - immutable data blobs and the sealed-memfd transfer.
#include "datastore.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

namespace sam {

namespace {

constexpr size_t kHugePage = 2u << 20;

// Anonymous memory on 2 MiB boundaries, offered for transparent huge pages.
// For large data this is what makes a copy cheap on both sides: filling it
// takes one fault per 2 MiB instead of one per page, and a fork hands an
// instance the data with one page-table entry per 2 MiB, so its first restore
// does not fault at all (a memfd mapping is inherited without page tables).
// Where huge pages are off it is ordinary anonymous memory.
Mapping map_huge(size_t size) {
    const size_t len = (size + kHugePage - 1) / kHugePage * kHugePage;
    void *raw = ::mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        throw std::bad_alloc();
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
    if (aligned > start)
        ::munmap(raw, aligned - start);
    ::munmap(reinterpret_cast<void *>(aligned + len), start + kHugePage - aligned);
    (void)::madvise(reinterpret_cast<void *>(aligned), len, MADV_HUGEPAGE);
    return Mapping(reinterpret_cast<void *>(aligned), len);
}

} // namespace

std::shared_ptr<DataBlob> DataBlob::allocate(size_t size) {
    std::shared_ptr<DataBlob> b(new DataBlob());
    if (size >= 2 * kHugePage) {
        b->mapping_ = map_huge(size);
        b->data_ = static_cast<const unsigned char *>(b->mapping_.get());
        b->size_ = size;
        return b;
    }
    b->heap_.reset(new unsigned char[size]); // not zeroed: the caller fills every byte
    b->data_ = b->heap_.get();
    b->size_ = size;
    return b;
}

std::shared_ptr<const DataBlob> DataBlob::copy_of(const void *data, size_t size) {
    std::shared_ptr<DataBlob> b = allocate(size);
    std::memcpy(b->bytes(), data, size);
    return b;
}

cs_error_t DataBlob::read_from_process(pid_t pid, uint64_t address) noexcept {
    // One call moves it all unless the range crosses something unreadable
    // there; go on after a short read only while it makes progress.
    size_t done = 0;
    while (done < size_) {
        iovec local{bytes() + done, size_ - done};
        iovec remote{reinterpret_cast<void *>(static_cast<uintptr_t>(address + done)), size_ - done};
        const ssize_t n = retry_eintr([&] { return ::process_vm_readv(pid, &local, 1, &remote, 1, 0); });
        if (n > 0) {
            done += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EPERM || errno == ENOSYS))
            return CS_ERR_NOT_SUPPORTED;
        if (n < 0 && errno == ENOMEM)
            return CS_ERR_NO_MEMORY;
        if (n < 0 && errno == ESRCH)
            return CS_ERR_LIBRARY; // its memory is gone: it is dying
        return CS_ERR_TRY_AGAIN;   // EFAULT, or nothing more to read
    }
    return CS_OK;
}

std::shared_ptr<const DataBlob> DataBlob::from_sealed_memfd(int fd, size_t size, cs_error_t &error) noexcept {
    constexpr int kRequiredSeals = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
    // F_GET_SEALS first: it answers at once whatever the descriptor is
    // (EINVAL unless shmem or hugetlbfs), whereas fstat() of a FUSE file
    // would wait for a daemon the sender runs.
    const int seals = ::fcntl(fd, F_GET_SEALS);
    struct stat st {};
    if (seals < 0 || (seals & kRequiredSeals) != kRequiredSeals || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size < 0 || static_cast<uint64_t>(st.st_size) != size || size == 0) {
        error = CS_ERR_MESSAGE_ERROR;
        return nullptr;
    }
    // Sealed: the contents can no longer change, so a private read-only
    // mapping is as good as a copy, without copying.
    void *addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
        error = (errno == ENOMEM || errno == EAGAIN) ? CS_ERR_NO_MEMORY : CS_ERR_LIBRARY;
        return nullptr;
    }
    Mapping m(addr, size);
    try {
        std::shared_ptr<DataBlob> b(new DataBlob());
        b->data_ = static_cast<const unsigned char *>(addr);
        b->size_ = size;
        b->mapping_ = std::move(m);
        return b;
    } catch (...) {
        error = CS_ERR_NO_MEMORY;
        return nullptr;
    }
}

UniqueFd make_sealed_memfd(const void *data, size_t size, cs_error_t &error) noexcept {
    UniqueFd fd(::memfd_create("libsam-data", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) {
        error = (errno == EMFILE || errno == ENFILE) ? CS_ERR_NO_RESOURCES : CS_ERR_LIBRARY;
        return UniqueFd();
    }
    const auto *p = static_cast<const unsigned char *>(data);
    size_t done = 0;
    while (done < size) {
        const ssize_t n = retry_eintr([&] { return ::write(fd.get(), p + done, size - done); });
        if (n <= 0) {
            error =
                (n < 0 && (errno == ENOMEM || errno == ENOSPC || errno == EFBIG)) ? CS_ERR_NO_MEMORY : CS_ERR_LIBRARY;
            return UniqueFd();
        }
        done += static_cast<size_t>(n);
    }
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
        error = CS_ERR_LIBRARY;
        return UniqueFd();
    }
    return fd;
}

void DataBlob::prefault() const noexcept {
    // A memfd mapping inherited over fork has no page tables in the child:
    // map every page in one call instead of taking a fault per few pages
    // inside memcpy. Best effort (Linux 5.14+); memcpy faults them in anyway.
    // Once per blob and process: after that the page tables stay.
    if (mapping_.get() != nullptr && !prefaulted_.exchange(true, std::memory_order_relaxed))
        (void)::madvise(mapping_.get(), mapping_.size(), MADV_POPULATE_READ);
}

cs_error_t DataStore::restore(void *out, size_t out_size) const noexcept {
    if (slot_.valid()) {
        const size_t n = slot_.own_size();
        if (out_size < n)
            return CS_ERR_INVALID_PARAM;
        if (n > 0)
            std::memcpy(out, slot_.own_bytes(), n);
        return CS_OK;
    }
    if (!blob_ || blob_->size() == 0)
        return CS_OK;
    if (out_size < blob_->size())
        return CS_ERR_INVALID_PARAM;
    blob_->prefault();
    std::memcpy(out, blob_->data(), blob_->size());
    return CS_OK;
}

} // namespace sam
