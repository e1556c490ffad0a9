/* replroute_wait_for_replay()'s decisions: arguments, end, result, sleeps. */
#include "replay_wait.hpp"

#include "replroute/replay_wait.h"
#include "support.hpp"

#include <gtest/gtest.h>

#include <limits>

using namespace replroute;
using namespace replroute::test;

namespace
{
constexpr int64_t kMs = 1000;
constexpr rr_lsn kTarget = 0x3000148;

rr_wait_args accepted(int64_t timeout_us = 50 * kMs)
{
	rr_wait_args args{};
	args.timeout_us = timeout_us;
	return args;
}
} // namespace

TEST(WaitCheck, AcceptsAZeroOrPositiveTimeout)
{
	EXPECT_EQ(wait_check(accepted(0)), RR_WAIT_ACCEPTED);
	EXPECT_EQ(wait_check(accepted(50 * kMs)), RR_WAIT_ACCEPTED);
	EXPECT_EQ(wait_check(accepted(std::numeric_limits<int64_t>::max())), RR_WAIT_ACCEPTED);
}

TEST(WaitCheck, RefusesNullsNegativesAndATakenSnapshot)
{
	rr_wait_args args = accepted();
	args.lsn_is_null = true;
	EXPECT_EQ(wait_check(args), RR_WAIT_NULL_LSN);

	args = accepted();
	args.timeout_is_null = true;
	args.timeout_us = 0; /* what the shim leaves when the timeout is NULL */
	EXPECT_EQ(wait_check(args), RR_WAIT_NULL_TIMEOUT);

	EXPECT_EQ(wait_check(accepted(-1)), RR_WAIT_NEGATIVE_TIMEOUT);
	EXPECT_EQ(wait_check(accepted(std::numeric_limits<int64_t>::min())), RR_WAIT_NEGATIVE_TIMEOUT);

	args = accepted();
	args.xact_snapshot_taken = true;
	EXPECT_EQ(wait_check(args), RR_WAIT_SNAPSHOT_TAKEN);
}

TEST(WaitCheck, BadArgumentsComeBeforeTheTransactionState)
{
	rr_wait_args args = accepted(-5);
	args.xact_snapshot_taken = true;
	EXPECT_EQ(wait_check(args), RR_WAIT_NEGATIVE_TIMEOUT);
	args.lsn_is_null = true;
	EXPECT_EQ(rr_wait_check(&args), RR_WAIT_NULL_LSN);
}

TEST(WaitStep, APrimaryAnswersTrueAtOnce)
{
	rr_replay_wait wait = wait_start(kTarget, 50 * kMs, kT0, false);
	int64_t sleep = -1;
	EXPECT_EQ(wait_step(wait, kT0, false, 0, &sleep), RR_WAIT_NOT_IN_RECOVERY);
	EXPECT_TRUE(wait_result(RR_WAIT_NOT_IN_RECOVERY));
	EXPECT_EQ(sleep, -1); /* untouched */
}

TEST(WaitStep, ReplayedAtOrPastTheTarget)
{
	rr_replay_wait wait = wait_start(kTarget, 50 * kMs, kT0, true);
	EXPECT_EQ(wait_step(wait, kT0, true, kTarget, nullptr), RR_WAIT_REPLAYED);
	EXPECT_EQ(wait_step(wait, kT0, true, kTarget + 1, nullptr), RR_WAIT_REPLAYED);
	EXPECT_TRUE(wait_result(RR_WAIT_REPLAYED));
	/* the position 0/0 is always replayed */
	EXPECT_EQ(wait_step(wait_start(0, 0, kT0, true), kT0, true, 0, nullptr), RR_WAIT_REPLAYED);
}

TEST(WaitStep, SleepsUntilTheDeadlineThenTimesOut)
{
	rr_replay_wait wait = wait_start(kTarget, 50 * kMs, kT0, true);
	int64_t sleep = 0;
	EXPECT_EQ(wait_step(wait, kT0, true, kTarget - 1, &sleep), RR_WAIT_SLEEP);
	EXPECT_EQ(sleep, kWaitMinSleepUs);
	/* never past the deadline */
	EXPECT_EQ(wait_step(wait, kT0 + 50 * kMs - 7, true, kTarget - 1, &sleep), RR_WAIT_SLEEP);
	EXPECT_EQ(sleep, 7);
	EXPECT_EQ(wait_step(wait, kT0 + 50 * kMs, true, kTarget - 1, &sleep), RR_WAIT_TIMED_OUT);
	EXPECT_FALSE(wait_result(RR_WAIT_TIMED_OUT));
	/* replayed exactly at the deadline still counts */
	EXPECT_EQ(wait_step(wait, kT0 + 50 * kMs, true, kTarget, &sleep), RR_WAIT_REPLAYED);
}

TEST(WaitStep, ZeroTimeoutLooksOnce)
{
	rr_replay_wait wait = wait_start(kTarget, 0, kT0, true);
	EXPECT_EQ(wait_step(wait, kT0, true, kTarget - 1, nullptr), RR_WAIT_TIMED_OUT);
	EXPECT_EQ(wait_step(wait, kT0, true, kTarget, nullptr), RR_WAIT_REPLAYED);
}

TEST(WaitStep, AHugeTimeoutNeverWraps)
{
	rr_replay_wait wait = wait_start(kTarget, std::numeric_limits<int64_t>::max(), kT0, true);
	EXPECT_EQ(wait.deadline, std::numeric_limits<int64_t>::max());
	int64_t sleep = 0;
	EXPECT_EQ(wait_step(wait, kT0 + 3600 * kSecond, true, 0, &sleep), RR_WAIT_SLEEP);
	EXPECT_EQ(sleep, kWaitMaxSleepUs);
}

TEST(WaitStep, PromotionEndsTheWait)
{
	rr_replay_wait wait = wait_start(kTarget, 10 * kSecond, kT0, true);
	/* recovery ended after replaying the target: the write is here */
	EXPECT_EQ(wait_step(wait, kT0 + kMs, false, kTarget, nullptr), RR_WAIT_REPLAYED);
	/* recovery ended short of it: it never will be, do not sit out the timeout */
	EXPECT_EQ(wait_step(wait, kT0 + kMs, false, kTarget - 1, nullptr), RR_WAIT_PROMOTED_BEHIND);
	EXPECT_FALSE(wait_result(RR_WAIT_PROMOTED_BEHIND));
}

TEST(WaitStep, AClockThatGoesBackStillSleeps)
{
	rr_replay_wait wait = wait_start(kTarget, 50 * kMs, kT0, true);
	int64_t sleep = 0;
	EXPECT_EQ(wait_step(wait, kT0 - kSecond, true, 0, &sleep), RR_WAIT_SLEEP);
	EXPECT_EQ(sleep, kWaitMinSleepUs);
}

TEST(WaitSchedule, TightFirstThenGrowingToTheCap)
{
	EXPECT_EQ(wait_sleep_us(0), kWaitMinSleepUs);
	EXPECT_EQ(wait_sleep_us(10 * kMs), kWaitMinSleepUs); /* a healthy standby's waits */
	EXPECT_EQ(wait_sleep_us(50 * kMs), 250);             /* the default timeout: 0.5 % */
	EXPECT_EQ(wait_sleep_us(200 * kMs), kWaitMaxSleepUs);
	EXPECT_EQ(wait_sleep_us(3600 * kSecond), kWaitMaxSleepUs);
	int64_t previous = 0;
	for (int64_t elapsed = 0; elapsed < 2 * kSecond; elapsed += 997)
	{
		int64_t sleep = rr_replay_wait_sleep_us(elapsed);
		EXPECT_GE(sleep, previous);
		/* whatever was waited, a sleep adds at most 0.5 % or the minimum */
		EXPECT_LE(sleep, std::max<int64_t>(kWaitMinSleepUs, elapsed / 200));
		previous = sleep;
	}
}

TEST(WaitStep, CEntryPoints)
{
	rr_replay_wait wait;
	rr_replay_wait_start(&wait, kTarget, 50 * kMs, kT0, true);
	int64_t sleep = 0;
	EXPECT_EQ(rr_replay_wait_step(&wait, kT0, true, 1, &sleep), RR_WAIT_SLEEP);
	EXPECT_EQ(rr_replay_wait_step(nullptr, kT0, true, 1, &sleep), RR_WAIT_TIMED_OUT);
	EXPECT_TRUE(rr_wait_verdict_result(RR_WAIT_REPLAYED));
	EXPECT_FALSE(rr_wait_verdict_result(RR_WAIT_SLEEP));
}
