/* Intervals as microseconds: exact inside int64, saturating outside it. */
#include "interval.hpp"

#include "replroute/replay_wait.h"

#include <gtest/gtest.h>

#include <limits>

using namespace replroute;

namespace
{
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int32_t kMaxI32 = std::numeric_limits<int32_t>::max();
constexpr int32_t kMinI32 = std::numeric_limits<int32_t>::min();
} // namespace

TEST(Interval, FieldsAddUp)
{
	EXPECT_EQ(interval_usec(0, 0, 0), 0);
	EXPECT_EQ(interval_usec(50000, 0, 0), 50000);        /* '50ms' */
	EXPECT_EQ(interval_usec(0, 1, 0), kUsecPerDay);      /* '1 day' */
	EXPECT_EQ(interval_usec(0, 0, 1), 30 * kUsecPerDay); /* '1 month' = 30 days */
	EXPECT_EQ(interval_usec(1, 1, 1), 1 + 31 * kUsecPerDay);
	EXPECT_EQ(interval_usec(-1000, 0, 0), -1000);
	/* mixed signs: '1 day -1 hour' */
	EXPECT_EQ(interval_usec(-INT64_C(3600000000), 1, 0), 23 * INT64_C(3600000000));
}

TEST(Interval, SaturatesWithTheSignOfTheWhole)
{
	EXPECT_EQ(interval_usec(0, 0, kMaxI32), kMax); /* '178956970 years' */
	EXPECT_EQ(interval_usec(0, 0, kMinI32), kMin);
	EXPECT_EQ(interval_usec(kMax, kMaxI32, kMaxI32), kMax);
	EXPECT_EQ(interval_usec(kMin, kMinI32, kMinI32), kMin);
	/* a huge positive month count with a negative day is still huge */
	EXPECT_EQ(interval_usec(0, -1, kMaxI32), kMax);
	/* the time field at its limit plus one day overflows upwards */
	EXPECT_EQ(interval_usec(kMax, 1, 0), kMax);
	EXPECT_EQ(interval_usec(kMin, -1, 0), kMin);
	/* overflow in one field that the other cancels stays exact */
	EXPECT_EQ(interval_usec(kMax, -1, 0), kMax - kUsecPerDay);
}

TEST(Interval, ExactAtTheEdge)
{
	/* 106751991 days is the most that fits (about 292,000 years); one more
	 * overflows on its own, and saturates */
	constexpr int32_t kMostDays = 106751991;
	EXPECT_EQ(interval_usec(0, kMostDays, 0), static_cast<int64_t>(kMostDays) * kUsecPerDay);
	EXPECT_EQ(interval_usec(0, -kMostDays, 0), -static_cast<int64_t>(kMostDays) * kUsecPerDay);
	EXPECT_EQ(interval_usec(kMax - static_cast<int64_t>(kMostDays) * kUsecPerDay, kMostDays, 0),
	          kMax);
	EXPECT_EQ(interval_usec(0, kMostDays + 1, 0), kMax);
	EXPECT_EQ(interval_usec(0, kMaxI32, 0), kMax);
	EXPECT_EQ(interval_usec(0, kMinI32, 0), kMin);
}

TEST(Interval, CEntryPointAgrees)
{
	EXPECT_EQ(rr_interval_usec(7, 2, 3), interval_usec(7, 2, 3));
	EXPECT_EQ(rr_interval_usec(0, 0, kMaxI32), kMax);
}

TEST(Interval, SaturatingAdd)
{
	EXPECT_EQ(saturating_add(1, 2), 3);
	EXPECT_EQ(saturating_add(kMax, 1), kMax);
	EXPECT_EQ(saturating_add(kMin, -1), kMin);
	EXPECT_EQ(saturating_add(kMax, kMin), -1);
}

TEST(Interval, FieldsThatCancel)
{
	/* '178000000 years -1 day' is positive as a whole: 1.0 refused it as
	 * negative once, by looking at a field instead of the sum. */
	EXPECT_EQ(interval_usec(0, -1, 178000000 * 12), kMax);
	EXPECT_EQ(interval_usec(0, 1, -178000000 * 12), kMin);
	EXPECT_EQ(interval_usec(kMin, 1, 0), kMin + kUsecPerDay);
	EXPECT_EQ(interval_usec(0, 30, -1), 0);
}
