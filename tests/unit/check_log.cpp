// check_log.cpp - tests of log.hpp's LogQueue: queued lines are written only
// when flushed, in order, a full queue writes what it holds before taking
// more, and over-long lines are cut, never overrun.
#include <cstdlib>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <CppUTest/TestHarness.h>

#include "log.hpp"

using namespace sam;

namespace {

// Sends the library's log lines (stderr mode) into a pipe for one test.
class CapturedStderr {
  public:
    CapturedStderr() {
        ::setenv("SAM_LOG_STDERR", "1", 1);
        log_configure_from_env();
        CHECK(::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) == 0);
        saved_ = ::dup(STDERR_FILENO);
        CHECK(saved_ >= 0);
        CHECK(::dup2(pipe_[1], STDERR_FILENO) == STDERR_FILENO);
    }
    ~CapturedStderr() {
        (void)::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        ::close(pipe_[0]);
        ::close(pipe_[1]);
        ::unsetenv("SAM_LOG_STDERR");
        log_configure_from_env();
    }
    // Everything written since the last call.
    std::string take() {
        std::string out;
        char buf[4096];
        ssize_t n;
        while ((n = ::read(pipe_[0], buf, sizeof buf)) > 0)
            out.append(buf, static_cast<size_t>(n));
        return out;
    }

  private:
    int pipe_[2] = {-1, -1};
    int saved_ = -1;
};

std::string line(const char *text) { return "libsam[" + std::to_string(::getpid()) + "]: " + text + "\n"; }

} // namespace

TEST_GROUP(LogQueue){};

TEST(LogQueue, NothingIsWrittenUntilFlushThenAllInOrder) {
    CapturedStderr err;
    LogQueue q;
    CHECK(q.empty());
    q.later(LOG_WARNING, "instance %u failed (%s); restarting", 3u, "exited with status 1");
    q.later(LOG_INFO, "instance %u started as pid %d", 4u, 1234);
    CHECK_FALSE(q.empty());
    STRCMP_EQUAL("", err.take().c_str());
    q.flush();
    CHECK(q.empty());
    const std::string want =
        line("instance 3 failed (exited with status 1); restarting") + line("instance 4 started as pid 1234");
    STRCMP_EQUAL(want.c_str(), err.take().c_str());
    q.flush(); // nothing twice
    STRCMP_EQUAL("", err.take().c_str());
}

TEST(LogQueue, AFullQueueWritesWhatItHoldsFirst) {
    CapturedStderr err;
    LogQueue q;
    for (unsigned i = 0; i < LogQueue::kSlots; ++i)
        q.later(LOG_INFO, "line %u", i);
    STRCMP_EQUAL("", err.take().c_str());
    q.later(LOG_INFO, "line %u", static_cast<unsigned>(LogQueue::kSlots));
    std::string want;
    for (unsigned i = 0; i < LogQueue::kSlots; ++i)
        want += line(("line " + std::to_string(i)).c_str());
    STRCMP_EQUAL(want.c_str(), err.take().c_str());
    q.flush();
    STRCMP_EQUAL(line(("line " + std::to_string(LogQueue::kSlots)).c_str()).c_str(), err.take().c_str());
}

TEST(LogQueue, LongLinesAreCutToTheSlot) {
    CapturedStderr err;
    LogQueue q;
    const std::string long_text(3 * LogQueue::kLineMax, 'x');
    q.later(LOG_ERR, "%s", long_text.c_str());
    q.later(LOG_ERR, "after");
    q.flush();
    const std::string want = line(std::string(LogQueue::kLineMax - 1, 'x').c_str()) + line("after");
    STRCMP_EQUAL(want.c_str(), err.take().c_str());
}
