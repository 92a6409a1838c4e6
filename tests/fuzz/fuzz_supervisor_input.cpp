// SPDX-License-Identifier: BSD-3-Clause
// fuzz_supervisor_input.cpp - libFuzzer target for everything the supervisor
// takes from an instance: channel datagrams (wire::decode_request, through a
// real SOCK_SEQPACKET pair and channel_receive() when the input asks for it),
// passed descriptors (DataBlob::from_sealed_memfd), heartbeat page stamps
// (HealthDeadline::on_timer) and, on the side, the restart back-off and its
// environment tunables (read_backoff_config, parse_tunable).
//
// The input is a sequence of records that drive the supervisor's real core
// (supervisor_core.hpp) through a stand-in for its shell (see the format in
// fuzz_input.hpp): messages, timer expiries, deaths, stop signals, answers of
// the link, new policies. The shell here carries the core's actions out on
// real objects (data store, memfds, the channel) and checks, after every
// step, what must hold whatever the input: the phase agrees with what is
// pending, replies go only to an open channel, the timer serves what is due,
// a restart waits no longer than the back-off allows, a scribbled heartbeat
// kills. The wire contract is also compared with an independent reading
// (wire.hpp and the API rules in sam_overview(3)). Any disagreement aborts,
// so the fuzzer finds wrong answers as well as crashes.
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
#include <sys/wait.h>
#include <unistd.h>

#include "backoff.hpp"
#include "channel.hpp"
#include "datastore.hpp"
#include "fuzz_input.hpp"
#include "health.hpp"
#include "supervisor_core.hpp"
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
        return fds == 0 && payload == 0 && size > 32768 && size <= 67108864 && arg != 0 && arg + size > arg;
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

// The stand-in shell: the core, and what the real shell would hold for it.
struct Shell {
    core::Config config;
    std::optional<core::State> s;
    DataStore store;
    std::vector<unsigned char> expected_data; // what restore must give back
    bool data_from_memfd = false;             // stored data came from a memfd (not compared bytewise)
    uint64_t now = 1;
    unsigned last_iid = 0;
    int spawn_failure = 0; // errno for the next fork, once (0: it works)
    std::vector<core::Event> events;
    // The request being dispatched (for RunData) and its result.
    const wire::Request *request = nullptr;
    const unsigned char *request_buf = nullptr;
    size_t request_len = 0;
    Received *message = nullptr;
    std::shared_ptr<const DataBlob> data_result;
    bool data_delete = false;
    std::vector<unsigned char> data_result_bytes;
    bool data_result_known = false;
    uint64_t write_ticket = 0, check_ticket = 0; // the last awaited write and quorum question
    unsigned supervisors = 0;                    // how many supervisors ended and were replaced
};

void check_store(Shell &m) {
    EXPECT(m.store.size() == m.expected_data.size() || m.data_from_memfd);
    std::vector<unsigned char> out(m.store.size() + 1, 0xA5);
    EXPECT(m.store.restore(out.data(), out.size()) == CS_OK);
    if (!m.data_from_memfd && !m.expected_data.empty())
        EXPECT(std::memcmp(out.data(), m.expected_data.data(), m.expected_data.size()) == 0);
    if (m.store.size() > 0)
        EXPECT(m.store.restore(out.data(), m.store.size() - 1) == CS_ERR_INVALID_PARAM);
}

void drain(Shell &m);

// A new supervisor (sam_register()) with the shell's current configuration.
void new_supervisor(Shell &m) {
    m.s.emplace(m.config, SIGTERM, /* quorate_now= */ true);
    m.events.push_back(core::Event::begin(m.now));
    drain(m);
}

// What the real shell's RunData does, on real objects (this process stands
// in for the instance); the result goes back as DataDone.
void run_data(Shell &m) {
    EXPECT(m.request != nullptr);
    const wire::Request &r = *m.request;
    m.data_result.reset();
    m.data_delete = false;
    m.data_result_known = false;
    switch (r.type) {
    case wire::RequestType::DataStoreInline:
        EXPECT(r.inline_data == m.request_buf + sizeof(wire::RequestHeader));
        EXPECT(r.size == m.request_len - sizeof(wire::RequestHeader));
        m.data_result = DataBlob::copy_of(r.inline_data, r.size);
        m.data_result_bytes.assign(r.inline_data, r.inline_data + r.size);
        m.data_result_known = true;
        m.events.push_back(core::Event::data_done(m.now, CS_OK));
        return;
    case wire::RequestType::DataStoreMemfd: {
        EXPECT(r.size > wire::kInlineDataMax);
        if (m.message == nullptr || !m.message->fds[0]) {
            // The descriptor count was only claimed: say it was not a memfd.
            m.events.push_back(core::Event::data_done(m.now, CS_ERR_MESSAGE_ERROR, "sent no descriptor"));
            return;
        }
        cs_error_t err = CS_OK;
        auto blob = DataBlob::from_sealed_memfd(m.message->fds[0].get(), r.size, err);
        if (!blob) {
            EXPECT(err == CS_ERR_MESSAGE_ERROR || err == CS_ERR_NO_MEMORY || err == CS_ERR_LIBRARY);
            m.events.push_back(core::Event::data_done(m.now, err, "sent a bad memfd"));
            return;
        }
        EXPECT(blob->size() == r.size);
        m.data_result = std::move(blob);
        m.events.push_back(core::Event::data_done(m.now, CS_OK));
        return;
    }
    case wire::RequestType::DataStoreRemote: {
        EXPECT(r.size > wire::kInlineDataMax && r.size <= wire::kRemoteDataMax && r.arg != 0);
        // Whatever lies at that address here (usually nothing) is what the
        // supervisor would copy.
        auto blob = DataBlob::allocate(r.size);
        const cs_error_t err = blob->read_from_process(::getpid(), r.arg);
        if (err == CS_OK) {
            EXPECT(blob->size() == r.size);
            m.data_result = std::move(blob);
        } else {
            EXPECT(err == CS_ERR_TRY_AGAIN || err == CS_ERR_NO_MEMORY || err == CS_ERR_NOT_SUPPORTED ||
                   err == CS_ERR_LIBRARY);
        }
        m.events.push_back(core::Event::data_done(m.now, err));
        return;
    }
    case wire::RequestType::DataDelete:
        m.data_delete = true;
        m.events.push_back(core::Event::data_done(m.now, CS_OK));
        return;
    case wire::RequestType::Start:
    case wire::RequestType::Stop:
    case wire::RequestType::WarnSignalSet:
    case wire::RequestType::MarkFailed:
        break;
    }
    fail("RunData for a request that is not about data", __LINE__);
}

// What must hold after every step, whatever came in.
void check_step(Shell &m, const core::State &before, const core::Event &e, const core::Actions &as) {
    const core::State &s = *m.s;
    using K = core::Action::Kind;
    using P = core::Phase;
    const bool ended = s.phase == P::Spawning || s.phase == P::Exiting;
    size_t arms = 0, replies = 0, spawns = 0, exits = 0;
    for (size_t i = 0; i < as.size(); ++i) {
        const core::Action &a = as[i];
        switch (a.kind) {
        case K::ArmTimer:
            ++arms;
            EXPECT(i + 1 == as.size()); // the last word of a step
            EXPECT(a.at_ns == core::timer_due(s));
            break;
        case K::Reply:
            ++replies;
            EXPECT(before.channel_open);
            break;
        case K::Spawn:
            ++spawns;
            break;
        case K::ExitLikeInstance:
        case K::ExitCannotGoOn:
        case K::GiveUp:
            ++exits;
            break;
        case K::Signal:
            EXPECT(core::has_instance(before.phase));
            EXPECT(a.signal >= 1 && a.signal < NSIG);
            break;
        case K::RunData:
            EXPECT(e.kind == core::Event::Kind::Request && e.request == core::Request::Data);
            break;
        case K::CommitData:
            EXPECT(before.pending == core::Pending::Data && e.kind == core::Event::Kind::DataDone);
            break;
        case K::PublishState:
        case K::CheckQuorum:
        case K::SetHealthy:
        case K::NoteLife:
            EXPECT(s.config.link);
            break;
        case K::Log:
            EXPECT(a.text[0] != '\0' && std::memchr(a.text, '\0', sizeof a.text) != nullptr);
            break;
        default:
            break;
        }
    }
    EXPECT(arms == (ended ? 0U : 1U));
    EXPECT(replies <= 1);
    EXPECT(spawns <= 1);
    EXPECT(spawns == 0 || s.phase == P::Spawning);
    EXPECT((exits == 1) == (s.phase == P::Exiting && before.phase != P::Exiting));
    // The phase agrees with what is pending.
    if (!core::has_instance(s.phase) || core::is_killing(s.phase))
        EXPECT(!s.channel_open && s.pending == core::Pending::None);
    if (!s.channel_open)
        EXPECT(s.pending == core::Pending::None);
    if (s.pending == core::Pending::Start)
        EXPECT(s.phase == P::AskingQuorum || s.phase == P::WaitingForQuorum || s.phase == P::PublishingStart);
    if (s.pending == core::Pending::Stop)
        EXPECT(s.phase == P::PublishingStop);
    if (s.pending == core::Pending::Data)
        EXPECT(s.phase == P::Idle || s.phase == P::Running || s.phase == P::QuorumLost);
    if (s.phase == P::AskingQuorum || s.phase == P::WaitingForQuorum || s.phase == P::QuorumLost)
        EXPECT(s.config.policy.quorum());
    if (s.phase == P::PublishingStart || s.phase == P::PublishingStop)
        EXPECT(s.config.policy.cmap() && s.state_write_ticket != 0);
    if (s.phase == P::QuorumLost)
        EXPECT(s.kill_at_ns != 0 && s.deadline.was_warned());
    // QUORUM's promise: a waiting start goes on only on corosync's answer to
    // the question in flight, never on a notification or a stale answer.
    if ((before.phase == P::AskingQuorum || before.phase == P::WaitingForQuorum) &&
        (s.phase == P::PublishingStart || s.phase == P::Running))
        EXPECT(e.kind == core::Event::Kind::QuorumAnswer && e.quorate && e.ticket != 0 &&
               e.ticket == before.quorum_ticket);
    // A request waiting for cmap ends on the answer to its own write.
    if ((before.phase == P::PublishingStart || before.phase == P::PublishingStop) &&
        (s.phase == P::Idle || s.phase == P::Running || s.phase == P::WaitingForQuorum))
        EXPECT(e.kind == core::Event::Kind::StateWritten && e.ticket == before.state_write_ticket);
    // The timer serves what is due, and nothing else.
    if (core::health_timed(s.phase))
        EXPECT(s.deadline.running() && (core::timer_due(s) != 0 || !s.deadline.timed()));
    else if (s.phase == P::BackingOff)
        EXPECT(core::timer_due(s) == s.restart_at_ns && s.restart_at_ns != 0);
    else
        EXPECT(core::timer_due(s) == 0);
    // A death that backs off waits no longer than the back-off allows.
    if (s.phase == P::BackingOff && before.phase != P::BackingOff) {
        const BackoffConfig &c = s.config.backoff;
        const uint64_t delay_ms = (s.restart_at_ns - e.now_ns) / 1000000ULL;
        const uint64_t cap = c.delay_max_ms > core::kSpawnRetryMinMs ? c.delay_max_ms : core::kSpawnRetryMinMs;
        EXPECT(s.restart_at_ns == UINT64_MAX || delay_ms <= cap);
        if (e.kind == core::Event::Kind::Died)
            EXPECT(c.delay_ms != 0 && s.backoff.quick_failures() > c.burst);
    }
    if (e.kind == core::Event::Kind::Died && spawns == 1)
        EXPECT(s.config.backoff.delay_ms == 0 || s.backoff.quick_failures() <= s.config.backoff.burst);
    // A heartbeat stamp from the future kills whatever was timed.
    if (e.kind == core::Event::Kind::Timer && core::health_timed(before.phase) &&
        e.stamp_ns > saturating_add(e.now_ns, HealthDeadline::kFutureSlackNs))
        EXPECT(core::is_killing(s.phase));
}

void execute(Shell &m, const core::Action &a) {
    using K = core::Action::Kind;
    switch (a.kind) {
    case K::Spawn:
        if (m.spawn_failure != 0) {
            m.events.push_back(core::Event::spawn_failed(m.now, m.last_iid + 1, "fork", m.spawn_failure));
            m.spawn_failure = 0;
            return;
        }
        ++m.last_iid;
        m.events.push_back(core::Event::spawned(m.now, m.last_iid, static_cast<int>(1000 + m.last_iid)));
        return;
    case K::Signal:
        if (a.signal == SIGKILL) // nothing survives it
            m.events.push_back(core::Event::died(m.now, SIGKILL, CLD_KILLED));
        return;
    case K::RunData:
        run_data(m);
        return;
    case K::CommitData:
        if (m.data_delete) {
            m.store.clear();
            m.expected_data.clear();
            m.data_from_memfd = false;
            EXPECT(m.store.size() == 0);
        } else {
            EXPECT(m.data_result != nullptr);
            m.store.replace(std::move(m.data_result));
            m.data_from_memfd = !m.data_result_known;
            if (m.data_result_known)
                m.expected_data = m.data_result_bytes;
            else
                m.expected_data.clear();
        }
        check_store(m);
        return;
    case K::PublishState:
        if (a.flag)
            m.write_ticket = a.ticket;
        return;
    case K::CheckQuorum:
        m.check_ticket = a.ticket;
        return;
    case K::ExitLikeInstance:
    case K::ExitCannotGoOn:
    case K::GiveUp:
        ++m.supervisors; // drain() starts the next one
        return;
    default:
        return; // nothing to carry out on a stand-in
    }
}

void drain(Shell &m) {
    for (size_t i = 0; i < m.events.size(); ++i) {
        const core::Event e = m.events[i];
        const core::State before = *m.s;
        const core::Actions as = core::step(*m.s, e);
        check_step(m, before, e, as);
        for (const core::Action &a : as)
            execute(m, a);
    }
    m.events.clear();
    m.data_result.reset();
    if (m.s->phase == core::Phase::Exiting)
        new_supervisor(m); // an ended supervisor: the application runs another
}

void dispatch(Shell &m, const core::Event &e) {
    m.events.push_back(e);
    drain(m);
}

core::Request request_kind(wire::RequestType t) {
    switch (t) {
    case wire::RequestType::Start:
        return core::Request::Start;
    case wire::RequestType::Stop:
        return core::Request::Stop;
    case wire::RequestType::WarnSignalSet:
        return core::Request::WarnSignalSet;
    case wire::RequestType::MarkFailed:
        return core::Request::MarkFailed;
    case wire::RequestType::DataStoreInline:
    case wire::RequestType::DataStoreMemfd:
    case wire::RequestType::DataStoreRemote:
    case wire::RequestType::DataDelete:
        break;
    }
    return core::Request::Data;
}

// A decoded request (or the refusal of one) reaches the core, as the
// shell's on_message() sends it, while the instance's channel is open.
void deliver(Shell &m, const wire::DecodeResult *d, bool oversized, const unsigned char *buf, size_t len,
             Received *msg) {
    if (!m.s->channel_open)
        return; // the real shell reads no channel then
    if (oversized) {
        dispatch(m, core::Event::request_of(m.now, core::Request::Oversized));
        return;
    }
    if (!d->request) {
        dispatch(m, core::Event::request_of(m.now, core::Request::Malformed, 0, d->error.data(),
                                            static_cast<int>(d->error.size())));
        return;
    }
    EXPECT(std::strcmp(wire::request_name(d->request->type), "unknown") != 0);
    if (d->request->type == wire::RequestType::WarnSignalSet)
        EXPECT(d->request->arg >= 1 && d->request->arg < static_cast<uint64_t>(NSIG));
    m.request = &*d->request;
    m.request_buf = buf;
    m.request_len = len;
    m.message = msg;
    dispatch(m, core::Event::request_of(m.now, request_kind(d->request->type), d->request->arg));
    m.request = nullptr;
    m.message = nullptr;
}

void on_message(Shell &m, Reader &in) {
    const uint8_t flags = in.u8();
    const uint16_t len = in.u16();
    std::vector<unsigned char> datagram = in.bytes(len);
    const size_t max_len = sizeof(wire::RequestHeader) + wire::kInlineDataMax;

    if ((flags & fuzzin::kViaSocket) == 0) {
        const size_t fds = flags & fuzzin::kFdCountMask;
        const wire::DecodeResult d = wire::decode_request(datagram.data(), datagram.size(), fds);
        EXPECT(d.request.has_value() == reference_accepts(datagram.data(), datagram.size(), fds));
        EXPECT(d.request.has_value() || !d.error.empty());
        deliver(m, &d, false, datagram.data(), datagram.size(), nullptr);
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
        if (m.s->channel_open)
            dispatch(m, core::Event::channel_closed(m.now));
        return;
    }
    EXPECT(msg.kind == Received::Kind::Message);
    EXPECT(msg.fd_count == pass);
    EXPECT(msg.fds[0].valid() == (pass > 0));
    EXPECT(msg.truncated == (datagram.size() > max_len));
    EXPECT(channel_receive(c.supervisor_end, buf.data(), buf.size()).kind == Received::Kind::Nothing);
    if (msg.truncated) {
        deliver(m, nullptr, true, nullptr, 0, &msg);
        return;
    }
    EXPECT(std::vector<unsigned char>(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(msg.len)) == datagram);
    const wire::DecodeResult d = wire::decode_request(buf.data(), msg.len, msg.fd_count);
    EXPECT(d.request.has_value() == reference_accepts(buf.data(), msg.len, msg.fd_count));
    deliver(m, &d, false, buf.data(), msg.len, &msg);
    if (!d.request)
        return;
    // The supervisor's answer must decode on the instance side.
    EXPECT(channel_reply(c.supervisor_end, CS_OK));
    wire::Reply reply{};
    const ssize_t n = ::recv(c.instance_end, &reply, sizeof reply, MSG_DONTWAIT);
    EXPECT(n == static_cast<ssize_t>(sizeof reply));
    auto status = wire::decode_reply(&reply, sizeof reply);
    EXPECT(status && *status == CS_OK);
}

void on_timer(Shell &m, Reader &in) {
    const uint64_t advance = in.u64();
    const uint64_t stamp = in.u64();
    m.now = saturating_add(m.now, advance);

    // The stamp goes through a real shared page, as the instance writes it.
    static std::optional<HeartbeatPage> page = HeartbeatPage::create();
    EXPECT(page && page->valid());
    page->beat(stamp);
    EXPECT(page->last_beat() == stamp);

    const core::State &s = *m.s;
    const uint64_t deadline_before = s.deadline.next_deadline();
    const bool timed = core::health_timed(s.phase);
    dispatch(m, core::Event::timer(m.now, page->last_beat()));
    // A health deadline that still runs never moves back (a scribble never buys time).
    if (timed && core::health_timed(m.s->phase) && deadline_before != 0)
        EXPECT(m.s->deadline.next_deadline() >= deadline_before);
}

// The instance ends on its own.
void on_death(Shell &m, Reader &in) {
    const uint8_t how = in.u8();
    if (!core::has_instance(m.s->phase))
        return; // no pidfd to become readable
    switch (how & 3U) {
    case 0:
        dispatch(m, core::Event::died(m.now, how >> 2, CLD_EXITED));
        return;
    case 1:
        dispatch(m, core::Event::died(m.now, 1 + (how >> 2) % 31, CLD_KILLED));
        return;
    case 2:
        dispatch(m, core::Event::died(m.now, SIGSEGV, CLD_DUMPED));
        return;
    default:
        dispatch(m, core::Event::died(m.now, 0, core::kStatusUnknown));
        return;
    }
}

void on_signal(Shell &m, Reader &in) {
    static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    dispatch(m, core::Event::signal_of(m.now, forwarded[in.u8() % 6]));
}

// What the link process says: notifications, answers to the current
// question or write, or answers nobody waits for any more.
void on_link(Shell &m, Reader &in) {
    const uint8_t what = in.u8();
    if (!m.s->config.link)
        return; // no link, no events from it
    switch (what % 8) {
    case 0:
    case 1:
        dispatch(m, core::Event::quorum(m.now, what % 8 == 0));
        return;
    case 2:
    case 3:
        dispatch(m, core::Event::quorum_answer(m.now, m.check_ticket, what % 8 == 2));
        return;
    case 4:
        dispatch(m, core::Event::quorum_answer(m.now, m.check_ticket + 1 + (what >> 3), true));
        return;
    case 5:
        dispatch(m, core::Event::state_written(m.now, m.write_ticket, CS_OK));
        return;
    case 6:
        dispatch(m,
                 core::Event::state_written(m.now, m.write_ticket, (what & 0x10) ? CS_ERR_TIMEOUT : CS_ERR_TRY_AGAIN));
        return;
    default:
        dispatch(m, core::Event::state_written(m.now, m.write_ticket + 1 + (what >> 3), CS_OK));
        return;
    }
}

// A new supervisor with another policy; the next fork may fail.
void on_policy(Shell &m, Reader &in) {
    const uint8_t bits = in.u8();
    unsigned policy = (bits & 1U) ? SAM_RECOVERY_POLICY_QUIT : SAM_RECOVERY_POLICY_RESTART;
    if (bits & 2U)
        policy |= SAM_RECOVERY_POLICY_QUORUM;
    if (bits & 4U)
        policy |= SAM_RECOVERY_POLICY_CMAP;
    m.config.policy.raw = policy;
    m.config.link = (bits & 6U) != 0;
    static const int failures[4] = {0, EAGAIN, ENOMEM, EPERM};
    // Bit 6: the first fork fails (sam_register() gives up; the application
    // registers again).
    m.spawn_failure = (bits & 0x40U) ? EAGAIN : 0;
    new_supervisor(m);
    m.spawn_failure = failures[(bits >> 4) & 3U]; // for the next restart
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

void on_env(Shell &m, Reader &in) {
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
    m.config.backoff = c;
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
    // The health interval comes from the same record: any 32-bit int is
    // possible. A new supervisor takes both.
    m.config.interval_ms = in.u64() & 0x7fffffffULL;
    new_supervisor(m);
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
    Shell m;
    m.config.policy.raw = SAM_RECOVERY_POLICY_RESTART;
    m.config.interval_ms = 1000;
    new_supervisor(m);
    for (int records = 0; !in.done() && records < 256; ++records) {
        switch (in.u8() % 8) {
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
        case fuzzin::kLink:
            on_link(m, in);
            break;
        case fuzzin::kSignal:
            on_signal(m, in);
            break;
        case fuzzin::kDeath:
            on_death(m, in);
            break;
        case fuzzin::kPolicy:
            on_policy(m, in);
            break;
        }
    }
    return 0;
}
