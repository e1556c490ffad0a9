/* The primary's LSN history and the time-lag lower bound derived from it. */
#include "lsn_history.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

using namespace replroute;
using namespace replroute::test;

TEST(LsnHistory, EarliestSamplePastTheReplayPosition)
{
	LsnHistory h;
	h.record(kT0 + 0 * kSecond, 100);
	h.record(kT0 + 1 * kSecond, 200);
	h.record(kT0 + 2 * kSecond, 300);
	EXPECT_EQ(h.first_past(150), kT0 + 1 * kSecond);
	EXPECT_EQ(h.first_past(200), kT0 + 2 * kSecond); /* 200 itself is replayed */
	EXPECT_EQ(h.first_past(199), kT0 + 1 * kSecond);
	EXPECT_FALSE(h.first_past(300).has_value());
	EXPECT_EQ(h.lag_us(150, kT0 + 5 * kSecond), 4 * kSecond);
	EXPECT_EQ(h.lag_us(300, kT0 + 5 * kSecond), 0);
}

TEST(LsnHistory, OlderThanEverySampleUsesTheOldest)
{
	LsnHistory h;
	h.record(kT0 + 10 * kSecond, 1000);
	h.record(kT0 + 11 * kSecond, 2000);
	EXPECT_EQ(h.first_past(5), kT0 + 10 * kSecond);
	EXPECT_EQ(h.lag_us(5, kT0 + 12 * kSecond), 2 * kSecond);
}

TEST(LsnHistory, IdleRoundsKeepTheEarliestTimeAtAPosition)
{
	LsnHistory h;
	h.record(kT0, 100);
	for (int i = 1; i <= 10; ++i)
		h.record(kT0 + i * kSecond, 100);
	EXPECT_EQ(h.size(), 1u);
	EXPECT_EQ(h.first_past(50), kT0);
}

TEST(LsnHistory, BoundedRingDropsTheOldest)
{
	LsnHistory h(4);
	for (int i = 1; i <= 6; ++i)
		h.record(kT0 + i * kSecond, static_cast<rr_lsn>(i * 100));
	EXPECT_EQ(h.size(), 4u);
	EXPECT_EQ(h.first_past(0), kT0 + 3 * kSecond); /* samples 1 and 2 were dropped */
	EXPECT_EQ(h.first_past(450), kT0 + 5 * kSecond);
}

TEST(LsnHistory, BackwardsLsnStartsAfresh)
{
	LsnHistory h;
	h.record(kT0, 1000);
	h.record(kT0 + kSecond, 2000);
	h.record(kT0 + 2 * kSecond, 500);
	EXPECT_EQ(h.size(), 1u);
	EXPECT_EQ(h.first_past(0), kT0 + 2 * kSecond);
}

TEST(LsnHistory, IgnoresUnknowns)
{
	LsnHistory h;
	h.record(kT0, 0);
	h.record(RR_NO_TIME, 100);
	EXPECT_EQ(h.size(), 0u);
	EXPECT_EQ(h.lag_us(5, kT0), 0);
}
