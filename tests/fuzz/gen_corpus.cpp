// SPDX-License-Identifier: BSD-3-Clause
// gen_corpus.cpp - writes the seed corpus of the supervisor-input fuzzer:
// one file per case, valid requests of every type and the malformed ones the
// supervisor must refuse (bad magic, truncated, oversized, wrong sizes and
// descriptor counts), heartbeat stamps, tunables and replies. The files are
// checked in; run `make corpus` in tests/fuzz after changing the format.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "wire.hpp"

namespace {

using Bytes = std::vector<unsigned char>;

void put16(Bytes &b, uint16_t v) {
    b.push_back(static_cast<unsigned char>(v));
    b.push_back(static_cast<unsigned char>(v >> 8));
}
void put64(Bytes &b, uint64_t v) {
    for (int i = 0; i < 8; ++i)
        b.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

Bytes header(uint16_t type, uint64_t arg = 0, uint64_t size = 0, uint32_t magic = sam::wire::kRequestMagic,
             uint16_t reserved = 0) {
    sam::wire::RequestHeader h{magic, type, reserved, arg, size};
    Bytes b(sizeof h);
    std::memcpy(b.data(), &h, sizeof h);
    return b;
}

void message(Bytes &out, const Bytes &datagram, uint8_t flags) {
    out.push_back(fuzzin::kMessage);
    out.push_back(flags);
    put16(out, static_cast<uint16_t>(datagram.size()));
    out.insert(out.end(), datagram.begin(), datagram.end());
}

void timer(Bytes &out, uint64_t advance, uint64_t stamp) {
    out.push_back(fuzzin::kTimer);
    put64(out, advance);
    put64(out, stamp);
}

void env(Bytes &out, const char *burst, const char *delay, const char *max, const char *reset, uint64_t interval) {
    const char *v[4] = {burst, delay, max, reset};
    uint8_t mask = 0;
    for (int i = 0; i < 4; ++i)
        if (v[i] != nullptr)
            mask |= static_cast<uint8_t>(1U << i);
    out.push_back(fuzzin::kEnv);
    out.push_back(mask);
    for (int i = 0; i < 4; ++i) {
        if (v[i] == nullptr)
            continue;
        out.push_back(static_cast<unsigned char>(std::strlen(v[i])));
        out.insert(out.end(), v[i], v[i] + std::strlen(v[i]));
    }
    put64(out, interval);
}

Bytes with_data(Bytes h, size_t n, unsigned char fill) {
    h.insert(h.end(), n, fill);
    return h;
}

void rec(Bytes &out, fuzzin::RecordKind kind, uint8_t arg) {
    out.push_back(kind);
    out.push_back(arg);
}

bool write(const std::string &dir, const char *name, const Bytes &b) {
    const std::string path = dir + "/" + name;
    FILE *f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || std::fwrite(b.data(), 1, b.size(), f) != b.size() || std::fclose(f) != 0) {
        std::perror(path.c_str());
        return false;
    }
    return true;
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    using T = sam::wire::RequestType;
    const std::string dir = argv[1];
    const uint8_t sock = fuzzin::kViaSocket;
    const auto t = [](T type) { return static_cast<uint16_t>(type); };
    struct Case {
        const char *name;
        Bytes bytes;
    };
    std::vector<Case> cases;
    const auto one = [&](const char *name, const Bytes &datagram, uint8_t flags) {
        Bytes b;
        message(b, datagram, flags);
        cases.push_back({name, b});
    };

    // Valid requests, claimed and through the socket.
    one("valid-start", header(t(T::Start)), 0);
    one("valid-stop-socket", header(t(T::Stop)), sock);
    one("valid-inline-1", with_data(header(t(T::DataStoreInline), 0, 1), 1, 'x'), sock);
    one("valid-inline-max", with_data(header(t(T::DataStoreInline), 0, 32768), 32768, 0x5a), sock);
    one("valid-memfd", header(t(T::DataStoreMemfd), 0, 65536), sock | 1);
    one("valid-remote", header(t(T::DataStoreRemote), 0x10000, 65536), sock);
    one("valid-delete", header(t(T::DataDelete)), sock);
    one("valid-warn-sigusr1", header(t(T::WarnSignalSet), 10), sock);
    one("valid-mark-failed", header(t(T::MarkFailed)), 0);

    // Malformed ones.
    one("bad-empty", Bytes{}, sock);
    one("bad-short-header", Bytes(23, 0), sock);
    one("bad-magic", header(t(T::Start), 0, 0, 0x12345678), sock);
    one("bad-reply-magic-as-request", header(t(T::Start), 0, 0, sam::wire::kReplyMagic), 0);
    one("bad-reserved", header(t(T::Start), 0, 0, sam::wire::kRequestMagic, 1), 0);
    one("bad-type-0", header(0), 0);
    one("bad-type-9", header(9), 0);
    one("bad-type-ffff", header(0xffff), sock);
    one("bad-start-with-arg", header(t(T::Start), 1), 0);
    one("bad-stop-trailing", with_data(header(t(T::Stop)), 3, 0), sock);
    one("bad-inline-size-0", header(t(T::DataStoreInline), 0, 0), 0);
    one("bad-inline-too-big", with_data(header(t(T::DataStoreInline), 0, 32769), 32769, 1), sock);
    one("bad-inline-short", with_data(header(t(T::DataStoreInline), 0, 100), 99, 1), sock);
    one("bad-inline-long", with_data(header(t(T::DataStoreInline), 0, 100), 101, 1), sock);
    one("bad-inline-size-huge", with_data(header(t(T::DataStoreInline), 0, ~0ULL), 16, 1), 0);
    one("bad-inline-with-fd", with_data(header(t(T::DataStoreInline), 0, 4), 4, 1), sock | 1);
    one("bad-memfd-no-fd", header(t(T::DataStoreMemfd), 0, 65536), 0);
    one("bad-memfd-two-fds", header(t(T::DataStoreMemfd), 0, 65536), sock | 2);
    one("bad-memfd-small", header(t(T::DataStoreMemfd), 0, 100), sock | 1);
    one("bad-memfd-unsealed", header(t(T::DataStoreMemfd), 0, 65536),
        sock | 1 | (fuzzin::kFdUnsealed << fuzzin::kFdKindShift));
    one("bad-memfd-wrong-size", header(t(T::DataStoreMemfd), 0, 65536),
        sock | 1 | (fuzzin::kFdWrongSize << fuzzin::kFdKindShift));
    one("bad-memfd-is-pipe", header(t(T::DataStoreMemfd), 0, 65536),
        sock | 1 | (fuzzin::kFdPipe << fuzzin::kFdKindShift));
    one("bad-memfd-size-max", header(t(T::DataStoreMemfd), 0, ~0ULL), sock | 1);
    one("bad-remote-small", header(t(T::DataStoreRemote), 0x10000, 100), sock);
    one("bad-remote-too-big", header(t(T::DataStoreRemote), 0x10000, 4194305), sock);
    one("bad-remote-address-0", header(t(T::DataStoreRemote), 0, 65536), sock);
    one("bad-remote-wraps", header(t(T::DataStoreRemote), ~0ULL - 100, 65536), 0);
    one("bad-remote-with-fd", header(t(T::DataStoreRemote), 0x10000, 65536), sock | 1);
    one("bad-warn-0", header(t(T::WarnSignalSet), 0), 0);
    one("bad-warn-nsig", header(t(T::WarnSignalSet), 65), sock);
    one("bad-warn-huge", header(t(T::WarnSignalSet), 1ULL << 40), 0);
    one("bad-fd-on-start", header(t(T::Start)), sock | 3);
    one("bad-oversized", with_data(header(t(T::DataStoreInline), 0, 40000), 40000, 7), sock);

    // Heartbeat stamps: a session that starts, beats, goes silent, and scribbles.
    {
        Bytes b;
        env(b, nullptr, nullptr, nullptr, nullptr, 100);
        message(b, header(t(T::Start)), sock);
        timer(b, 50000000, 40000000);  // beat, before the deadline
        timer(b, 200000000, 40000000); // silent: warn
        timer(b, 200000000, 40000000); // still silent: kill
        message(b, header(t(T::Start)), 0);
        timer(b, 1000, ~0ULL); // stamp from the future
        cases.push_back({"session-health", b});
    }
    {
        Bytes b;
        env(b, "3", "100", "10000", "10000", 0);
        message(b, header(t(T::Start)), 0);
        timer(b, ~0ULL, 0); // clock at its end, nothing timed
        cases.push_back({"session-untimed", b});
    }
    {
        Bytes b;
        env(b, "0", "1", "9007199254740992", "0", 1);
        for (int i = 0; i < 10; ++i)
            message(b, header(t(T::MarkFailed)), 0);
        cases.push_back({"session-backoff-max", b});
    }
    {
        Bytes b;
        env(b, "-1", "1e3", "", "9007199254740993", 2147483647);
        env(b, "007", "100", "50", "18446744073709551616", 5);
        cases.push_back({"env-invalid", b});
    }
    {
        Bytes b;
        message(b, with_data(header(t(T::DataStoreInline), 0, 8), 8, 'a'), sock);
        message(b, header(t(T::DataStoreMemfd), 0, 40000), sock | 1);
        message(b, header(t(T::DataStoreMemfd), 0, 40000), sock | 1 | (fuzzin::kFdWrongSize << fuzzin::kFdKindShift));
        message(b, header(t(T::DataDelete)), sock);
        cases.push_back({"session-data", b});
    }
    {
        Bytes b;
        b.push_back(fuzzin::kReply);
        b.push_back(8);
        put64(b, 0x0000000153414d52ULL); // magic SAMR, status CS_OK
        b.push_back(fuzzin::kReply);
        b.push_back(7);
        for (int i = 0; i < 7; ++i)
            b.push_back(0);
        cases.push_back({"replies", b});
    }

    // The supervisor's other inputs: the link, stop signals, deaths, policies.
    const uint8_t full = 0x06; // RESTART, QUORUM, CMAP
    {
        Bytes b; // a start that waits for quorum, then runs once corosync says so
        rec(b, fuzzin::kPolicy, full);
        message(b, header(t(T::Start)), 0);
        rec(b, fuzzin::kLink, 3); // corosync: not quorate
        rec(b, fuzzin::kLink, 1); // notification: lost
        rec(b, fuzzin::kLink, 0); // notification: back
        rec(b, fuzzin::kLink, 4); // a stale answer
        rec(b, fuzzin::kLink, 2); // corosync: quorate
        rec(b, fuzzin::kLink, 5); // "running" written
        timer(b, 500000000, 400000000);
        rec(b, fuzzin::kLink, 1); // quorum lost: warn
        timer(b, 2000000000, 0);  // then kill
        cases.push_back({"session-quorum", b});
    }
    {
        Bytes b; // cmap writes that fail or time out, and a stop that does
        rec(b, fuzzin::kPolicy, 0x04);
        message(b, header(t(T::Start)), 0);
        rec(b, fuzzin::kLink, 6); // refused: stays registered
        message(b, header(t(T::Start)), 0);
        rec(b, fuzzin::kLink, 7); // a stale answer
        rec(b, fuzzin::kLink, 5);
        message(b, header(t(T::Stop)), 0);
        rec(b, fuzzin::kLink, 6 | 0x10); // timed out: stays started
        message(b, header(t(T::Stop)), 0);
        rec(b, fuzzin::kLink, 5);
        message(b, header(t(T::MarkFailed)), 0);
        cases.push_back({"session-cmap-writes", b});
    }
    {
        Bytes b; // deaths of every kind, a crash loop into the back-off, a stop signal there
        message(b, header(t(T::Start)), 0);
        rec(b, fuzzin::kDeath, 0x04); // exited 1
        message(b, header(t(T::Start)), 0);
        rec(b, fuzzin::kDeath, 0x25); // killed
        message(b, header(t(T::Start)), 0);
        rec(b, fuzzin::kDeath, 0x02); // dumped core
        message(b, header(t(T::Start)), 0);
        rec(b, fuzzin::kDeath, 0x03); // reaped elsewhere
        timer(b, 50000000, 0);
        rec(b, fuzzin::kSignal, 0);   // SIGTERM while backing off: exit
        rec(b, fuzzin::kSignal, 2);   // SIGHUP: forwarded
        rec(b, fuzzin::kDeath, 0x00); // not started: exit
        cases.push_back({"session-deaths", b});
    }
    {
        Bytes b; // policy QUIT; a first fork that fails; restarts that cannot fork
        rec(b, fuzzin::kPolicy, 0x01);
        message(b, header(t(T::Start)), 0);
        rec(b, fuzzin::kDeath, 0x04);
        rec(b, fuzzin::kPolicy, 0x40 | 0x10);
        message(b, header(t(T::Start)), 0);
        rec(b, fuzzin::kDeath, 0x04);
        timer(b, 200000000, 0);
        rec(b, fuzzin::kPolicy, 0x30);
        message(b, header(t(T::Start)), 0);
        rec(b, fuzzin::kDeath, 0x04);
        cases.push_back({"session-policies", b});
    }

    for (const Case &c : cases)
        if (!write(dir, c.name, c.bytes))
            return 1;
    std::printf("gen_corpus: %zu files written to %s\n", cases.size(), dir.c_str());
    return 0;
}
