// SPDX-License-Identifier: BSD-3-Clause
// data_slot.hpp - small sam_data_store() without a system call.
//
// Data up to kSlotDataMax bytes is not sent to the supervisor at all: the
// instance writes it into a slot in the memory it shares with its supervisor
// (the heartbeat page's memfd, see health.hpp), and the supervisor takes it
// from there when it needs it (the instance's death, the instance closing
// its channel in sam_finalize()).
//
// The slot is double-buffered. A store writes the half that is not
// published (bytes, length, sequence number, checksum) and then publishes
// it with one release store of `published` (sequence * 2 + half). Until
// that store the published half is untouched, so an instance killed in the
// middle of a store leaves its previous data whole.
//
// The supervisor trusts nothing in the slot: it copies the published half
// into its own memory and accepts it only if the length is in range, the
// half carries the sequence number that `published` names, the checksum of
// its copy matches, and `published` did not move while it copied. A slot
// that fails costs only the data of the instance that owns it.
//
// One sequence orders both ways of storing: the supervisor notes the slot's
// published sequence whenever a store or delete reaches it through the
// channel (the instance has published every earlier slot store by then), and
// takes the slot later only if its sequence is newer than that note.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace sam {

class DataBlob;

// Bytes per half. Chosen by measurement (README, Benchmark): a store of this
// size through the slot costs a copy and a checksum, about a third of a
// round trip to the supervisor, and the slot's pages are only allocated once
// written (a 64 B store touches one page per half).
inline constexpr size_t kSlotDataMax = 64 * 1024;

struct alignas(64) SlotHalf {
    uint64_t seq;   // the store's sequence number (from 1)
    uint64_t len;   // 1..kSlotDataMax
    uint64_t check; // slot_checksum(seq, bytes, len)
    unsigned char bytes[kSlotDataMax];
};

struct alignas(64) SlotShared {
    std::atomic<uint64_t> published; // seq * 2 + half; 0: nothing stored
    SlotHalf half[2];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "the slot must be lock-free");

// Order-dependent 64-bit checksum of the bytes, their length and sequence.
// Not a defence against a hostile instance (it may store what it likes
// anyway): it catches stray writes into the slot.
[[nodiscard]] uint64_t slot_checksum(uint64_t seq, const unsigned char *bytes, size_t len) noexcept;

// What the supervisor found in a slot.
enum class SlotState {
    Nothing,     // no slot store newer than the one the supervisor has
    Valid,       // a newer store, copied out whole
    BadLength,   // the published half's length is out of range
    BadSequence, // the published half does not carry the published sequence
    BadChecksum, // its bytes do not match their checksum
    Torn,        // the instance kept rewriting it while it was read
    NoMemory,    // no memory for the copy
};
[[nodiscard]] const char *slot_state_name(SlotState s) noexcept;

struct SlotHarvest {
    SlotState state = SlotState::Nothing;
    uint64_t seq = 0;               // the published sequence that was looked at
    std::shared_ptr<DataBlob> blob; // Valid: the data
};

// A view of a SlotShared (nullptr: no slot).
class DataSlot {
  public:
    DataSlot() = default;
    explicit DataSlot(void *mem) noexcept : s_(static_cast<SlotShared *>(mem)) {}
    [[nodiscard]] bool valid() const noexcept { return s_ != nullptr; }

    // Instance side: a store fills next_bytes() (the half that is not
    // published) with 1..kSlotDataMax bytes, then publishes them as store
    // `seq`, which must be larger than any before. No system call.
    [[nodiscard]] unsigned char *next_bytes() const noexcept;
    void publish(size_t len, uint64_t seq) const noexcept;
    void write(const void *data, size_t len, uint64_t seq) const noexcept;
    // Instance side: what it last published (its own memory).
    [[nodiscard]] size_t own_size() const noexcept;
    [[nodiscard]] const unsigned char *own_bytes() const noexcept;

    // The published sequence (0: nothing stored).
    [[nodiscard]] uint64_t published_seq() const noexcept {
        return s_ ? s_->published.load(std::memory_order_acquire) / 2 : 0;
    }

    // Supervisor side: the published store if its sequence is above
    // `newer_than`, copied and validated (see above).
    [[nodiscard]] SlotHarvest harvest(uint64_t newer_than) const noexcept;

  private:
    SlotShared *s_ = nullptr;
};

} // namespace sam
