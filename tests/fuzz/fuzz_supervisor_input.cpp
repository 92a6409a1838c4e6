// SPDX-License-Identifier: BSD-3-Clause
// fuzz_supervisor_input.cpp - libFuzzer target for everything the supervisor
// takes from an instance: channel datagrams (wire::decode_request, through a
// real SOCK_SEQPACKET pair and channel_receive() when the input asks for it),
// passed descriptors (DataBlob::from_sealed_memfd), heartbeat page stamps
// (HealthDeadline::on_timer) and, on the side, the restart back-off and its
// environment tunables (read_backoff_config, parse_tunable).
//
// The input is a sequence of records that drive a small model of the
// supervisor's loop (see the format in fuzz_input.hpp). Every decision of the
// library is compared with an independent reading of the wire contract
// (wire.hpp and the API rules in sam_overview(3)); any disagreement aborts, so the fuzzer finds wrong
// answers as well as crashes.
//
// Built twice: with clang -fsanitize=fuzzer,address,undefined as the fuzzer,
// and with the ordinary compiler plus replay_main.cpp, which runs every file of
// the seed corpus through the same function.
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backoff.hpp"
#include "channel.hpp"
#include "datastore.hpp"
#include "fuzz_input.hpp"
#include "health.hpp"
#include "wire.hpp"

namespace {

using namespace sam;

[[noreturn]] void fail(const char *what, unsigned line) {
    std::fprintf(stderr, "fuzz_supervisor_input: invariant broken at line %u: %s\n", line, what);
    std::abort();
}
#define EXPECT(cond)                                                                                                   \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            fail(#cond, __LINE__);                                                                                     \
    } while (0)

// Reads the input front to back; past the end every read yields zeros.
class Reader {
  public:
    Reader(const uint8_t *p, size_t n) : p_(p), n_(n) {}
    bool done() const { return off_ >= n_; }
    uint8_t u8() { return off_ < n_ ? p_[off_++] : 0; }
    uint16_t u16() {
        uint16_t v = u8();
        return static_cast<uint16_t>(v | (u8() << 8));
    }
    uint64_t u64() {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
            v |= static_cast<uint64_t>(u8()) << (8 * i);
        return v;
    }
    // Up to `want` bytes, fewer at the end of the input.
    std::vector<unsigned char> bytes(size_t want) {
        const size_t have = off_ < n_ ? n_ - off_ : 0;
        const size_t take = want < have ? want : have;
        std::vector<unsigned char> v(p_ + off_, p_ + off_ + take);
        off_ += take;
        return v;
    }

  private:
    const uint8_t *p_;
    size_t n_;
    size_t off_ = 0;
};

// The wire contract, written out again independently of wire.cpp.
bool reference_accepts(const unsigned char *buf, size_t len, size_t fds) {
    if (len < 24)
        return false;
    uint32_t magic;
    uint16_t type, reserved;
    uint64_t arg, size;
    std::memcpy(&magic, buf, 4);
    std::memcpy(&type, buf + 4, 2);
    std::memcpy(&reserved, buf + 6, 2);
    std::memcpy(&arg, buf + 8, 8);
    std::memcpy(&size, buf + 16, 8);
    const size_t payload = len - 24;
    if (magic != 0x53414d31 || reserved != 0)
        return false;
    switch (type) {
    case 1: // start
    case 2: // stop
    case 5: // data delete
    case 7: // mark failed
        return fds == 0 && payload == 0 && arg == 0 && size == 0;
    case 3: // inline data
        return fds == 0 && arg == 0 && size >= 1 && size <= 32768 && payload == size;
    case 4: // memfd data
        return fds == 1 && arg == 0 && size > 32768 && payload == 0;
    case 8: // data read from the instance's memory
        return fds == 0 && payload == 0 && size > 32768 && size <= 4194304 && arg != 0 && arg + size > arg;
    case 6: // warn signal
        return fds == 0 && payload == 0 && size == 0 && arg >= 1 && arg < static_cast<uint64_t>(NSIG);
    default:
        return false;
    }
}

// One socket pair for the whole run, like the supervisor's channel.
struct Channel {
    int instance_end = -1;
    int supervisor_end = -1;
    Channel() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
            std::perror("socketpair");
            std::abort();
        }
        instance_end = sv[0];
        supervisor_end = sv[1];
        // Room for the largest input the fuzzer makes (-max_len).
        int big = 1 << 20;
        (void)::setsockopt(instance_end, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
        (void)::setsockopt(supervisor_end, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }
};

Channel &channel() {
    static Channel c;
    return c;
}

// A descriptor of the kind the record asks for, to pass with a datagram.
UniqueFd make_passed_fd(unsigned kind, uint64_t claimed_size) {
    const uint64_t kMaxReal = 1ULL << 20; // keeps each run fast; larger claims get a wrong size
    const uint64_t real = claimed_size <= kMaxReal ? claimed_size : 4096;
    switch (kind) {
    case fuzzin::kFdSealedRight:
    case fuzzin::kFdUnsealed:
    case fuzzin::kFdWrongSize: {
        UniqueFd fd(::memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!fd)
            return fd;
        const uint64_t len = kind == fuzzin::kFdWrongSize ? real + 1 : real;
        if (::ftruncate(fd.get(), static_cast<off_t>(len)) != 0)
            return UniqueFd();
        if (kind != fuzzin::kFdUnsealed)
            (void)::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
        return fd;
    }
    default: {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0)
            return UniqueFd();
        ::close(p[1]);
        return UniqueFd(p[0]);
    }
    }
}

// What the supervisor's loop keeps between records.
struct Model {
    HealthDeadline deadline{0};
    RestartBackoff backoff{BackoffConfig{}};
    DataStore store;
    std::vector<unsigned char> expected_data; // what restore must give back
    bool data_from_memfd = false;             // stored data came from a memfd (not compared bytewise)
    uint64_t now = 1;
    uint64_t spawned_at = 1;
    int warn_signal = SIGTERM;
    unsigned restarts = 0;
};

void check_store(Model &m) {
    EXPECT(m.store.size() == m.expected_data.size() || m.data_from_memfd);
    std::vector<unsigned char> out(m.store.size() + 1, 0xA5);
    EXPECT(m.store.restore(out.data(), out.size()) == CS_OK);
    if (!m.data_from_memfd && !m.expected_data.empty())
        EXPECT(std::memcmp(out.data(), m.expected_data.data(), m.expected_data.size()) == 0);
    if (m.store.size() > 0)
        EXPECT(m.store.restore(out.data(), m.store.size() - 1) == CS_ERR_INVALID_PARAM);
}

// The instance is gone (killed for a bad message or silence): what after_death() does.
void instance_failed(Model &m, uint64_t ran_for_ms_hint) {
    const uint64_t before = m.backoff.quick_failures();
    const uint64_t ran_ms = ran_for_ms_hint;
    const uint64_t delay = m.backoff.on_failure(ran_ms);
    const BackoffConfig &c = m.backoff.config();
    if (ran_ms >= c.reset_ms)
        EXPECT(m.backoff.quick_failures() == 1);
    else
        EXPECT(m.backoff.quick_failures() == before + 1);
    if (c.delay_ms == 0 || m.backoff.quick_failures() <= c.burst)
        EXPECT(delay == 0);
    else
        EXPECT(delay >= 1 && delay <= c.delay_max_ms);
    m.deadline = HealthDeadline(m.deadline.interval_ns() / 1000000ULL);
    m.spawned_at = m.now;
    ++m.restarts;
}

void apply_request(Model &m, const wire::Request &r, const unsigned char *buf, size_t len, Received *msg) {
    switch (r.type) {
    case wire::RequestType::Start:
        if (!m.deadline.running())
            m.deadline.start(m.now);
        return;
    case wire::RequestType::Stop:
        m.deadline.stop();
        return;
    case wire::RequestType::DataStoreInline: {
        EXPECT(r.inline_data == buf + sizeof(wire::RequestHeader));
        EXPECT(r.size == len - sizeof(wire::RequestHeader));
        m.store.replace(DataBlob::copy_of(r.inline_data, r.size));
        m.expected_data.assign(r.inline_data, r.inline_data + r.size);
        m.data_from_memfd = false;
        check_store(m);
        return;
    }
    case wire::RequestType::DataStoreMemfd: {
        EXPECT(r.size > wire::kInlineDataMax);
        if (msg == nullptr || !msg->fds[0])
            return; // the descriptor count was only claimed
        cs_error_t err = CS_OK;
        auto blob = DataBlob::from_sealed_memfd(msg->fds[0].get(), r.size, err);
        if (blob) {
            EXPECT(blob->size() == r.size);
            m.store.replace(std::move(blob));
            m.expected_data.clear();
            m.data_from_memfd = true;
        } else {
            EXPECT(err == CS_ERR_MESSAGE_ERROR || err == CS_ERR_NO_MEMORY || err == CS_ERR_LIBRARY);
        }
        check_store(m);
        return;
    }
    case wire::RequestType::DataStoreRemote: {
        EXPECT(r.size > wire::kInlineDataMax && r.size <= wire::kRemoteDataMax && r.arg != 0);
        // This process stands in for the instance: whatever lies at that
        // address here (usually nothing) is what the supervisor would copy.
        auto blob = DataBlob::allocate(r.size);
        const cs_error_t err = blob->read_from_process(::getpid(), r.arg);
        if (err == CS_OK) {
            EXPECT(blob->size() == r.size);
            m.store.replace(std::move(blob));
            m.expected_data.clear();
            m.data_from_memfd = true; // bytes the model does not know
        } else {
            EXPECT(err == CS_ERR_TRY_AGAIN || err == CS_ERR_NO_MEMORY || err == CS_ERR_NOT_SUPPORTED ||
                   err == CS_ERR_LIBRARY);
        }
        check_store(m);
        return;
    }
    case wire::RequestType::DataDelete:
        m.store.clear();
        m.expected_data.clear();
        m.data_from_memfd = false;
        EXPECT(m.store.size() == 0);
        return;
    case wire::RequestType::WarnSignalSet:
        EXPECT(r.arg >= 1 && r.arg < static_cast<uint64_t>(NSIG));
        m.warn_signal = static_cast<int>(r.arg);
        return;
    case wire::RequestType::MarkFailed:
        instance_failed(m, 0);
        return;
    }
    fail("decoded an unknown request type", __LINE__);
}

void on_message(Model &m, Reader &in) {
    const uint8_t flags = in.u8();
    const uint16_t len = in.u16();
    std::vector<unsigned char> datagram = in.bytes(len);
    const size_t max_len = sizeof(wire::RequestHeader) + wire::kInlineDataMax;

    if ((flags & fuzzin::kViaSocket) == 0) {
        const size_t fds = flags & fuzzin::kFdCountMask;
        const wire::DecodeResult d = wire::decode_request(datagram.data(), datagram.size(), fds);
        EXPECT(d.request.has_value() == reference_accepts(datagram.data(), datagram.size(), fds));
        EXPECT(d.request.has_value() || !d.error.empty());
        if (d.request) {
            EXPECT(std::strcmp(wire::request_name(d.request->type), "unknown") != 0);
            m.deadline.life(m.now);
            apply_request(m, *d.request, datagram.data(), datagram.size(), nullptr);
        } else {
            instance_failed(m, (m.now - m.spawned_at) / 1000000ULL);
        }
        return;
    }

    // Through the real channel: send as the instance would, receive as the supervisor does.
    Channel &c = channel();
    const unsigned fd_kind = (flags >> fuzzin::kFdKindShift) & 3U;
    const size_t pass = flags & fuzzin::kFdCountMask;
    uint64_t claimed = 0;
    if (datagram.size() >= 24)
        std::memcpy(&claimed, datagram.data() + 16, 8);
    std::vector<UniqueFd> passed;
    for (size_t i = 0; i < pass; ++i) {
        passed.push_back(make_passed_fd(i == 0 ? fd_kind : fuzzin::kFdPipe, claimed));
        if (!passed.back())
            return; // the kernel said no (fd limit, size): nothing to test
    }
    iovec iov{datagram.data(), datagram.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(3 * sizeof(int))];
    if (pass > 0) {
        std::memset(control, 0, sizeof control);
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(pass * sizeof(int));
        cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(pass * sizeof(int));
        for (size_t i = 0; i < pass; ++i) {
            const int fd = passed[i].get();
            std::memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof fd);
        }
    }
    const ssize_t sent = ::sendmsg(c.instance_end, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0)
        return; // e.g. EMSGSIZE: the kernel refuses before the supervisor ever sees it
    EXPECT(static_cast<size_t>(sent) == datagram.size());

    std::vector<unsigned char> buf(max_len);
    Received msg = channel_receive(c.supervisor_end, buf.data(), buf.size());
    if (datagram.empty() && pass == 0) {
        // An empty datagram reads as "closed" on SEQPACKET: the supervisor drops the channel.
        EXPECT(msg.kind == Received::Kind::Closed);
        return;
    }
    EXPECT(msg.kind == Received::Kind::Message);
    EXPECT(msg.fd_count == pass);
    EXPECT(msg.fds[0].valid() == (pass > 0));
    EXPECT(msg.truncated == (datagram.size() > max_len));
    EXPECT(channel_receive(c.supervisor_end, buf.data(), buf.size()).kind == Received::Kind::Nothing);
    if (msg.truncated) {
        instance_failed(m, 0); // "sent an oversized message"
        return;
    }
    EXPECT(std::vector<unsigned char>(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(msg.len)) == datagram);
    const wire::DecodeResult d = wire::decode_request(buf.data(), msg.len, msg.fd_count);
    EXPECT(d.request.has_value() == reference_accepts(buf.data(), msg.len, msg.fd_count));
    if (!d.request) {
        instance_failed(m, 0);
        return;
    }
    m.deadline.life(m.now);
    apply_request(m, *d.request, buf.data(), msg.len, &msg);
    // The supervisor's answer must decode on the instance side.
    EXPECT(channel_reply(c.supervisor_end, CS_OK));
    wire::Reply reply{};
    const ssize_t n = ::recv(c.instance_end, &reply, sizeof reply, MSG_DONTWAIT);
    EXPECT(n == static_cast<ssize_t>(sizeof reply));
    auto status = wire::decode_reply(&reply, sizeof reply);
    EXPECT(status && *status == CS_OK);
}

void on_timer(Model &m, Reader &in) {
    const uint64_t advance = in.u64();
    const uint64_t stamp = in.u64();
    m.now = saturating_add(m.now, advance);
    const uint64_t deadline_before = m.deadline.next_deadline();
    const bool warned_before = m.deadline.was_warned();

    // The stamp goes through a real shared page, as the instance writes it.
    static std::optional<HeartbeatPage> page = HeartbeatPage::create();
    EXPECT(page && page->valid());
    page->beat(stamp);
    EXPECT(page->last_beat() == stamp);

    const HealthVerdict v = m.deadline.on_timer(m.now, page->last_beat());
    if (stamp > saturating_add(m.now, HealthDeadline::kFutureSlackNs)) {
        EXPECT(v == HealthVerdict::Corrupt);
        EXPECT(m.deadline.next_deadline() == deadline_before); // a scribble never buys time
        instance_failed(m, (m.now - m.spawned_at) / 1000000ULL);
        return;
    }
    EXPECT(v != HealthVerdict::Corrupt);
    const uint64_t deadline = m.deadline.next_deadline();
    EXPECT(deadline >= deadline_before || deadline_before == 0);
    if (!m.deadline.running() || !m.deadline.timed()) {
        EXPECT(v == HealthVerdict::Wait);
        EXPECT(deadline == 0);
        return;
    }
    EXPECT(deadline >= m.deadline.last_life());
    switch (v) {
    case HealthVerdict::Wait:
        EXPECT(m.now < deadline);
        break;
    case HealthVerdict::Warn:
        EXPECT(!warned_before && m.now >= deadline);
        m.deadline.warned(m.now);
        EXPECT(m.deadline.next_deadline() > m.now || m.deadline.next_deadline() == UINT64_MAX);
        break;
    case HealthVerdict::Stalled:
        // Our timer fired at least the stall threshold late: one more
        // interval from now, never less.
        EXPECT(deadline_before != 0 && m.now >= saturating_add(deadline_before, m.deadline.stall_threshold()));
        EXPECT(deadline == saturating_add(m.now, m.deadline.interval_ns()) || deadline > m.now);
        break;
    case HealthVerdict::Kill:
        EXPECT(warned_before && m.now >= deadline);
        instance_failed(m, (m.now - m.spawned_at) / 1000000ULL);
        break;
    case HealthVerdict::Corrupt:
        break;
    }
}

// Environment tunables, as sam_initialize() reads them.
std::string g_env[4];
bool g_env_set[4];
const char *fake_getenv(const char *name) {
    static const char *const names[4] = {"SAM_RESTART_BURST", "SAM_RESTART_DELAY_MS", "SAM_RESTART_DELAY_MAX_MS",
                                         "SAM_RESTART_RESET_MS"};
    for (int i = 0; i < 4; ++i)
        if (std::strcmp(name, names[i]) == 0)
            return g_env_set[i] ? g_env[i].c_str() : nullptr;
    return nullptr;
}

bool reference_tunable(const std::string &s, uint64_t &out) {
    if (s.empty() || s.size() > 20)
        return false;
    unsigned __int128 v = 0;
    for (char ch : s) {
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + static_cast<unsigned>(ch - '0');
    }
    if (v > (static_cast<unsigned __int128>(1) << 53))
        return false;
    out = static_cast<uint64_t>(v);
    return true;
}

void on_env(Model &m, Reader &in) {
    const uint8_t mask = in.u8();
    for (int i = 0; i < 4; ++i) {
        g_env_set[i] = (mask >> i) & 1U;
        if (!g_env_set[i])
            continue;
        std::vector<unsigned char> raw = in.bytes(in.u8() % 32);
        g_env[i].assign(raw.begin(), raw.end());
        g_env[i] = std::string(g_env[i].c_str()); // an environment string ends at its first NUL
        uint64_t lib = 0, ref = 0;
        const bool lib_ok = parse_tunable(g_env[i].c_str(), lib);
        const bool ref_ok = reference_tunable(g_env[i], ref);
        // Leading zeros make strings longer than 20 digits valid for the
        // library; the reference stops at 20 characters, so only compare there.
        if (g_env[i].size() <= 20)
            EXPECT(lib_ok == ref_ok);
        if (lib_ok && ref_ok)
            EXPECT(lib == ref);
        if (lib_ok)
            EXPECT(lib <= (1ULL << 53));
    }
    std::vector<std::string> complaints;
    const BackoffConfig c = read_backoff_config(&fake_getenv, complaints);
    EXPECT(c.delay_max_ms >= c.delay_ms);
    EXPECT(c.burst <= (1ULL << 53) && c.delay_max_ms <= (1ULL << 53) && c.reset_ms <= (1ULL << 53));
    m.backoff = RestartBackoff(c);
    // The schedule never shrinks within a crash loop and never passes its cap.
    RestartBackoff probe(c);
    uint64_t last = 0;
    for (int i = 0; i < 80; ++i) {
        const uint64_t d = probe.on_failure(0);
        EXPECT(d >= last || d == 0);
        EXPECT(d <= c.delay_max_ms);
        if (c.delay_ms == 0 || static_cast<uint64_t>(i) < c.burst)
            EXPECT(d == 0);
        last = d;
    }
    // The health interval comes from the same record: any 32-bit int is possible.
    m.deadline = HealthDeadline(in.u64() & 0x7fffffffULL);
}

void on_reply(Reader &in) {
    std::vector<unsigned char> raw = in.bytes(in.u8() % 16);
    auto status = wire::decode_reply(raw.data(), raw.size());
    uint32_t magic = 0;
    if (raw.size() == sizeof(wire::Reply))
        std::memcpy(&magic, raw.data(), 4);
    EXPECT(status.has_value() == (raw.size() == sizeof(wire::Reply) && magic == wire::kReplyMagic));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Reader in(data, size);
    Model m;
    m.deadline = HealthDeadline(1000);
    for (int records = 0; !in.done() && records < 256; ++records) {
        switch (in.u8() % 4) {
        case fuzzin::kMessage:
            on_message(m, in);
            break;
        case fuzzin::kTimer:
            on_timer(m, in);
            break;
        case fuzzin::kEnv:
            on_env(m, in);
            break;
        case fuzzin::kReply:
            on_reply(in);
            break;
        }
    }
    return 0;
}
