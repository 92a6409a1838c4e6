// SPDX-License-Identifier: BSD-3-Clause
// check_data_slot.cpp - tests of data_slot.cpp: what a store publishes, and
// what the supervisor's validated harvest accepts or rejects (scribbled
// length, sequence or bytes, a store cut short, sequence order).
#include <cstring>
#include <string>

#include <CppUTest/TestHarness.h>
#include <sys/mman.h>

#include "data_slot.hpp"
#include "datastore.hpp"
#include "fd.hpp"

using namespace sam;

namespace {

// The slot as the heartbeat memfd holds it: zero-filled shared memory.
struct Slot {
    Mapping map{::mmap(nullptr, sizeof(SlotShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
                sizeof(SlotShared)};
    SlotShared *mem = static_cast<SlotShared *>(map.get());
    DataSlot view() const { return DataSlot(mem); }
    SlotHalf &published_half() const { return mem->half[mem->published.load() & 1]; }
};

std::string text_of(const SlotHarvest &h) {
    return h.blob ? std::string(reinterpret_cast<const char *>(h.blob->data()), h.blob->size()) : "<none>";
}

} // namespace

TEST_GROUP(DataSlot){};

TEST(DataSlot, EmptySlotHasNothing) {
    Slot s;
    const SlotHarvest h = s.view().harvest(0);
    CHECK_TRUE(h.state == SlotState::Nothing);
    CHECK_TRUE(h.blob == nullptr);
    UNSIGNED_LONGS_EQUAL(0, s.view().own_size());
    UNSIGNED_LONGS_EQUAL(0, s.view().published_seq());
}

TEST(DataSlot, StoresAlternateHalvesAndTheLatestIsHarvested) {
    Slot s;
    s.view().write("first", 5, 1);
    const uint64_t p1 = s.mem->published.load();
    s.view().write("second", 6, 2);
    const uint64_t p2 = s.mem->published.load();
    CHECK_TRUE((p1 & 1) != (p2 & 1));
    UNSIGNED_LONGS_EQUAL(2, s.view().published_seq());
    UNSIGNED_LONGS_EQUAL(6, s.view().own_size());
    MEMCMP_EQUAL("second", s.view().own_bytes(), 6);
    const SlotHarvest h = s.view().harvest(0);
    CHECK_TRUE(h.state == SlotState::Valid);
    UNSIGNED_LONGS_EQUAL(2, h.seq);
    STRCMP_EQUAL("second", text_of(h).c_str());
}

TEST(DataSlot, FullSizeRoundTrip) {
    Slot s;
    std::string big(kSlotDataMax, '\0');
    for (size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>(i * 31 + 7);
    s.view().write(big.data(), big.size(), 1);
    const SlotHarvest h = s.view().harvest(0);
    CHECK_TRUE(h.state == SlotState::Valid);
    CHECK_TRUE(text_of(h) == big);
}

// A store the supervisor already has newer data for (through the channel)
// is not taken again; a newer one is.
TEST(DataSlot, SequenceOrder) {
    Slot s;
    s.view().write("old", 3, 4);
    CHECK_TRUE(s.view().harvest(4).state == SlotState::Nothing);
    CHECK_TRUE(s.view().harvest(9).state == SlotState::Nothing);
    s.view().write("new", 3, 5);
    const SlotHarvest h = s.view().harvest(4);
    CHECK_TRUE(h.state == SlotState::Valid);
    STRCMP_EQUAL("new", text_of(h).c_str());
}

// The instance died in the middle of a store: the half being written is
// half-filled and its header stale, but nothing was published. The
// previous store is harvested whole.
TEST(DataSlot, StoreCutShortLeavesThePreviousWhole) {
    Slot s;
    s.view().write("whole", 5, 1);
    unsigned char *next = s.view().next_bytes();
    CHECK_TRUE(next != s.view().own_bytes());
    std::memcpy(next, "torn-in-the-mid", 15); // killed before publish()
    const SlotHarvest h = s.view().harvest(0);
    CHECK_TRUE(h.state == SlotState::Valid);
    UNSIGNED_LONGS_EQUAL(1, h.seq);
    STRCMP_EQUAL("whole", text_of(h).c_str());
}

TEST(DataSlot, ScribbledLengthIsRejected) {
    Slot s;
    s.view().write("data", 4, 1);
    s.published_half().len = kSlotDataMax + 1;
    SlotHarvest h = s.view().harvest(0);
    CHECK_TRUE(h.state == SlotState::BadLength);
    CHECK_TRUE(h.blob == nullptr);
    s.published_half().len = 0;
    CHECK_TRUE(s.view().harvest(0).state == SlotState::BadLength);
    // The instance's own view never reads past the half either.
    s.published_half().len = ~0ULL;
    UNSIGNED_LONGS_EQUAL(0, s.view().own_size());
}

TEST(DataSlot, ScribbledBytesAreRejected) {
    Slot s;
    s.view().write("data", 4, 1);
    s.published_half().bytes[2] ^= 0x40;
    const SlotHarvest h = s.view().harvest(0);
    CHECK_TRUE(h.state == SlotState::BadChecksum);
    CHECK_TRUE(h.blob == nullptr);
    UNSIGNED_LONGS_EQUAL(1, h.seq);
}

TEST(DataSlot, ScribbledLengthWithinRangeIsRejected) {
    Slot s;
    s.view().write("data", 4, 1);
    s.published_half().len = 3;
    CHECK_TRUE(s.view().harvest(0).state == SlotState::BadChecksum);
}

// `published` names a store its half does not carry (a scribble of the
// published word, or of the half's header).
TEST(DataSlot, SequenceMismatchIsRejected) {
    Slot s;
    s.view().write("data", 4, 1);
    s.mem->published.store(s.mem->published.load() + 2 * 7);
    CHECK_TRUE(s.view().harvest(0).state == SlotState::BadSequence);
    Slot t;
    t.view().write("data", 4, 1);
    t.published_half().seq = 2;
    CHECK_TRUE(t.view().harvest(0).state == SlotState::BadSequence);
}

TEST(DataSlot, ChecksumCoversSequenceLengthAndEveryByte) {
    unsigned char buf[100];
    for (size_t i = 0; i < sizeof buf; ++i)
        buf[i] = static_cast<unsigned char>(i);
    const uint64_t base = slot_checksum(1, buf, sizeof buf);
    CHECK_TRUE(slot_checksum(2, buf, sizeof buf) != base);
    CHECK_TRUE(slot_checksum(1, buf, sizeof buf - 1) != base);
    for (size_t i = 0; i < sizeof buf; ++i) {
        buf[i] ^= 1;
        CHECK_TRUE(slot_checksum(1, buf, sizeof buf) != base);
        buf[i] ^= 1;
    }
    // Trailing zero bytes still count through the length.
    unsigned char zeros[40] = {};
    CHECK_TRUE(slot_checksum(1, zeros, 33) != slot_checksum(1, zeros, 34));
}

// The instance's local view after a store, as sam_data_getsize() and
// sam_data_restore() see it in the same instance.
TEST(DataSlot, DataStoreReadsTheSlot) {
    Slot s;
    DataStore store;
    store.replace(DataBlob::copy_of("older, longer", 13));
    s.view().write("slot", 4, 1);
    store.use_slot(s.view());
    UNSIGNED_LONGS_EQUAL(4, store.size());
    char buf[8] = {};
    LONGS_EQUAL(CS_ERR_INVALID_PARAM, store.restore(buf, 3));
    LONGS_EQUAL(CS_OK, store.restore(buf, sizeof buf));
    MEMCMP_EQUAL("slot", buf, 4);
    store.replace(DataBlob::copy_of("channel", 7));
    UNSIGNED_LONGS_EQUAL(7, store.size());
    store.clear();
    UNSIGNED_LONGS_EQUAL(0, store.size());
}
