// SPDX-License-Identifier: BSD-3-Clause
// check_link_wire.cpp - tests of link_wire.cpp: the messages between the
// supervisor and its link process, each accepted in its own direction only,
// and everything malformed refused.
#include <cstring>

#include <CppUTest/TestHarness.h>
#include <corosync/corotypes.h>

#include "health.hpp"
#include "link_wire.hpp"

using namespace sam::linkwire;

namespace {
bool decodes(Direction d, const Message &m, size_t fds = 0) { return decode(d, &m, sizeof m, fds).has_value(); }
} // namespace

TEST_GROUP(LinkWire){};

TEST(LinkWire, EachTypeOnlyInItsDirection) {
    for (Type t : {Type::Update, Type::QuorumQuery, Type::Finish}) {
        CHECK_TRUE(decodes(Direction::ToLink, make(Direction::ToLink, t)));
        CHECK_FALSE(decodes(Direction::FromLink, make(Direction::ToLink, t)));
        Message other = make(Direction::FromLink, t); // right magic, wrong direction
        CHECK_FALSE(decodes(Direction::FromLink, other));
    }
    for (Type t : {Type::Ready, Type::Written, Type::QuorumAnswer, Type::Quorum}) {
        CHECK_TRUE(decodes(Direction::FromLink, make(Direction::FromLink, t)));
        CHECK_FALSE(decodes(Direction::ToLink, make(Direction::FromLink, t)));
    }
}

TEST(LinkWire, FreshMessagesSayOk) {
    // CS_OK is 1: a message built with make() must not report error 0.
    LONGS_EQUAL(CS_OK, make(Direction::FromLink, Type::Written).error);
}

TEST(LinkWire, WatchCarriesExactlyOneDescriptor) {
    const Message m = make(Direction::ToLink, Type::Watch);
    CHECK_TRUE(decodes(Direction::ToLink, m, 1));
    CHECK_FALSE(decodes(Direction::ToLink, m, 0));
    CHECK_FALSE(decodes(Direction::ToLink, m, 2));
    CHECK_FALSE(decodes(Direction::ToLink, make(Direction::ToLink, Type::Update), 1));
}

TEST(LinkWire, RejectsWrongLengthMagicReservedFlagAndState) {
    Message m = make(Direction::ToLink, Type::Update);
    m.state = static_cast<uint8_t>(State::Running);
    m.flag = 1;
    CHECK_TRUE(decodes(Direction::ToLink, m));
    unsigned char longer[sizeof m + 1] = {};
    std::memcpy(longer, &m, sizeof m);
    CHECK_FALSE(decode(Direction::ToLink, longer, sizeof longer, 0).has_value());
    CHECK_FALSE(decode(Direction::ToLink, &m, sizeof m - 1, 0).has_value());
    CHECK_FALSE(decode(Direction::ToLink, nullptr, 0, 0).has_value());

    Message bad = m;
    bad.magic ^= 1;
    CHECK_FALSE(decodes(Direction::ToLink, bad));
    bad = m;
    bad.reserved = 1;
    CHECK_FALSE(decodes(Direction::ToLink, bad));
    bad = m;
    bad.flag = 2;
    CHECK_FALSE(decodes(Direction::ToLink, bad));
    bad = m;
    bad.state = static_cast<uint8_t>(State::Failed) + 1;
    CHECK_FALSE(decodes(Direction::ToLink, bad));
    bad = make(Direction::ToLink, Type::Finish);
    bad.state = static_cast<uint8_t>(State::Stopped); // a state only in an Update
    CHECK_FALSE(decodes(Direction::ToLink, bad));
    bad = m;
    bad.type = 99;
    CHECK_FALSE(decodes(Direction::ToLink, bad));
}

TEST(LinkWire, StateNamesRoundTrip) {
    for (State s : {State::Stopped, State::Running, State::WaitingForQuorum, State::Failed})
        CHECK(state_from_name(state_name(s)) == s);
    CHECK(state_from_name("bogus") == State::None);
    STRCMP_EQUAL("waiting for quorum", state_name(State::WaitingForQuorum));
}

// The link maps the instance's heartbeat page read-only through its memfd
// and sees every beat.
TEST(LinkWire, HeartbeatPageSharedThroughItsMemfd) {
    auto page = sam::HeartbeatPage::create();
    CHECK_TRUE(page.has_value());
    CHECK_TRUE(page->fd() >= 0);
    auto view = sam::HeartbeatPage::map_readonly(page->fd());
    CHECK_TRUE(view.has_value());
    page->beat(12345);
    UNSIGNED_LONGS_EQUAL(12345, view->last_beat());
    page->close_fd();
    CHECK_TRUE(page->fd() < 0);
    page->beat(67890);
    UNSIGNED_LONGS_EQUAL(67890, view->last_beat());
}
