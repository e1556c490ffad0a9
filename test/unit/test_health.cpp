/* evaluate_node(): every state, every boundary, the lag arithmetic. */
#include "health.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace replroute;
using namespace replroute::test;

namespace
{

constexpr rr_lsn kFlush = 1ULL << 30;

struct Case
{
	rr_node_config config = node("node1");
	rr_walsender_obs ws = walsender("node1", 101, kFlush);
	rr_slot_obs sl = slot("node1", 101);
	bool has_walsender = true;
	bool has_slot = true;
	NodeObservation obs;

	Case()
	{
		obs.primary_flush_lsn = kFlush;
		obs.now = kT0;
		obs.history_lag_us = 0; /* the evaluator always has some history */
	}

	rr_node_entry run(const rr_thresholds &t = limits())
	{
		obs.node = &config;
		obs.walsender = has_walsender ? &ws : nullptr;
		obs.slot = has_slot ? &sl : nullptr;
		return evaluate_node(obs, t);
	}

	/* The standby has replayed up to replay while the primary is at kFlush. */
	void behind_by(rr_lsn bytes)
	{
		ws.sent_lsn = ws.write_lsn = ws.flush_lsn = kFlush;
		ws.replay_lsn = kFlush - bytes;
	}
};

std::string reason(const rr_node_entry &e)
{
	return e.reason;
}

} // namespace

TEST(Health, StreamingAndCaughtUpIsHealthy)
{
	Case c;
	rr_node_entry e = c.run(limits(16 * 1024 * 1024, kSecond));
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
	EXPECT_TRUE(e.routable);
	EXPECT_EQ(reason(e), "streaming, 0 bytes behind");
	EXPECT_EQ(e.lag_bytes, 0);
	EXPECT_EQ(e.lag_us, 0);
	EXPECT_EQ(e.known_replay_lsn, kFlush);
	EXPECT_TRUE(e.registered);
	EXPECT_STREQ(e.name, "node1");
	EXPECT_STREQ(e.host, "node1.example");
	EXPECT_EQ(e.walsender_pid, 101);
	EXPECT_STREQ(e.slot_name, "node1");
	EXPECT_TRUE(e.slot_active);
	EXPECT_EQ(e.observed_at, kT0);
	EXPECT_EQ(e.state_since, kT0);
}

TEST(Health, WeightZeroIsHealthyButNotRoutable)
{
	Case c;
	c.config.weight = 0;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
	EXPECT_FALSE(e.routable);
}

TEST(Health, LagBytesBoundaryIsInclusive)
{
	const int64_t max = 16 * 1024 * 1024;
	Case at;
	at.behind_by(max);
	rr_node_entry e = at.run(limits(max));
	EXPECT_EQ(e.lag_bytes, max);
	EXPECT_EQ(e.state, RR_STATE_HEALTHY) << e.reason;

	Case past;
	past.behind_by(max + 1);
	e = past.run(limits(max));
	EXPECT_EQ(e.lag_bytes, max + 1);
	EXPECT_EQ(e.state, RR_STATE_LAGGING);
	EXPECT_FALSE(e.routable);
	EXPECT_EQ(reason(e), "16777217 bytes behind > 16 MB");
}

TEST(Health, LagBytesReasonReadsLikeAnOperatorWouldSayIt)
{
	Case c;
	c.obs.primary_flush_lsn = 2ULL * 1024 * 1024 * 1024;
	c.ws.replay_lsn = c.obs.primary_flush_lsn - static_cast<rr_lsn>(1.3 * 1024 * 1024 * 1024);
	rr_node_entry e = c.run(limits(16 * 1024 * 1024));
	EXPECT_EQ(reason(e), "1.3 GB behind > 16 MB");
}

TEST(Health, ReplayLagBoundaryIsInclusive)
{
	Case at;
	at.behind_by(100);
	at.ws.replay_lag_us = kSecond;
	rr_node_entry e = at.run(limits(RR_NO_LIMIT, kSecond));
	EXPECT_EQ(e.lag_us, kSecond);
	EXPECT_EQ(e.state, RR_STATE_HEALTHY) << e.reason;

	Case past;
	past.behind_by(100);
	past.ws.replay_lag_us = kSecond + 1;
	e = past.run(limits(RR_NO_LIMIT, kSecond));
	EXPECT_EQ(e.state, RR_STATE_LAGGING);
	EXPECT_EQ(reason(e), "replay lag 1000001 us > 1 s");

	Case far;
	far.behind_by(100);
	far.ws.replay_lag_us = 3200000;
	EXPECT_EQ(reason(far.run(limits(RR_NO_LIMIT, kSecond))), "replay lag 3.2 s > 1 s");
}

TEST(Health, BothBoundsExceededAreBothReported)
{
	Case c;
	c.behind_by(2048);
	c.ws.replay_lag_us = 2 * kSecond;
	EXPECT_EQ(reason(c.run(limits(1024, kSecond))), "2 kB behind > 1 kB; replay lag 2 s > 1 s");
}

TEST(Health, NoLimitMeansAnyLagIsHealthy)
{
	Case c;
	c.behind_by(10 * 1024 * 1024 - 1);
	c.ws.replay_lag_us = 3600 * kSecond;
	rr_node_entry e = c.run(limits(RR_NO_LIMIT, RR_NO_LIMIT));
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
	EXPECT_EQ(reason(e), "streaming, 10 MB behind, replay lag 1 h");
}

TEST(Health, IdleStandbyHasZeroLagEvenWithAStaleReportedLag)
{
	Case c;
	c.ws.replay_lag_us = 5 * kSecond; /* left over from before it caught up */
	c.obs.history_lag_us = 9 * kSecond;
	rr_node_entry e = c.run(limits(0, 0));
	EXPECT_EQ(e.lag_bytes, 0);
	EXPECT_EQ(e.lag_us, 0);
	EXPECT_EQ(e.replay_lag_us, 0); /* replay >= sent */
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
}

TEST(Health, ReplayPastPrimaryFlushIsZeroNotNegative)
{
	Case c;
	c.ws.replay_lsn = c.ws.sent_lsn = kFlush + 500;
	rr_node_entry e = c.run(limits(0, 0));
	EXPECT_EQ(e.lag_bytes, 0);
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
}

TEST(Health, NullReportedLagsAreZeroWhenEverythingSentIsReplayed)
{
	Case c;
	c.obs.primary_flush_lsn = kFlush + 100; /* not sent yet */
	c.obs.history_lag_us = 0;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.write_lag_us, 0);
	EXPECT_EQ(e.flush_lag_us, 0);
	EXPECT_EQ(e.replay_lag_us, 0);
	EXPECT_EQ(e.lag_bytes, 100);
	EXPECT_EQ(e.lag_us, 0);
}

TEST(Health, NullReportedLagsStayUnknownWhileWalIsInFlight)
{
	Case c;
	c.behind_by(100);
	c.ws.write_lsn = kFlush - 50;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.write_lag_us, RR_NO_DURATION);
	EXPECT_EQ(e.flush_lag_us, 0);
	EXPECT_EQ(e.replay_lag_us, RR_NO_DURATION);
}

TEST(Health, TimeLagUsesTheHistoryWhenTheReportedLagIsNull)
{
	Case c;
	c.behind_by(100);
	c.obs.history_lag_us = 3 * kSecond;
	rr_node_entry e = c.run(limits(RR_NO_LIMIT, kSecond));
	EXPECT_EQ(e.lag_us, 3 * kSecond);
	EXPECT_EQ(e.state, RR_STATE_LAGGING);
}

TEST(Health, TimeLagIsTheLargerOfReportedAndHistory)
{
	Case reported;
	reported.behind_by(100);
	reported.ws.replay_lag_us = 4 * kSecond;
	reported.obs.history_lag_us = 1 * kSecond;
	EXPECT_EQ(reported.run().lag_us, 4 * kSecond);

	Case history;
	history.behind_by(100);
	history.ws.replay_lag_us = 1 * kSecond;
	history.obs.history_lag_us = 4 * kSecond;
	EXPECT_EQ(history.run().lag_us, 4 * kSecond);
}

TEST(Health, PendingWalWithNoTimeInformationIsUnknownUnderATimeBound)
{
	Case c;
	c.behind_by(100);
	c.obs.history_lag_us = RR_NO_DURATION;
	rr_node_entry e = c.run(limits(RR_NO_LIMIT, kSecond));
	EXPECT_EQ(e.lag_us, RR_NO_DURATION);
	EXPECT_EQ(e.state, RR_STATE_UNKNOWN);
	EXPECT_FALSE(e.routable);
	EXPECT_EQ(reason(e), "streaming, 100 bytes behind; replay lag unknown");

	Case unbounded;
	unbounded.behind_by(100);
	unbounded.obs.history_lag_us = RR_NO_DURATION;
	EXPECT_EQ(unbounded.run(limits(1000)).state, RR_STATE_HEALTHY);
}

TEST(Health, UnknownPrimaryPositionIsUnknown)
{
	Case c;
	c.obs.primary_flush_lsn = 0;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_UNKNOWN);
	EXPECT_EQ(reason(e), "streaming; the primary's WAL position is unknown");
}

TEST(Health, StreamingWithoutAReplayPositionIsUnknown)
{
	Case c;
	c.ws.replay_lsn = 0;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_UNKNOWN);
	EXPECT_EQ(e.lag_bytes, RR_NO_DURATION);
	EXPECT_EQ(e.known_replay_lsn, 0u);
	EXPECT_NE(reason(e).find("not reported its replay position"), std::string::npos);
}

TEST(Health, Drained)
{
	Case c;
	c.config.drained = true;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_DRAINED);
	EXPECT_FALSE(e.routable);
	EXPECT_TRUE(e.drained);
	EXPECT_EQ(reason(e), "drained by an operator");
	EXPECT_EQ(e.walsender_pid, 101); /* observations are still shown */
}

TEST(Health, DrainedOutranksSlotLost)
{
	Case c;
	c.config.drained = true;
	c.sl.wal_status = RR_WAL_LOST;
	EXPECT_EQ(c.run().state, RR_STATE_DRAINED);
}

TEST(Health, SlotLost)
{
	Case c;
	c.sl.wal_status = RR_WAL_LOST;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_SLOT_LOST);
	EXPECT_FALSE(e.routable);
	EXPECT_EQ(reason(e), "slot 'node1' lost: WAL removed before the standby received it");
	EXPECT_EQ(e.wal_status, RR_WAL_LOST);
}

TEST(Health, SlotLostOutranksDisconnected)
{
	Case c;
	c.has_walsender = false;
	c.sl = slot("node1", 0, RR_WAL_LOST);
	EXPECT_EQ(c.run().state, RR_STATE_SLOT_LOST);
}

TEST(Health, UnreservedSlotIsAWarningOnly)
{
	Case c;
	c.sl.wal_status = RR_WAL_UNRESERVED;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
	EXPECT_TRUE(e.routable);
	EXPECT_EQ(
	    reason(e),
	    "streaming, 0 bytes behind; warning: slot 'node1' unreserved, WAL may be removed soon");
}

TEST(Health, ExtendedSlotIsFine)
{
	Case c;
	c.sl.wal_status = RR_WAL_EXTENDED;
	EXPECT_EQ(reason(c.run()), "streaming, 0 bytes behind");
}

TEST(Health, NoSlotIsFine)
{
	Case c;
	c.has_slot = false;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
	EXPECT_STREQ(e.slot_name, "");
	EXPECT_EQ(e.wal_status, RR_WAL_NONE);
}

TEST(Health, NoWalsenderIsDisconnected)
{
	Case c;
	c.config = node("node1", 100, "standby-a");
	c.has_walsender = false;
	c.has_slot = false;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_DISCONNECTED);
	EXPECT_EQ(reason(e), "no walsender with application_name 'standby-a'");
	EXPECT_EQ(e.walsender_pid, 0);
	EXPECT_EQ(e.walsender_state, RR_WS_NONE);
	EXPECT_EQ(e.lag_bytes, RR_NO_DURATION);
	EXPECT_EQ(e.lag_us, RR_NO_DURATION);
	EXPECT_EQ(e.replay_lag_us, RR_NO_DURATION);
	EXPECT_EQ(e.reply_time, RR_NO_TIME);
	EXPECT_EQ(e.known_replay_lsn, 0u);
}

TEST(Health, WalsenderNotStreamingIsCatchup)
{
	for (rr_walsender_state s : {RR_WS_STARTUP, RR_WS_CATCHUP, RR_WS_BACKUP})
	{
		Case c;
		c.ws.state = s;
		rr_node_entry e = c.run();
		EXPECT_EQ(e.state, RR_STATE_CATCHUP);
		EXPECT_EQ(reason(e), std::string("walsender state ") + rr_walsender_state_name(s));
		EXPECT_EQ(e.known_replay_lsn, 0u) << "only a streaming walsender's position is known";
		EXPECT_FALSE(e.routable);
	}
}

TEST(Health, StoppingWalsenderIsDisconnected)
{
	Case c;
	c.ws.state = RR_WS_STOPPING;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_DISCONNECTED);
	EXPECT_EQ(reason(e), "walsender stopping");
}

TEST(Health, UnknownWalsenderStateIsUnknown)
{
	Case c;
	c.ws.state = RR_WS_NONE;
	EXPECT_EQ(c.run().state, RR_STATE_UNKNOWN);
}

TEST(Health, OnAStandbyEveryNodeIsUnknown)
{
	Case c;
	c.obs.in_recovery = true;
	c.obs.primary_flush_lsn = 0;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_UNKNOWN);
	EXPECT_FALSE(e.routable);
	EXPECT_EQ(reason(e), "this server is a standby; route from the primary");
}

TEST(Health, UnregisteredWalsender)
{
	rr_walsender_obs ws = walsender("pg_basebackup", 7, 500, RR_WS_BACKUP);
	NodeObservation obs;
	obs.walsender = &ws;
	obs.primary_flush_lsn = 1000;
	obs.now = kT0;
	rr_node_entry e = evaluate_node(obs, limits());
	EXPECT_EQ(e.state, RR_STATE_UNREGISTERED);
	EXPECT_FALSE(e.registered);
	EXPECT_FALSE(e.routable);
	EXPECT_STREQ(e.name, "pg_basebackup");
	EXPECT_STREQ(e.application_name, "pg_basebackup");
	EXPECT_EQ(reason(e), "no registered node has application_name 'pg_basebackup'");
	EXPECT_EQ(e.lag_bytes, 500);
}

TEST(Health, LongNamesStillFitTheReason)
{
	Case c;
	std::string long_name(63, 'n');
	c.config = node(long_name);
	c.sl = slot(long_name, 101, RR_WAL_UNRESERVED);
	c.ws = walsender(long_name, 101, kFlush);
	rr_node_entry e = c.run();
	EXPECT_LT(reason(e).size(), static_cast<size_t>(RR_REASON_LEN));
	EXPECT_NE(reason(e).find(long_name), std::string::npos);
}

TEST(LagArithmetic, Bytes)
{
	EXPECT_EQ(lag_bytes_between(1000, 400), 600);
	EXPECT_EQ(lag_bytes_between(1000, 1000), 0);
	EXPECT_EQ(lag_bytes_between(1000, 2000), 0);
	EXPECT_EQ(lag_bytes_between(0, 400), RR_NO_DURATION);
	EXPECT_EQ(lag_bytes_between(1000, 0), RR_NO_DURATION);
	EXPECT_EQ(lag_bytes_between(UINT64_MAX, 1), INT64_MAX);
}

TEST(LagArithmetic, IdleAware)
{
	EXPECT_EQ(idle_aware_lag(RR_NO_DURATION, 100, 100), 0);
	EXPECT_EQ(idle_aware_lag(500, 100, 100), 0);
	EXPECT_EQ(idle_aware_lag(500, 99, 100), 500);
	EXPECT_EQ(idle_aware_lag(RR_NO_DURATION, 99, 100), RR_NO_DURATION);
	EXPECT_EQ(idle_aware_lag(500, 0, 0), 500);
}
