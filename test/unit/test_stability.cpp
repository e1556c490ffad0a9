/* Stability over synthetic timelines: lag hysteresis, the recovery hold, the
 * stalled walsender, bounds switched off.  Every test drives the evaluator
 * round by round through the C boundary, as the worker does. */
#include "health.hpp"
#include "stability.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace replroute;
using namespace replroute::test;

namespace
{

constexpr rr_timestamp kMs = 1000;
constexpr rr_lsn kStart = 1ULL << 32; /* room for any lag the tests make */

/* One registered node "a" behind a walsender; the primary at flush. */
struct Timeline
{
	World world;
	Round round;
	rr_thresholds thresholds = limits();

	Timeline()
	{
		round.nodes = {node("a")};
		round.walsenders = {walsender("a", 7, kStart)};
		round.flush = kStart;
	}

	rr_walsender_obs &ws() { return round.walsenders[0]; }

	/* Everything is sent and written; replay is lag bytes behind. */
	void lag(rr_lsn bytes)
	{
		ws().sent_lsn = ws().write_lsn = ws().flush_lsn = round.flush;
		ws().replay_lsn = round.flush - bytes;
		ws().reply_time = round.now;
	}

	rr_node_entry step(rr_timestamp advance_us)
	{
		round.now += advance_us;
		EXPECT_EQ(world.publish(round, thresholds), RR_OK) << world.last_error.message;
		Snapshot s = world.snap();
		EXPECT_EQ(s.entries.size(), 1u);
		return s.entries.empty() ? rr_node_entry{} : s.entries[0];
	}

	bool picked() { return world.pick(request(round.now)).found; }
};

std::string reason(const rr_node_entry &e)
{
	return e.reason;
}

} // namespace

TEST(LeaveBound, FractionOfTheBound)
{
	EXPECT_EQ(leave_bound(1000, 0.5), 500);
	EXPECT_EQ(leave_bound(1001, 0.5), 500) << "rounded down";
	EXPECT_EQ(leave_bound(1000, 0.0), 0);
	EXPECT_EQ(leave_bound(1000, 1.0), 1000);
	EXPECT_EQ(leave_bound(1000, 7.0), 1000) << "clamped";
	EXPECT_EQ(leave_bound(1000, -1.0), 0) << "clamped";
	EXPECT_EQ(leave_bound(1000, std::nan("")), 0);
	EXPECT_EQ(leave_bound(RR_NO_LIMIT, 0.5), RR_NO_LIMIT);
	EXPECT_EQ(leave_bound(INT64_MAX, 1.0), INT64_MAX);
}

TEST(Hysteresis, LagOscillatingAroundTheBoundDoesNotFlap)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.5, 0);
	/* Lag per round, 50 ms apart: hovering around the 1000-byte bound. */
	const std::vector<rr_lsn> lags = {900, 1100, 950, 1050, 990, 1010, 700, 999, 1001, 600, 501};
	std::vector<rr_node_state> states;
	for (rr_lsn l : lags)
	{
		t.lag(l);
		states.push_back(t.step(50 * kMs).state);
	}
	const std::vector<rr_node_state> expected = {
	    RR_STATE_HEALTHY, RR_STATE_LAGGING, RR_STATE_LAGGING, RR_STATE_LAGGING,
	    RR_STATE_LAGGING, RR_STATE_LAGGING, RR_STATE_LAGGING, RR_STATE_LAGGING,
	    RR_STATE_LAGGING, RR_STATE_LAGGING, RR_STATE_LAGGING};
	EXPECT_EQ(states, expected);

	t.lag(500); /* at the leave bound: out */
	rr_node_entry e = t.step(50 * kMs);
	EXPECT_EQ(e.state, RR_STATE_HEALTHY) << e.reason;
	EXPECT_TRUE(t.picked());

	t.lag(999); /* under the enter bound again: stays healthy */
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_HEALTHY);
}

TEST(Hysteresis, WithoutItTheSameTimelineFlaps)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 1.0, 0);
	int changes = 0;
	rr_node_state last = RR_STATE_HEALTHY;
	for (rr_lsn l : {900, 1100, 950, 1050, 990, 1010})
	{
		t.lag(l);
		rr_node_state s = t.step(50 * kMs).state;
		changes += s != last;
		last = s;
	}
	EXPECT_EQ(changes, 5) << "fraction 1.0 means one bound: every crossing is a change";
}

TEST(Hysteresis, ReasonNamesTheLeaveBound)
{
	Timeline t;
	t.thresholds = stable_limits(16 * 1024 * 1024, RR_NO_LIMIT, 0.5, 0);
	t.lag(20 * 1024 * 1024);
	EXPECT_EQ(reason(t.step(50 * kMs)), "20 MB behind > 16 MB");
	t.lag(12 * 1024 * 1024);
	rr_node_entry e = t.step(50 * kMs);
	EXPECT_EQ(e.state, RR_STATE_LAGGING);
	EXPECT_FALSE(e.routable);
	EXPECT_EQ(reason(e), "12 MB behind > 8 MB leave bound");
}

TEST(Hysteresis, TimeBoundHasItsLeaveBoundToo)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, kSecond, 0.5, 0);
	t.lag(100);
	t.ws().replay_lag_us = 1500 * kMs;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
	t.ws().replay_lag_us = 800 * kMs;
	rr_node_entry e = t.step(50 * kMs);
	EXPECT_EQ(e.state, RR_STATE_LAGGING);
	EXPECT_EQ(reason(e), "replay lag 800 ms > 500 ms leave bound");
	t.ws().replay_lag_us = 400 * kMs;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_HEALTHY);
}

TEST(Hysteresis, LeavingNeedsEveryBoundBelowItsLeaveBound)
{
	Timeline t;
	t.thresholds = stable_limits(1000, kSecond, 0.5, 0);
	t.lag(2000);
	t.ws().replay_lag_us = 100 * kMs;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
	t.lag(100);
	t.ws().replay_lag_us = 700 * kMs; /* bytes fine, time between the bounds */
	rr_node_entry e = t.step(50 * kMs);
	EXPECT_EQ(e.state, RR_STATE_LAGGING);
	EXPECT_EQ(reason(e), "replay lag 700 ms > 500 ms leave bound");
}

TEST(Hysteresis, BoundsSwitchedOffNeverLatch)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 0);
	for (rr_lsn l : {10, 1000000, 5, 999999})
	{
		t.lag(l);
		EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_HEALTHY);
	}
}

TEST(Hysteresis, SwitchingABoundOffReleasesALatchedNode)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.5, 0);
	t.lag(2000);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
	t.thresholds.max_lag_bytes = RR_NO_LIMIT;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_HEALTHY);
}

TEST(Hysteresis, ZeroFractionLeavesOnlyWhenCaughtUp)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.0, 0);
	t.lag(2000);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
	t.lag(1);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
	t.lag(0);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_HEALTHY);
}

TEST(Hysteresis, ALatchSurvivesAReconnect)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.5, 0);
	t.lag(2000);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
	t.ws().state = RR_WS_CATCHUP;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_CATCHUP);
	t.ws().state = RR_WS_STREAMING;
	t.lag(800);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING) << "still above the leave bound";
}

TEST(RecoveryHold, ANodeThatComesBackIsHeld)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, kSecond);
	EXPECT_EQ(t.step(0).state, RR_STATE_HEALTHY);
	EXPECT_TRUE(t.picked());

	std::vector<rr_walsender_obs> saved = t.round.walsenders;
	t.round.walsenders.clear();
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_DISCONNECTED);

	t.round.walsenders = saved;
	rr_node_entry e = t.step(50 * kMs);
	const rr_timestamp back = t.round.now;
	EXPECT_EQ(e.state, RR_STATE_RECOVERING);
	EXPECT_FALSE(e.routable);
	EXPECT_EQ(e.state_since, back);
	EXPECT_EQ(reason(e),
	          "back from disconnected: healthy for 0 us of 1 s; streaming, 0 bytes behind");
	EXPECT_FALSE(t.picked());

	e = t.step(400 * kMs);
	EXPECT_EQ(e.state, RR_STATE_RECOVERING);
	EXPECT_EQ(e.state_since, back);
	EXPECT_EQ(reason(e),
	          "back from disconnected: healthy for 400 ms of 1 s; streaming, 0 bytes behind");
	EXPECT_FALSE(t.picked());

	e = t.step(599 * kMs);
	EXPECT_EQ(e.state, RR_STATE_RECOVERING) << "999 ms of 1 s";

	e = t.step(1 * kMs);
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
	EXPECT_TRUE(e.routable);
	EXPECT_EQ(e.state_since - back, kSecond);
	EXPECT_EQ(reason(e), "streaming, 0 bytes behind");
	EXPECT_TRUE(t.picked());

	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_HEALTHY) << "the hold is over for good";
}

TEST(RecoveryHold, GoingBadAgainRestartsTheHold)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.5, kSecond);
	t.lag(0);
	EXPECT_EQ(t.step(0).state, RR_STATE_HEALTHY);
	t.lag(5000);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
	t.lag(0);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_RECOVERING);
	EXPECT_EQ(t.step(700 * kMs).state, RR_STATE_RECOVERING);

	t.lag(5000);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
	t.lag(0);
	rr_node_entry e = t.step(50 * kMs);
	EXPECT_EQ(e.state, RR_STATE_RECOVERING);
	EXPECT_NE(reason(e).find("healthy for 0 us of 1 s"), std::string::npos) << e.reason;
	EXPECT_EQ(t.step(700 * kMs).state, RR_STATE_RECOVERING) << "700 ms, not 1.4 s";
	EXPECT_EQ(t.step(300 * kMs).state, RR_STATE_HEALTHY);
}

TEST(RecoveryHold, LagBetweenTheBoundsWhileHeldIsLaggingAgain)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.5, kSecond);
	t.lag(0);
	t.step(0);
	t.lag(5000);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
	t.lag(400);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_RECOVERING);
	t.lag(800); /* a recovering node is out of lagging: the enter bound applies */
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_RECOVERING);
	t.lag(1200);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
}

TEST(RecoveryHold, ANodeHealthyAtWorkerStartIsRoutableAtOnce)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 10 * kSecond);
	rr_node_entry e = t.step(0);
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
	EXPECT_TRUE(t.picked());
}

TEST(RecoveryHold, ANodeNeverRoutableBeforeIsNotHeld)
{
	/* A primary restarted: its standbys reconnect after the worker's first
	 * rounds; they have not flapped, they route at once. */
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 10 * kSecond);
	std::vector<rr_walsender_obs> saved = t.round.walsenders;
	t.round.walsenders.clear();
	EXPECT_EQ(t.step(0).state, RR_STATE_DISCONNECTED);
	t.round.walsenders = saved;
	t.round.walsenders[0].state = RR_WS_CATCHUP;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_CATCHUP);
	t.round.walsenders[0].state = RR_WS_STREAMING;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_HEALTHY);
}

TEST(RecoveryHold, ZeroSwitchesItOff)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.5, 0);
	t.lag(0);
	t.step(0);
	t.lag(5000);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);
	t.lag(0);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_HEALTHY);
}

TEST(RecoveryHold, ANewWorkerForgetsThePast)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.5, kSecond);
	t.lag(0);
	t.step(0);
	t.lag(5000);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_LAGGING);

	World restarted; /* a restarted worker: fresh evaluator and table */
	t.lag(0);
	t.round.now += 50 * kMs;
	ASSERT_EQ(restarted.publish(t.round, t.thresholds), RR_OK);
	EXPECT_EQ(restarted.snap().entries[0].state, RR_STATE_HEALTHY);
}

TEST(RecoveryHold, PromotionIsAFreshStart)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 10 * kSecond);
	EXPECT_EQ(t.step(0).state, RR_STATE_HEALTHY);
	t.round.in_recovery = true;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_UNKNOWN);
	t.round.in_recovery = false;
	rr_node_entry e = t.step(50 * kMs);
	EXPECT_EQ(e.state, RR_STATE_HEALTHY) << e.reason;
	EXPECT_TRUE(t.picked());
}

TEST(RecoveryHold, DrainingIsNotAFault)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, kSecond);
	t.step(0);
	t.round.nodes[0].drained = true;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_DRAINED);
	t.round.nodes[0].drained = false;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_HEALTHY);
}

TEST(RecoveryHold, AHoldRunsOnAcrossADrainFromZero)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.5, kSecond);
	t.lag(0);
	t.step(0);
	t.lag(5000);
	t.step(50 * kMs);
	t.lag(0);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_RECOVERING);
	t.round.nodes[0].drained = true;
	EXPECT_EQ(t.step(900 * kMs).state, RR_STATE_DRAINED);
	t.round.nodes[0].drained = false;
	rr_node_entry e = t.step(50 * kMs);
	EXPECT_EQ(e.state, RR_STATE_RECOVERING);
	EXPECT_NE(reason(e).find("back from lagging: healthy for 0 us"), std::string::npos) << e.reason;
}

TEST(RecoveryHold, WeightZeroIsHeldAndStaysUnpicked)
{
	Timeline t;
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.5, kSecond);
	t.round.nodes[0].weight = 0;
	t.lag(0);
	t.step(0);
	t.lag(5000);
	t.step(50 * kMs);
	t.lag(0);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_RECOVERING);
	rr_node_entry e = t.step(kSecond);
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
	EXPECT_FALSE(e.routable);
}

TEST(RecoveryHold, LongReasonsAreCutNotOverrun)
{
	Timeline t;
	std::string long_name(63, 's');
	t.round.nodes = {node(long_name)};
	t.round.walsenders = {walsender(long_name, 7, kStart)};
	t.round.slots = {slot(long_name, 7, RR_WAL_UNRESERVED)};
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, kSecond);
	t.step(0);
	std::vector<rr_walsender_obs> saved = t.round.walsenders;
	t.round.walsenders.clear();
	t.round.slots[0].active = false;
	t.round.slots[0].active_pid = 0;
	t.step(50 * kMs);
	t.round.walsenders = saved;
	t.round.slots[0].active = true;
	t.round.slots[0].active_pid = 7;
	rr_node_entry e = t.step(50 * kMs);
	EXPECT_EQ(e.state, RR_STATE_RECOVERING);
	EXPECT_LT(reason(e).size(), static_cast<size_t>(RR_REASON_LEN));
	EXPECT_EQ(reason(e).rfind("back from disconnected", 0), 0u);
}

/* --- stalled ------------------------------------------------------------- */

TEST(Stalled, IdleStandbyWithAnOldReplyIsNotStalled)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 0, 2 * kSecond);
	t.lag(0);
	EXPECT_EQ(t.step(0).state, RR_STATE_HEALTHY);
	/* wal_receiver_status_interval: an idle standby replies every 10 s. */
	for (int i = 0; i < 9; ++i)
		EXPECT_EQ(t.step(kSecond).state, RR_STATE_HEALTHY);
}

TEST(Stalled, NoReplyWhileWalIsPendingIsStalled)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 0, 2 * kSecond);
	t.lag(0);
	t.step(0);
	t.step(9 * kSecond); /* quiet: reply_time is now 9 s old */

	t.round.flush += 4096; /* WAL arrives; the standby hangs */
	t.ws().sent_lsn = t.round.flush;
	EXPECT_EQ(t.step(0).state, RR_STATE_HEALTHY) << "pending for 0 s, not 9";
	EXPECT_EQ(t.step(kSecond).state, RR_STATE_HEALTHY);
	EXPECT_EQ(t.step(kSecond).state, RR_STATE_HEALTHY) << "2 s is the bound, inclusive";
	rr_node_entry e = t.step(500 * kMs);
	EXPECT_EQ(e.state, RR_STATE_STALLED);
	EXPECT_FALSE(e.routable);
	EXPECT_EQ(reason(e), "no reply for 2.5 s while WAL is pending (stall_timeout 2 s)");
	EXPECT_FALSE(t.picked());

	/* It replies: the hold does not apply to it here (hold off). */
	t.lag(0);
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_HEALTHY);
}

TEST(Stalled, AStandbyThatRepliesIsNotStalledHoweverFarBehind)
{
	/* Replay paused: it keeps receiving, writing and replying. */
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 0, 2 * kSecond);
	t.lag(0);
	t.step(0);
	rr_lsn replay = t.ws().replay_lsn;
	for (int i = 0; i < 10; ++i)
	{
		t.round.flush += 100000;
		t.round.now += kSecond;
		t.ws().sent_lsn = t.ws().write_lsn = t.ws().flush_lsn = t.round.flush - 10;
		t.ws().reply_time = t.round.now - 10 * kMs;
		t.ws().replay_lsn = replay;
		EXPECT_EQ(t.step(0).state, RR_STATE_HEALTHY) << i;
	}
}

TEST(Stalled, TheShorterOfSilenceAndPendingDecides)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 0, 2 * kSecond);
	t.lag(0);
	t.step(0);
	t.round.flush += 4096;
	t.step(0);
	t.ws().reply_time = t.round.now + 2 * kSecond; /* a keepalive reply, nothing written */
	EXPECT_EQ(t.step(3 * kSecond).state, RR_STATE_HEALTHY) << "replied 1 s ago";
	EXPECT_EQ(t.step(1500 * kMs).state, RR_STATE_STALLED) << "silent 2.5 s, pending 4.5 s";
}

TEST(Stalled, UnknownReplyTimeUsesThePendingTime)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 0, 2 * kSecond);
	t.lag(0);
	t.ws().reply_time = RR_NO_TIME;
	t.step(0);
	t.round.flush += 4096;
	t.step(0);
	EXPECT_EQ(t.step(2 * kSecond).state, RR_STATE_HEALTHY);
	EXPECT_EQ(t.step(1).state, RR_STATE_STALLED);
}

TEST(Stalled, MinusOneSwitchesItOff)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 0, RR_NO_LIMIT);
	t.lag(0);
	t.step(0);
	t.round.flush += 4096;
	t.step(0);
	EXPECT_EQ(t.step(60 * kSecond).state, RR_STATE_HEALTHY);
}

TEST(Stalled, OnlyAStreamingWalsenderIsJudged)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 0, 2 * kSecond);
	t.lag(0);
	t.step(0);
	t.round.flush += 4096;
	t.step(0);
	t.ws().state = RR_WS_CATCHUP;
	EXPECT_EQ(t.step(5 * kSecond).state, RR_STATE_CATCHUP);
}

TEST(Stalled, AStalledNodeThatWasRoutableIsHeldWhenItAnswers)
{
	Timeline t;
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, kSecond, 2 * kSecond);
	t.lag(0);
	t.step(0);
	t.round.flush += 4096;
	t.step(0);
	EXPECT_EQ(t.step(3 * kSecond).state, RR_STATE_STALLED);
	t.lag(0);
	rr_node_entry e = t.step(50 * kMs);
	EXPECT_EQ(e.state, RR_STATE_RECOVERING);
	EXPECT_EQ(reason(e).rfind("back from stalled: healthy for 0 us of 1 s", 0), 0u) << e.reason;
	EXPECT_EQ(t.step(kSecond).state, RR_STATE_HEALTHY);
}

TEST(Stalled, OutranksLaggingAndUnknownTimeLag)
{
	Timeline t;
	t.thresholds = stable_limits(10, kSecond, 0.5, 0, 2 * kSecond);
	t.lag(0);
	t.step(0);
	t.round.flush += 4096;
	EXPECT_EQ(t.step(0).state, RR_STATE_LAGGING);
	rr_node_entry e = t.step(3 * kSecond);
	EXPECT_EQ(e.state, RR_STATE_STALLED) << e.reason;
}

/* --- the slot ------------------------------------------------------------ */

TEST(SlotWarning, UnreservedIsAWarningLostIsAState)
{
	Timeline t;
	t.round.slots = {slot("a", 7, RR_WAL_UNRESERVED)};
	t.thresholds = stable_limits(RR_NO_LIMIT, RR_NO_LIMIT, 0.5, 0);
	rr_node_entry e = t.step(0);
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
	EXPECT_TRUE(e.routable);
	EXPECT_NE(reason(e).find("warning: slot 'a' unreserved"), std::string::npos);
	t.round.slots[0].wal_status = RR_WAL_LOST;
	EXPECT_EQ(t.step(50 * kMs).state, RR_STATE_SLOT_LOST);
}

TEST(SlotWarning, ALaggingStandbyIsWarnedToo)
{
	Timeline t;
	t.round.slots = {slot("a", 7, RR_WAL_UNRESERVED)};
	t.thresholds = stable_limits(1000, RR_NO_LIMIT, 0.5, 0);
	t.lag(2048);
	rr_node_entry e = t.step(0);
	EXPECT_EQ(e.state, RR_STATE_LAGGING);
	EXPECT_EQ(reason(e), "2 kB behind > 1000 bytes; warning: slot 'a' unreserved, WAL may be "
	                     "removed soon");
}
