// SPDX-License-Identifier: BSD-3-Clause
// check_log.cpp - tests of the supervisor's log queue (log_ring.hpp): order,
// the fixed number of slots, lines dropped when full and the notice that
// says how many, cut lines; and of log_outbox.hpp on a stderr pipe nobody
// reads: nothing blocks, the instance's stderr stays blocking, and once the
// pipe is read the queued lines and the count of dropped ones follow.
#include <csignal>
#include <cstdarg>
#include <cstdlib>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <CppUTest/TestHarness.h>

#include "log.hpp"
#include "log_outbox.hpp"
#include "log_ring.hpp"

using namespace sam;

namespace {

std::vector<std::string> take_all(LogRing &ring) {
    std::vector<std::string> out;
    while (!ring.empty()) {
        out.emplace_back(ring.front().text);
        ring.pop();
    }
    return out;
}

} // namespace

TEST_GROUP(LogRing){};

TEST(LogRing, LinesComeOutInOrderWithTheirPriority) {
    LogRing ring;
    CHECK(ring.empty());
    CHECK(ring.push(LOG_WARNING, "instance %u failed (%s); restarting", 3u, "exited with status 1"));
    CHECK(ring.push(LOG_INFO, "instance %u started as pid %d", 4u, 1234));
    LONGS_EQUAL(2, ring.size());
    LONGS_EQUAL(LOG_WARNING, ring.front().priority);
    STRCMP_EQUAL("instance 3 failed (exited with status 1); restarting", ring.front().text);
    ring.pop();
    LONGS_EQUAL(LOG_INFO, ring.front().priority);
    STRCMP_EQUAL("instance 4 started as pid 1234", ring.front().text);
    ring.pop();
    CHECK(ring.empty());
    ring.pop(); // popping nothing is harmless
    CHECK(ring.empty());
}

TEST(LogRing, AFullRingDropsAndCounts) {
    LogRing ring;
    for (unsigned i = 0; i < LogRing::kSlots; ++i)
        CHECK(ring.push(LOG_INFO, "line %u", i));
    CHECK_FALSE(ring.push(LOG_INFO, "lost 1"));
    CHECK_FALSE(ring.push(LOG_INFO, "lost 2"));
    LONGS_EQUAL(LogRing::kSlots, ring.size());
    UNSIGNED_LONGS_EQUAL(2, ring.dropped());
    UNSIGNED_LONGS_EQUAL(2, ring.dropped_total());
}

// The notice takes the first free slot: after the lines queued before the
// drops, before any line queued after them.
TEST(LogRing, TheDropNoticeStandsWhereTheLinesWentMissing) {
    LogRing ring;
    for (unsigned i = 0; i < LogRing::kSlots; ++i)
        CHECK(ring.push(LOG_INFO, "line %u", i));
    for (int i = 0; i < 3; ++i)
        CHECK_FALSE(ring.push(LOG_INFO, "lost"));
    ring.pop(); // "line 0" written: the notice is queued at once
    UNSIGNED_LONGS_EQUAL(0, ring.dropped());
    LONGS_EQUAL(LogRing::kSlots, ring.size());
    CHECK_FALSE(ring.push(LOG_INFO, "lost again")); // full again: counted anew
    UNSIGNED_LONGS_EQUAL(1, ring.dropped());
    ring.pop(); // "line 1": its slot goes to the second notice
    UNSIGNED_LONGS_EQUAL(0, ring.dropped());
    LONGS_EQUAL(LogRing::kSlots, ring.size());
    ring.pop(); // "line 2"
    CHECK(ring.push(LOG_ERR, "later"));
    std::vector<std::string> want;
    for (unsigned i = 3; i < LogRing::kSlots; ++i)
        want.push_back("line " + std::to_string(i));
    want.push_back("3 log lines dropped");
    want.push_back("1 log lines dropped");
    want.push_back("later");
    const std::vector<std::string> got = take_all(ring);
    LONGS_EQUAL(want.size(), got.size());
    for (size_t i = 0; i < want.size(); ++i)
        STRCMP_EQUAL(want[i].c_str(), got[i].c_str());
    UNSIGNED_LONGS_EQUAL(4, ring.dropped_total());
}

TEST(LogRing, TheNoticeIsAWarning) {
    LogRing ring;
    for (unsigned i = 0; i <= LogRing::kSlots; ++i)
        (void)ring.push(LOG_DEBUG, "x");
    for (unsigned i = 0; i < LogRing::kSlots; ++i)
        ring.pop();
    LONGS_EQUAL(1, ring.size());
    LONGS_EQUAL(LOG_WARNING, ring.front().priority);
    STRCMP_EQUAL("1 log lines dropped", ring.front().text);
}

TEST(LogRing, LongLinesAreCutToTheSlot) {
    LogRing ring;
    const std::string long_text(3 * LogRing::kTextMax, 'x');
    CHECK(ring.push(LOG_ERR, "%s", long_text.c_str()));
    CHECK(ring.push(LOG_ERR, "after"));
    STRCMP_EQUAL(std::string(LogRing::kTextMax - 1, 'x').c_str(), ring.front().text);
    ring.pop();
    STRCMP_EQUAL("after", ring.front().text);
}

namespace {

void add(LogOutbox &out, int priority, const char *format, ...) __attribute__((format(printf, 3, 4)));
void add(LogOutbox &out, int priority, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    out.vadd(priority, format, ap);
    va_end(ap);
}

// stderr is a pipe, blocking as the instance sees it, filled to the brim.
class FullStderrPipe {
  public:
    FullStderrPipe() {
        ::setenv("SAM_LOG_STDERR", "1", 1);
        log_configure_from_env();
        CHECK(::pipe2(pipe_, O_CLOEXEC) == 0);
        saved_ = ::dup(STDERR_FILENO);
        CHECK(saved_ >= 0);
        CHECK(::dup2(pipe_[1], STDERR_FILENO) == STDERR_FILENO);
        CHECK(::pthread_sigmask(SIG_SETMASK, nullptr, &mask_) == 0);
        // Filled through a description of its own, so fd 2 stays blocking.
        const std::string path = "/proc/self/fd/" + std::to_string(pipe_[1]);
        const int filler = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        CHECK(filler >= 0);
        const std::string chunk(4096, '.');
        while (::write(filler, chunk.data(), chunk.size()) > 0)
            filled_ += chunk.size();
        ::close(filler);
    }
    ~FullStderrPipe() {
        (void)::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        ::close(pipe_[0]);
        ::close(pipe_[1]);
        (void)::pthread_sigmask(SIG_SETMASK, &mask_, nullptr);
        ::unsetenv("SAM_LOG_STDERR");
        log_configure_from_env();
    }
    // Everything in the pipe now, the filling left out.
    std::string take() {
        std::string out;
        char buf[4096];
        const int flags = ::fcntl(pipe_[0], F_GETFL);
        (void)::fcntl(pipe_[0], F_SETFL, flags | O_NONBLOCK);
        ssize_t n;
        while ((n = ::read(pipe_[0], buf, sizeof buf)) > 0)
            out.append(buf, static_cast<size_t>(n));
        (void)::fcntl(pipe_[0], F_SETFL, flags);
        const size_t skip = out.find_first_not_of('.');
        return skip == std::string::npos ? std::string() : out.substr(skip);
    }

  private:
    int pipe_[2] = {-1, -1};
    int saved_ = -1;
    size_t filled_ = 0;
    sigset_t mask_{};
};

std::string line(const std::string &text) { return "libsam[" + std::to_string(::getpid()) + "]: " + text + "\n"; }

} // namespace

TEST_GROUP(LogOutbox){};

TEST(LogOutbox, AFullStderrPipeNeitherBlocksNorLosesTheOrder) {
    FullStderrPipe err;
    LogOutbox out;
    out.open();
    CHECK(out.is_open());
    // A hang here is the failure: the alarm ends the test program.
    ::alarm(10);
    for (unsigned i = 0; i < LogRing::kSlots + 5; ++i) {
        add(out, LOG_INFO, "line %u", i);
        out.drain();
    }
    ::alarm(0);
    CHECK(out.blocked_fd() >= 0);
    UNSIGNED_LONGS_EQUAL(5, out.ring().dropped_total());
    // The instance's stderr is as it was: blocking.
    CHECK((::fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK) == 0);

    STRCMP_EQUAL("", err.take().c_str()); // the filling only
    out.drain();
    CHECK(out.blocked_fd() < 0);
    std::string want;
    for (unsigned i = 0; i < LogRing::kSlots; ++i)
        want += line("line " + std::to_string(i));
    want += line("5 log lines dropped");
    STRCMP_EQUAL(want.c_str(), err.take().c_str());
    add(out, LOG_INFO, "after");
    out.drain();
    STRCMP_EQUAL(line("after").c_str(), err.take().c_str());
}

TEST(LogOutbox, BeforeOpenLinesTakeTheSimplePath) {
    ::setenv("SAM_LOG_STDERR", "1", 1);
    log_configure_from_env();
    int fds[2];
    CHECK(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    const int saved = ::dup(STDERR_FILENO);
    CHECK(::dup2(fds[1], STDERR_FILENO) == STDERR_FILENO);
    LogOutbox out;
    add(out, LOG_ERR, "set-up failed");
    (void)::dup2(saved, STDERR_FILENO);
    ::close(saved);
    char buf[256] = {};
    const ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
    ::close(fds[0]);
    ::close(fds[1]);
    ::unsetenv("SAM_LOG_STDERR");
    log_configure_from_env();
    CHECK(n > 0);
    STRCMP_EQUAL(line("set-up failed").c_str(), buf);
}
