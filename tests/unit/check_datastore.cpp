// SPDX-License-Identifier: BSD-3-Clause
// check_datastore.cpp - tests of datastore.cpp: replace, restore rules, and
// the sealed-memfd checks the supervisor relies on.
#include <cstring>
#include <vector>

#include <CppUTest/TestHarness.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "datastore.hpp"

using namespace sam;

TEST_GROUP(DataStore){};

TEST(DataStore, EmptyRestoreCopiesNothing) {
    DataStore s;
    char buf[4] = {'a', 'b', 'c', 'd'};
    LONGS_EQUAL(CS_OK, s.restore(buf, 0));
    LONGS_EQUAL(CS_OK, s.restore(buf, sizeof buf));
    MEMCMP_EQUAL("abcd", buf, 4);
    UNSIGNED_LONGS_EQUAL(0, s.size());
}

TEST(DataStore, ReplaceIsWholeAndRestoreChecksSize) {
    DataStore s;
    s.replace(DataBlob::copy_of("first", 5));
    s.replace(DataBlob::copy_of("second", 6));
    UNSIGNED_LONGS_EQUAL(6, s.size());
    char small[5];
    LONGS_EQUAL(CS_ERR_INVALID_PARAM, s.restore(small, sizeof small));
    char buf[10] = {};
    LONGS_EQUAL(CS_OK, s.restore(buf, sizeof buf));
    MEMCMP_EQUAL("second", buf, 6);
    s.clear();
    UNSIGNED_LONGS_EQUAL(0, s.size());
}

TEST(DataStore, SealedMemfdRoundTrip) {
    std::vector<unsigned char> data(100000);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<unsigned char>(i * 7);
    cs_error_t err = CS_OK;
    UniqueFd fd = make_sealed_memfd(data.data(), data.size(), err);
    CHECK_TRUE(fd.valid());
    auto blob = DataBlob::from_sealed_memfd(fd.get(), data.size(), err);
    CHECK_TRUE(blob != nullptr);
    MEMCMP_EQUAL(data.data(), blob->data(), data.size());
    // Sealed: the sender can no longer change what we mapped.
    CHECK_TRUE(::write(fd.get(), "x", 1) < 0);
}

TEST(DataStore, RefusesUnsealedOrMisSizedDescriptors) {
    cs_error_t err = CS_OK;
    UniqueFd plain(::memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    CHECK_TRUE(::write(plain.get(), "abcd", 4) == 4);
    CHECK_TRUE(DataBlob::from_sealed_memfd(plain.get(), 4, err) == nullptr);
    LONGS_EQUAL(CS_ERR_MESSAGE_ERROR, err);

    UniqueFd sealed = make_sealed_memfd("abcd", 4, err);
    err = CS_OK;
    CHECK_TRUE(DataBlob::from_sealed_memfd(sealed.get(), 5, err) == nullptr);
    LONGS_EQUAL(CS_ERR_MESSAGE_ERROR, err);

    UniqueFd pipe_end;
    int p[2];
    CHECK_TRUE(::pipe2(p, O_CLOEXEC) == 0);
    pipe_end.reset(p[0]);
    UniqueFd other(p[1]);
    err = CS_OK;
    CHECK_TRUE(DataBlob::from_sealed_memfd(pipe_end.get(), 4, err) == nullptr);
    LONGS_EQUAL(CS_ERR_MESSAGE_ERROR, err);
}

TEST(DataStore, ReadFromProcessReadsTheRangeOrSaysWhyNot) {
    std::vector<unsigned char> src(100000);
    for (size_t i = 0; i < src.size(); ++i)
        src[i] = static_cast<unsigned char>(i * 7 + 3);
    auto blob = DataBlob::allocate(src.size());
    CHECK_EQUAL(CS_OK, blob->read_from_process(::getpid(), reinterpret_cast<uintptr_t>(src.data())));
    CHECK_EQUAL(src.size(), blob->size());
    CHECK_EQUAL(0, std::memcmp(src.data(), blob->data(), src.size()));

    // A range that runs off the end of a mapping is refused, not cut short:
    // the instance is asked for a memfd instead.
    const long page = ::sysconf(_SC_PAGESIZE);
    void *two = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK_TRUE(two != MAP_FAILED);
    CHECK_EQUAL(0, ::munmap(static_cast<char *>(two) + page, page));
    auto two_pages = DataBlob::allocate(2 * static_cast<size_t>(page));
    CHECK_EQUAL(CS_ERR_TRY_AGAIN, two_pages->read_from_process(::getpid(), reinterpret_cast<uintptr_t>(two)));
    auto nowhere = DataBlob::allocate(65536);
    CHECK_EQUAL(CS_ERR_TRY_AGAIN, nowhere->read_from_process(::getpid(), 4096));
    ::munmap(two, page);
}

// From 4 MiB a blob is anonymous memory on a 2 MiB boundary (offered for
// huge pages, so an instance inherits it with its page tables); below that,
// heap. Either way it holds what was written.
TEST(DataStore, LargeAllocationIsHugePageAligned) {
    for (const size_t size : {size_t{100}, size_t{4u << 20}, size_t{(5u << 20) + 3}}) {
        std::shared_ptr<DataBlob> b = DataBlob::allocate(size);
        for (size_t i = 0; i < size; i += 4096)
            b->bytes()[i] = static_cast<unsigned char>(i >> 12);
        b->bytes()[size - 1] = 0x5a;
        if (size >= (4u << 20))
            UNSIGNED_LONGS_EQUAL(0, reinterpret_cast<uintptr_t>(b->data()) % (2u << 20));
        UNSIGNED_LONGS_EQUAL(size, b->size());
        BYTES_EQUAL(0x5a, b->data()[size - 1]);
        if (size > 8192)
            BYTES_EQUAL(1, b->data()[4096]);
    }
}
