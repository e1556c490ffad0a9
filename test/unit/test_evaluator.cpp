/* The evaluator through the C boundary: joins, memory across rounds,
 * standby/registry modes, capacity, the published header. */
#include "support.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace replroute::test;

TEST(Join, WalsenderByApplicationName)
{
	World w;
	Round r;
	r.nodes = {node("east", 100, "walrcv-east"), node("west")};
	r.walsenders = {walsender("west", 11, 1000), walsender("walrcv-east", 12, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	ASSERT_EQ(s.entries.size(), 2u);
	EXPECT_STREQ(s.entries[0].name, "east");
	EXPECT_EQ(s.entries[0].walsender_pid, 12);
	EXPECT_STREQ(s.entries[0].application_name, "walrcv-east");
	EXPECT_EQ(s.entries[1].walsender_pid, 11);
	EXPECT_EQ(s.entries[0].state, RR_STATE_HEALTHY);
	EXPECT_EQ(s.entries[1].state, RR_STATE_HEALTHY);
}

TEST(Join, DuplicateApplicationNamesPreferStreamingThenHighestReplay)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 1, 990, RR_WS_CATCHUP), walsender("a", 2, 500),
	                walsender("a", 3, 800), walsender("a", 4, 999, RR_WS_STARTUP)};
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	ASSERT_EQ(s.entries.size(), 1u) << "duplicates match a node: none is unregistered";
	EXPECT_EQ(s.entries[0].walsender_pid, 3);
	EXPECT_EQ(s.entries[0].known_replay_lsn, 800u);
}

TEST(Join, DuplicatesWithEqualPositionsPickTheLowestPid)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 9, 800), walsender("a", 5, 800), walsender("a", 7, 800)};
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(w.snap().entries[0].walsender_pid, 5);
}

TEST(Join, SlotByActivePidWhateverItsName)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 21, 1000)};
	r.slots = {slot("a", 0), slot("standby_slot_7", 21)};
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	EXPECT_STREQ(s.entries[0].slot_name, "standby_slot_7");
	EXPECT_TRUE(s.entries[0].slot_active);
}

TEST(Join, RememberedSlotShowsLossAfterTheWalsenderIsGone)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 21, 1000)};
	r.slots = {slot("custom", 21)};
	ASSERT_EQ(w.publish(r), RR_OK);

	r.now += kSecond;
	r.walsenders.clear();
	r.slots = {slot("custom", 0, RR_WAL_LOST)};
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	EXPECT_STREQ(s.entries[0].slot_name, "custom");
	EXPECT_FALSE(s.entries[0].slot_active);
	EXPECT_EQ(s.entries[0].state, RR_STATE_SLOT_LOST);
	EXPECT_EQ(std::string(s.entries[0].reason),
	          "slot 'custom' lost: WAL removed before the standby received it");
}

TEST(Join, SlotNamedLikeTheNodeWhenNothingElseIsKnown)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.slots = {slot("a", 0, RR_WAL_LOST)};
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	EXPECT_STREQ(s.entries[0].slot_name, "a");
	EXPECT_EQ(s.entries[0].state, RR_STATE_SLOT_LOST);
}

TEST(Join, ASlotHeldByAnotherProcessIsNotBorrowed)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.slots = {slot("a", 999)};
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	EXPECT_STREQ(s.entries[0].slot_name, "");
	EXPECT_EQ(s.entries[0].state, RR_STATE_DISCONNECTED);
}

TEST(Join, UnmatchedWalsendersAreAppendedAsUnregistered)
{
	World w;
	Round r;
	r.nodes = {node("a"), node("b")};
	r.walsenders = {walsender("pg_basebackup", 30, 900, RR_WS_BACKUP), walsender("a", 31, 1000),
	                walsender("mystery", 32, 1000)};
	r.slots = {slot("mystery_slot", 32)};
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	ASSERT_EQ(s.entries.size(), 4u);
	EXPECT_STREQ(s.entries[0].name, "a");
	EXPECT_STREQ(s.entries[1].name, "b");
	EXPECT_EQ(s.entries[1].state, RR_STATE_DISCONNECTED);
	EXPECT_STREQ(s.entries[2].name, "pg_basebackup");
	EXPECT_STREQ(s.entries[3].name, "mystery");
	for (int i = 2; i < 4; ++i)
	{
		EXPECT_EQ(s.entries[i].state, RR_STATE_UNREGISTERED);
		EXPECT_FALSE(s.entries[i].registered);
		EXPECT_FALSE(s.entries[i].routable);
	}
	EXPECT_STREQ(s.entries[3].slot_name, "mystery_slot");
	/* Even a healthy-looking unregistered walsender is never picked. */
	rr_pick_result p = w.pick(request(r.now));
	EXPECT_STREQ(p.name, "a");
}

TEST(Evaluator, OnAStandbyNothingIsRoutable)
{
	World w;
	Round r;
	r.in_recovery = true;
	r.nodes = {node("a"), node("b")};
	r.walsenders = {walsender("a", 1, 1000), walsender("cascade", 2, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	EXPECT_TRUE(s.header.in_recovery);
	ASSERT_EQ(s.entries.size(), 3u);
	for (int i = 0; i < 2; ++i)
	{
		EXPECT_EQ(s.entries[i].state, RR_STATE_UNKNOWN);
		EXPECT_EQ(std::string(s.entries[i].reason),
		          "this server is a standby; route from the primary");
		EXPECT_FALSE(s.entries[i].routable);
	}
	EXPECT_EQ(s.entries[2].state, RR_STATE_UNREGISTERED);
	EXPECT_EQ(w.pick(request(r.now)).cause, RR_CAUSE_NOT_PRIMARY);
}

TEST(Evaluator, PromotionTakesOverInOneRound)
{
	World w;
	Round r;
	r.in_recovery = true;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 1, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	r.in_recovery = false;
	r.now += 10000;
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_TRUE(w.pick(request(r.now)).found);
	EXPECT_EQ(w.snap().entries[0].state_since, r.now);
}

TEST(Evaluator, WithoutTheRegistryOnlyWalsendersArePublished)
{
	World w;
	Round r;
	r.registry_available = false;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 1, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	ASSERT_EQ(s.entries.size(), 1u);
	EXPECT_FALSE(s.entries[0].registered);
	EXPECT_EQ(s.entries[0].state, RR_STATE_UNREGISTERED);
	EXPECT_FALSE(s.header.registry_available);
	EXPECT_EQ(w.pick(request(r.now)).cause, RR_CAUSE_NO_CANDIDATE);
}

TEST(Evaluator, CapacityOverflowKeepsRegisteredNodesFirst)
{
	World w(2);
	Round r;
	r.nodes = {node("a"), node("b")};
	r.walsenders = {walsender("x", 1, 1000), walsender("a", 2, 1000)};
	EXPECT_EQ(w.publish(r), RR_ERR_CAPACITY);
	EXPECT_EQ(w.last_error.status, RR_ERR_CAPACITY);
	EXPECT_NE(std::string(w.last_error.message).find("capacity 2"), std::string::npos)
	    << w.last_error.message;
	Snapshot s = w.snap();
	EXPECT_EQ(s.header.n_entries, 2u);
	EXPECT_EQ(s.header.rounds, 1u) << "published despite the overflow";
	EXPECT_STREQ(s.entries[0].name, "a");
	EXPECT_STREQ(s.entries[1].name, "b");
	EXPECT_TRUE(w.pick(request(r.now)).found);
}

TEST(Evaluator, MoreNodesThanCapacityPublishesTheFirstOnes)
{
	World w(1);
	Round r;
	r.nodes = {node("a"), node("b"), node("c")};
	EXPECT_EQ(w.publish(r), RR_ERR_CAPACITY);
	Snapshot s = w.snap();
	ASSERT_EQ(s.entries.size(), 1u);
	EXPECT_STREQ(s.entries[0].name, "a");
}

TEST(Evaluator, StateSinceIsKeptWhileTheStateHolds)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 1, 1000)};
	const rr_timestamp t1 = r.now;
	ASSERT_EQ(w.publish(r, limits(100)), RR_OK);
	EXPECT_EQ(w.snap().entries[0].state_since, t1);

	r.now += kSecond;
	ASSERT_EQ(w.publish(r, limits(100)), RR_OK);
	EXPECT_EQ(w.snap().entries[0].state_since, t1);
	EXPECT_EQ(w.snap().entries[0].observed_at, r.now);

	r.now += kSecond;
	const rr_timestamp t3 = r.now;
	r.flush = 2000; /* 1000 bytes behind > 100 */
	ASSERT_EQ(w.publish(r, limits(100)), RR_OK);
	EXPECT_EQ(w.snap().entries[0].state, RR_STATE_LAGGING);
	EXPECT_EQ(w.snap().entries[0].state_since, t3);

	r.now += kSecond;
	ASSERT_EQ(w.publish(r, limits(100)), RR_OK);
	EXPECT_EQ(w.snap().entries[0].state_since, t3);

	r.now += kSecond;
	r.walsenders[0].replay_lsn = r.walsenders[0].sent_lsn = 2000;
	ASSERT_EQ(w.publish(r, limits(100)), RR_OK);
	EXPECT_EQ(w.snap().entries[0].state, RR_STATE_HEALTHY);
	EXPECT_EQ(w.snap().entries[0].state_since, r.now);
}

TEST(Evaluator, ANodeRemovedAndAddedAgainStartsAfresh)
{
	World w;
	Round r;
	r.nodes = {node("a"), node("b")};
	ASSERT_EQ(w.publish(r), RR_OK);
	r.nodes = {node("b")};
	r.now += kSecond;
	ASSERT_EQ(w.publish(r), RR_OK);
	r.nodes = {node("a"), node("b")};
	r.now += kSecond;
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	EXPECT_EQ(s.find("a")->state_since, r.now);
	EXPECT_EQ(s.find("b")->state_since, r.now - 2 * kSecond);
}

TEST(Evaluator, TimeLagFromThePrimaryLsnHistory)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 1, 100)};
	r.flush = 100;
	ASSERT_EQ(w.publish(r), RR_OK); /* t0: flush 100 */
	r.now += kSecond;
	r.flush = 200;
	r.walsenders[0].sent_lsn = 200;
	ASSERT_EQ(w.publish(r), RR_OK); /* t0+1s: flush 200, replay still 100 */
	r.now += kSecond;
	r.flush = 300;
	r.walsenders[0].replay_lsn = 150;
	r.walsenders[0].sent_lsn = 300;
	ASSERT_EQ(w.publish(r, limits(RR_NO_LIMIT, 500000)), RR_OK); /* t0+2s */
	Snapshot s = w.snap();
	/* WAL past 150 existed at t0+1s: at least 1 s behind, though replay_lag is NULL. */
	EXPECT_EQ(s.entries[0].lag_us, kSecond);
	EXPECT_EQ(s.entries[0].replay_lag_us, RR_NO_DURATION);
	EXPECT_EQ(s.entries[0].lag_bytes, 150);
	EXPECT_EQ(s.entries[0].state, RR_STATE_LAGGING);
	EXPECT_EQ(std::string(s.entries[0].reason), "replay lag 1 s > 500 ms");
}

TEST(Evaluator, StandbyThatFellBehindEveryRememberedSampleUsesTheOldest)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 1, 50)};
	r.walsenders[0].sent_lsn = 1000;
	r.flush = 1000;
	ASSERT_EQ(w.publish(r), RR_OK);
	r.now += 3 * kSecond;
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(w.snap().entries[0].lag_us, 3 * kSecond);
}

TEST(Evaluator, HeaderDescribesTheRound)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.flush = 0xABCDEF;
	ASSERT_EQ(w.publish(r), RR_OK);
	r.now += kSecond;
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	EXPECT_EQ(s.header.rounds, 2u);
	EXPECT_EQ(s.header.worker_pid, 4242);
	EXPECT_EQ(s.header.published_at, r.now);
	EXPECT_EQ(s.header.round_started_at, r.now - 250);
	EXPECT_EQ(s.header.round_duration_us, 250);
	EXPECT_EQ(s.header.primary_flush_lsn, 0xABCDEFu);
	EXPECT_EQ(s.header.n_entries, 1u);
	EXPECT_EQ(s.header.capacity, 16u);
	EXPECT_TRUE(s.header.registry_available);
	EXPECT_FALSE(s.header.in_recovery);
}

TEST(Evaluator, RejectsBrokenInput)
{
	World w;
	rr_evaluator *ev = rr_evaluator_create(nullptr);
	ASSERT_NE(ev, nullptr);
	Round r;
	rr_round_input in = r.input();
	rr_thresholds t = limits();
	rr_error error{};
	EXPECT_EQ(rr_evaluate_and_publish(nullptr, &in, &t, w.table(), &error), RR_ERR_NULL);
	EXPECT_EQ(rr_evaluate_and_publish(ev, nullptr, &t, w.table(), &error), RR_ERR_NULL);
	EXPECT_EQ(rr_evaluate_and_publish(ev, &in, nullptr, w.table(), &error), RR_ERR_NULL);
	EXPECT_EQ(rr_evaluate_and_publish(ev, &in, &t, nullptr, &error), RR_ERR_NULL);
	in.n_nodes = 3;
	in.nodes = nullptr;
	EXPECT_EQ(rr_evaluate_and_publish(ev, &in, &t, w.table(), &error), RR_ERR_NULL);
	in = r.input();
	in.now = RR_NO_TIME;
	EXPECT_EQ(rr_evaluate_and_publish(ev, &in, &t, w.table(), &error), RR_ERR_INVALID);
	EXPECT_EQ(w.snap().header.rounds, 0u);
	rr_evaluator_destroy(ev);
	rr_evaluator_destroy(nullptr);
}

TEST(Evaluator, UnterminatedNamesAreCutAtTheField)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	std::memset(r.nodes[0].name, 'n', sizeof r.nodes[0].name);
	std::memset(r.nodes[0].application_name, 'p', sizeof r.nodes[0].application_name);
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	EXPECT_EQ(std::string(s.entries[0].name), std::string(63, 'n'));
	EXPECT_EQ(std::string(s.entries[0].application_name), std::string(63, 'p'));
}
