// SPDX-License-Identifier: BSD-3-Clause
// data_slot.cpp - the small-store slot: write, checksum, validated harvest.
#include "data_slot.hpp"

#include <cstring>
#include <new>

#include "datastore.hpp"

namespace sam {

namespace {

constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;

uint64_t load64(const unsigned char *p) noexcept {
    uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

uint64_t mix(uint64_t h, uint64_t w) noexcept {
    h = (h ^ w) * kMul;
    return h ^ (h >> 29);
}

// A reader that sees `published` change this often gives up for now.
constexpr int kHarvestTries = 4;

} // namespace

uint64_t slot_checksum(uint64_t seq, const unsigned char *bytes, size_t len) noexcept {
    // Four independent lanes, so the multiplications overlap: a 64 KiB store
    // checksums in a few microseconds.
    uint64_t h[4] = {seq ^ 0x736c6f7430ULL, static_cast<uint64_t>(len) ^ 0x736c6f7431ULL, 0x736c6f7432ULL,
                     0x736c6f7433ULL};
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        h[0] = mix(h[0], load64(bytes + i));
        h[1] = mix(h[1], load64(bytes + i + 8));
        h[2] = mix(h[2], load64(bytes + i + 16));
        h[3] = mix(h[3], load64(bytes + i + 24));
    }
    unsigned char tail[32] = {};
    std::memcpy(tail, bytes + i, len - i);
    for (int l = 0; l < 4; ++l)
        h[l] = mix(h[l], load64(tail + 8 * l));
    uint64_t r = h[0];
    for (int l = 1; l < 4; ++l)
        r = mix(r, h[l]);
    return r;
}

const char *slot_state_name(SlotState s) noexcept {
    switch (s) {
    case SlotState::Nothing:
        return "nothing new";
    case SlotState::Valid:
        return "valid";
    case SlotState::BadLength:
        return "length out of range";
    case SlotState::BadSequence:
        return "sequence does not match";
    case SlotState::BadChecksum:
        return "checksum does not match";
    case SlotState::Torn:
        return "rewritten while it was read";
    case SlotState::NoMemory:
        return "no memory to copy it";
    }
    return "?";
}

namespace {
unsigned next_half(const SlotShared &s) noexcept {
    const uint64_t was = s.published.load(std::memory_order_relaxed);
    return was == 0 ? 0 : static_cast<unsigned>((was & 1) ^ 1);
}
} // namespace

unsigned char *DataSlot::next_bytes() const noexcept { return s_->half[next_half(*s_)].bytes; }

void DataSlot::publish(size_t len, uint64_t seq) const noexcept {
    const unsigned idx = next_half(*s_);
    SlotHalf &h = s_->half[idx];
    h.len = len;
    h.seq = seq;
    h.check = slot_checksum(seq, h.bytes, len);
    s_->published.store(seq * 2 + idx, std::memory_order_release);
}

void DataSlot::write(const void *data, size_t len, uint64_t seq) const noexcept {
    std::memcpy(next_bytes(), data, len);
    publish(len, seq);
}

size_t DataSlot::own_size() const noexcept {
    const uint64_t p = s_ ? s_->published.load(std::memory_order_relaxed) : 0;
    if (p == 0)
        return 0;
    const uint64_t len = s_->half[p & 1].len;
    return len <= kSlotDataMax ? static_cast<size_t>(len) : 0;
}

const unsigned char *DataSlot::own_bytes() const noexcept {
    const uint64_t p = s_ ? s_->published.load(std::memory_order_relaxed) : 0;
    return p == 0 ? nullptr : s_->half[p & 1].bytes;
}

SlotHarvest DataSlot::harvest(uint64_t newer_than) const noexcept {
    SlotHarvest out;
    if (s_ == nullptr)
        return out;
    for (int attempt = 0; attempt < kHarvestTries; ++attempt) {
        const uint64_t p = s_->published.load(std::memory_order_acquire);
        out.seq = p / 2;
        out.blob.reset();
        if (p == 0 || out.seq <= newer_than) {
            out.state = SlotState::Nothing;
            return out;
        }
        // Each field read once, into our memory, before it is judged: the
        // instance may be writing while we read.
        const volatile SlotHalf &h = s_->half[p & 1];
        const uint64_t seq = h.seq;
        const uint64_t len = h.len;
        const uint64_t check = h.check;
        if (len == 0 || len > kSlotDataMax) {
            out.state = SlotState::BadLength;
        } else if (seq != out.seq) {
            out.state = SlotState::BadSequence;
        } else {
            try {
                out.blob = DataBlob::allocate(static_cast<size_t>(len));
            } catch (const std::bad_alloc &) {
                out.state = SlotState::NoMemory;
                return out;
            }
            std::memcpy(out.blob->bytes(), const_cast<const unsigned char *>(h.bytes), static_cast<size_t>(len));
            out.state = slot_checksum(seq, out.blob->bytes(), static_cast<size_t>(len)) == check
                            ? SlotState::Valid
                            : SlotState::BadChecksum;
        }
        // The copy counts only if nothing was published meanwhile: a store
        // writes only the half that is not published, so this half can be
        // rewritten only after `published` has moved away from it.
        std::atomic_thread_fence(std::memory_order_acquire);
        if (s_->published.load(std::memory_order_relaxed) == p) {
            if (out.state != SlotState::Valid)
                out.blob.reset();
            return out;
        }
    }
    out.state = SlotState::Torn;
    out.blob.reset();
    return out;
}

} // namespace sam
