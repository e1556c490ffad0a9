/* ProbeMachine on synthetic timelines, and what its observations do to the
 * health verdict. */
#include "health.hpp"
#include "probe.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace replroute;
using namespace replroute::test;

namespace
{

constexpr int64_t kMs = 1000;
const rr_probe_settings kDefaults{250 * kMs, 1000 * kMs};

/* Connects and answers once, at t0; returns the time of the answer. */
rr_timestamp connect_and_answer(ProbeMachine &m, rr_timestamp t0, rr_lsn lsn = 0x3000000,
                                bool in_recovery = true)
{
	EXPECT_EQ(m.poll(t0, kDefaults), RR_PROBE_DO_CONNECT);
	m.on_connected(t0 + 2 * kMs);
	EXPECT_EQ(m.poll(t0 + 2 * kMs, kDefaults), RR_PROBE_DO_SEND);
	m.on_answer(t0 + 3 * kMs, in_recovery, lsn);
	return t0 + 3 * kMs;
}

} // namespace

TEST(Probe, ConnectsSendsAndAnswersAtTheInterval)
{
	ProbeMachine m;
	EXPECT_EQ(m.state(), RR_PROBE_IDLE);
	EXPECT_EQ(m.next_deadline(kDefaults), RR_NO_TIME) << "idle: act at once";
	rr_timestamp t = connect_and_answer(m, kT0);
	EXPECT_EQ(m.state(), RR_PROBE_OK);
	rr_probe_obs o = m.observe(t, kDefaults);
	EXPECT_EQ(o.outcome, RR_PROBE_ANSWERED);
	EXPECT_TRUE(o.in_recovery);
	EXPECT_EQ(o.replay_lsn, 0x3000000u);
	EXPECT_TRUE(o.replay_lsn_fresh);
	EXPECT_EQ(o.answered_at, t);

	/* Paced from the send (kT0 + 2 ms), not from the answer. */
	EXPECT_EQ(m.next_deadline(kDefaults), kT0 + 2 * kMs + 250 * kMs);
	EXPECT_EQ(m.poll(kT0 + 251 * kMs, kDefaults), RR_PROBE_DO_NOTHING);
	EXPECT_EQ(m.poll(kT0 + 252 * kMs, kDefaults), RR_PROBE_DO_SEND);
	EXPECT_EQ(m.state(), RR_PROBE_QUERYING);
	EXPECT_EQ(m.next_deadline(kDefaults), kT0 + 252 * kMs + 1000 * kMs);
}

TEST(Probe, QueryTimeoutDropsAndBacksOff)
{
	ProbeMachine m;
	connect_and_answer(m, kT0);
	rr_timestamp sent = kT0 + 252 * kMs;
	ASSERT_EQ(m.poll(sent, kDefaults), RR_PROBE_DO_SEND);
	/* A hung standby: no answer ever. */
	EXPECT_EQ(m.poll(sent + 999 * kMs, kDefaults), RR_PROBE_DO_NOTHING);
	EXPECT_EQ(m.observe(sent + 999 * kMs, kDefaults).outcome, RR_PROBE_ANSWERED)
	    << "still within the deadline";
	EXPECT_EQ(m.poll(sent + 1000 * kMs, kDefaults), RR_PROBE_DO_DROP);
	EXPECT_EQ(m.state(), RR_PROBE_BACKOFF);
	rr_probe_obs o = m.observe(sent + 1000 * kMs, kDefaults);
	EXPECT_EQ(o.outcome, RR_PROBE_FAILED);
	EXPECT_FALSE(o.replay_lsn_fresh) << "a failed exchange vouches for nothing";
	EXPECT_STREQ(o.reason, "probe timed out after 1 s");
	EXPECT_EQ(m.next_deadline(kDefaults), sent + 1250 * kMs) << "first retry after one interval";
}

TEST(Probe, BackoffDoublesUpToTheCapAndResetsOnAnswer)
{
	ProbeMachine m;
	rr_timestamp t = kT0;
	int64_t expected = 250 * kMs;
	for (int attempt = 0; attempt < 8; ++attempt)
	{
		ASSERT_EQ(m.poll(t, kDefaults), RR_PROBE_DO_CONNECT) << attempt;
		m.on_failure(t + kMs, "connection to server at \"10.0.0.1\", port 5432 failed: "
		                      "Connection refused\n\tIs the server running on that host?\n");
		EXPECT_EQ(m.backoff_us(), expected) << attempt;
		EXPECT_EQ(m.poll(t + kMs + m.backoff_us() - 1, kDefaults), RR_PROBE_DO_NOTHING);
		t = t + kMs + m.backoff_us();
		expected = std::min<int64_t>(expected * 2, kBackoffCapUs);
	}
	EXPECT_EQ(m.backoff_us(), kBackoffCapUs);
	rr_probe_obs o = m.observe(t, kDefaults);
	EXPECT_EQ(o.outcome, RR_PROBE_FAILED);
	EXPECT_EQ(std::string(o.reason), "probe failed: connection to server at \"10.0.0.1\", port "
	                                 "5432 failed: Connection refused")
	    << "only the first line of libpq's message";

	connect_and_answer(m, t);
	EXPECT_EQ(m.backoff_us(), 0);
	EXPECT_EQ(m.observe(t + 3 * kMs, kDefaults).outcome, RR_PROBE_ANSWERED);
	EXPECT_EQ(m.observe(t + 3 * kMs, kDefaults).reason[0], '\0');
}

TEST(Probe, ConnectTimeoutWhenTheServerNeverCompletesTheStartup)
{
	ProbeMachine m;
	ASSERT_EQ(m.poll(kT0, kDefaults), RR_PROBE_DO_CONNECT);
	EXPECT_EQ(m.next_deadline(kDefaults), kT0 + 1000 * kMs);
	EXPECT_EQ(m.poll(kT0 + 1000 * kMs, kDefaults), RR_PROBE_DO_DROP);
	EXPECT_STREQ(m.observe(kT0 + 1000 * kMs, kDefaults).reason,
	             "probe timed out after 1 s while connecting");
}

TEST(Probe, LostConnectionBetweenQueriesIsAFailure)
{
	ProbeMachine m;
	rr_timestamp t = connect_and_answer(m, kT0);
	m.on_failure(t + 10 * kMs, "server closed the connection unexpectedly");
	EXPECT_EQ(m.state(), RR_PROBE_BACKOFF);
	EXPECT_EQ(m.observe(t + 10 * kMs, kDefaults).outcome, RR_PROBE_FAILED);
}

/* The serial names a failure's text: the same while nothing happens, a new
 * one with every failure, unique across targets, none without a failure. */
TEST(Probe, ReasonSerialNamesTheFailureText)
{
	ProbeMachine m, other;
	rr_timestamp t = connect_and_answer(m, kT0);
	EXPECT_EQ(m.observe(t, kDefaults).reason_serial, 0u) << "answered: no reason";
	m.on_failure(t + 10 * kMs, "server closed the connection unexpectedly");
	rr_probe_obs a = m.observe(t + 10 * kMs, kDefaults), b = m.observe(t + 20 * kMs, kDefaults);
	EXPECT_NE(a.reason_serial, 0u);
	EXPECT_EQ(a.reason_serial, b.reason_serial) << "nothing happened in between";
	EXPECT_STREQ(a.reason, b.reason);

	rr_timestamp t2 = connect_and_answer(other, kT0);
	other.on_failure(t2 + 10 * kMs, "server closed the connection unexpectedly");
	EXPECT_NE(other.observe(t2 + 10 * kMs, kDefaults).reason_serial, a.reason_serial)
	    << "another target, another write";

	/* Back off, retry, fail again: a new text (a new serial). */
	rr_timestamp retry = t + 10 * kMs + m.backoff_us();
	ASSERT_EQ(m.poll(retry, kDefaults), RR_PROBE_DO_CONNECT);
	m.on_failure(retry + kMs, "connection refused");
	rr_probe_obs c = m.observe(retry + kMs, kDefaults);
	EXPECT_NE(c.reason_serial, a.reason_serial);
	EXPECT_NE(std::string(c.reason), a.reason);
}

TEST(Probe, AnswerGoesStaleWhenTheNextIsOverdue)
{
	ProbeMachine m;
	rr_timestamp t = connect_and_answer(m, kT0);
	EXPECT_TRUE(m.observe(t + 1250 * kMs, kDefaults).replay_lsn_fresh);
	EXPECT_FALSE(m.observe(t + 1251 * kMs, kDefaults).replay_lsn_fresh);
}

TEST(Probe, EventsOutOfOrderAreIgnored)
{
	ProbeMachine m;
	m.on_answer(kT0, true, 42); /* never sent */
	m.on_connected(kT0);
	EXPECT_EQ(m.state(), RR_PROBE_IDLE);
	EXPECT_EQ(m.observe(kT0, kDefaults).outcome, RR_PROBE_PENDING);
	m.on_failure(kT0, nullptr); /* nothing to fail */
	EXPECT_EQ(m.state(), RR_PROBE_IDLE);
}

TEST(Probe, FailureReasonIsBoundedAndPrintable)
{
	char reason[RR_REASON_LEN];
	std::string longline(500, 'x');
	probe_failure_reason(reason, longline.c_str());
	EXPECT_EQ(std::string(reason).size(), RR_REASON_LEN - 1);
	EXPECT_EQ(std::string(reason).substr(RR_REASON_LEN - 4), "...");
	probe_failure_reason(reason, "a\tb");
	EXPECT_STREQ(reason, "probe failed: a?b");
	probe_failure_reason(reason, "");
	EXPECT_STREQ(reason, "probe failed: no message");
}

TEST(Probe, SettingsChangeAppliesToTheRunningDeadline)
{
	ProbeMachine m;
	ASSERT_EQ(m.poll(kT0, kDefaults), RR_PROBE_DO_CONNECT);
	rr_probe_settings shorter{250 * kMs, 100 * kMs};
	EXPECT_EQ(m.poll(kT0 + 100 * kMs, shorter), RR_PROBE_DO_DROP);
	EXPECT_STREQ(m.observe(kT0 + 100 * kMs, shorter).reason,
	             "probe timed out after 100 ms while connecting");
}

/* --- the verdict ---------------------------------------------------------- */

namespace
{

constexpr rr_lsn kFlush = 1ULL << 30;

struct ProbedCase
{
	rr_node_config config = node("node1");
	rr_walsender_obs ws = walsender("node1", 101, kFlush - 4096);
	rr_probe_obs probe{};
	bool has_walsender = true;
	bool has_probe = true;

	ProbedCase()
	{
		probe.state = RR_PROBE_OK;
		probe.outcome = RR_PROBE_ANSWERED;
		probe.in_recovery = true;
		probe.replay_lsn = kFlush - 4096;
		probe.replay_lsn_fresh = true;
		probe.answered_at = kT0;
	}

	rr_node_entry run()
	{
		NodeObservation obs;
		obs.node = &config;
		obs.walsender = has_walsender ? &ws : nullptr;
		obs.probe = has_probe ? &probe : nullptr;
		obs.primary_flush_lsn = kFlush;
		obs.history_lag_us = 0;
		obs.now = kT0;
		return evaluate_node(obs, limits());
	}
};

} // namespace

TEST(ProbeHealth, AnsweredInRecoveryKeepsTheWalsenderVerdict)
{
	ProbedCase c;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_HEALTHY) << e.reason;
	EXPECT_TRUE(e.routable);
	EXPECT_EQ(e.probe_state, RR_PROBE_OK);
	EXPECT_EQ(e.probe_replay_lsn, kFlush - 4096);
	EXPECT_EQ(e.probe_at, kT0);
}

TEST(ProbeHealth, FailedProbeIsUnreachableEvenWithALiveLookingWalsender)
{
	ProbedCase c;
	c.probe.outcome = RR_PROBE_FAILED;
	c.probe.state = RR_PROBE_BACKOFF;
	std::snprintf(c.probe.reason, sizeof c.probe.reason, "probe timed out after 1 s");
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_UNREACHABLE);
	EXPECT_FALSE(e.routable);
	EXPECT_STREQ(e.reason, "probe timed out after 1 s; its walsender is still connected");

	c.has_walsender = false; /* down either way: the walsender's word, the probe's reason */
	e = c.run();
	EXPECT_EQ(e.state, RR_STATE_DISCONNECTED);
	EXPECT_STREQ(e.reason, "no walsender with application_name 'node1'; probe timed out after 1 s");
}

TEST(ProbeHealth, NotInRecoveryIsNeverRouted)
{
	ProbedCase c;
	c.probe.in_recovery = false;
	c.has_walsender = false; /* a primary has no walsender of its own name */
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_NOT_IN_RECOVERY);
	EXPECT_FALSE(e.routable);
	EXPECT_EQ(e.known_replay_lsn, 0u) << "a primary's replay position means nothing";

	c.has_walsender = true; /* even if something streams under its name */
	e = c.run();
	EXPECT_EQ(e.state, RR_STATE_NOT_IN_RECOVERY);
}

TEST(ProbeHealth, DrainedAndStandbyServerComeFirst)
{
	ProbedCase c;
	c.probe.outcome = RR_PROBE_FAILED;
	c.config.drained = true;
	EXPECT_EQ(c.run().state, RR_STATE_DRAINED);
}

TEST(ProbeHealth, PendingOrOffJudgesOnWalsenderAlone)
{
	ProbedCase c;
	c.probe = rr_probe_obs{};
	c.probe.state = RR_PROBE_CONNECTING;
	EXPECT_EQ(c.run().state, RR_STATE_HEALTHY);
	c.has_probe = false;
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_HEALTHY);
	EXPECT_EQ(e.probe_state, RR_PROBE_OFF);
	EXPECT_EQ(e.probe_at, RR_NO_TIME);
}

TEST(ProbeHealth, KnownReplayIsTheNewerOfTheTwoLowerBounds)
{
	ProbedCase c;
	c.probe.replay_lsn = kFlush - 1024; /* the probe saw more replayed than feedback says */
	EXPECT_EQ(c.run().known_replay_lsn, kFlush - 1024);

	c.probe.replay_lsn = kFlush - 8192; /* feedback newer */
	EXPECT_EQ(c.run().known_replay_lsn, kFlush - 4096);

	c.probe.replay_lsn = kFlush - 1024;
	c.probe.replay_lsn_fresh = false; /* a stale answer vouches for nothing */
	EXPECT_EQ(c.run().known_replay_lsn, kFlush - 4096);

	c.probe.replay_lsn_fresh = true;
	c.has_walsender = false; /* no walsender: disconnected, whatever the probe says */
	rr_node_entry e = c.run();
	EXPECT_EQ(e.state, RR_STATE_DISCONNECTED);
	EXPECT_FALSE(e.routable);
}

TEST(ProbeHealth, ProbeStateNames)
{
	EXPECT_STREQ(rr_probe_state_name(RR_PROBE_OFF), "off");
	EXPECT_STREQ(rr_probe_state_name(RR_PROBE_BACKOFF), "backoff");
	EXPECT_STREQ(rr_probe_state_name(static_cast<rr_probe_state>(99)), "invalid");
}

/* Through the boundary: a hung standby's entry, min_lsn from the probe. */
TEST(ProbeHealth, EvaluatorPairsProbesWithNodesAndRoutesByThem)
{
	World world;
	Round round;
	round.flush = 5000;
	round.nodes = {node("s1"), node("s2")};
	round.walsenders = {walsender("s1", 11, 4000), walsender("s2", 12, 4000)};
	round.probes.resize(2);
	round.probes[0].state = RR_PROBE_BACKOFF;
	round.probes[0].outcome = RR_PROBE_FAILED;
	std::snprintf(round.probes[0].reason, sizeof round.probes[0].reason,
	              "probe timed out after 1 s");
	round.probes[1].state = RR_PROBE_OK;
	round.probes[1].outcome = RR_PROBE_ANSWERED;
	round.probes[1].in_recovery = true;
	round.probes[1].replay_lsn = 4800;
	round.probes[1].replay_lsn_fresh = true;
	round.probes[1].answered_at = kT0;
	ASSERT_EQ(world.publish(round), RR_OK) << world.last_error.message;

	Snapshot snap = world.snap();
	ASSERT_NE(snap.find("s1"), nullptr);
	EXPECT_EQ(snap.find("s1")->state, RR_STATE_UNREACHABLE);
	EXPECT_EQ(snap.find("s2")->state, RR_STATE_HEALTHY);
	EXPECT_EQ(snap.find("s2")->known_replay_lsn, 4800u);

	rr_pick_request req = request(kT0);
	req.min_lsn = 4700; /* past the walsender's feedback, within the probe's answer */
	rr_pick_result result = world.pick(req);
	ASSERT_TRUE(result.found);
	EXPECT_STREQ(result.name, "s2");
	req.min_lsn = 4900;
	EXPECT_FALSE(world.pick(req).found);
}
