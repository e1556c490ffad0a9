/* interval_usec: the one conversion of a PostgreSQL interval. */
#include "interval.hpp"

#include "replroute/replay_wait.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

using namespace replroute;

namespace
{
constexpr int64_t kDay = 86400LL * 1000000;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
} // namespace

TEST(IntervalUsec, Fields)
{
	EXPECT_EQ(interval_usec(0, 0, 0), 0);
	EXPECT_EQ(interval_usec(1500, 0, 0), 1500);
	EXPECT_EQ(interval_usec(0, 1, 0), kDay);
	EXPECT_EQ(interval_usec(0, 0, 1), 30 * kDay);
	EXPECT_EQ(interval_usec(-1, 1, 0), kDay - 1);
	EXPECT_EQ(interval_usec(0, -2, 1), 28 * kDay);
}

TEST(IntervalUsec, SaturatesBySignOfTheWhole)
{
	/* '178000000 years -1 day': months overflow, the whole is positive. */
	EXPECT_EQ(interval_usec(0, -1, 178000000 * 12), kMax);
	EXPECT_EQ(interval_usec(0, 1, -178000000 * 12), kMin);
	EXPECT_EQ(interval_usec(kMax, 1, 0), kMax);
	EXPECT_EQ(interval_usec(kMin, -1, 0), kMin);
	EXPECT_EQ(interval_usec(kMax, std::numeric_limits<int32_t>::max(),
	                        std::numeric_limits<int32_t>::max()),
	          kMax);
	EXPECT_EQ(interval_usec(kMin, std::numeric_limits<int32_t>::min(),
	                        std::numeric_limits<int32_t>::min()),
	          kMin);
}

TEST(IntervalUsec, FieldsThatCancelDoNotSaturate)
{
	/* time near the top, days pulling it back: exact, not clamped. */
	EXPECT_EQ(interval_usec(kMax, -1, 0), kMax - kDay);
	EXPECT_EQ(interval_usec(kMin, 1, 0), kMin + kDay);
	EXPECT_EQ(interval_usec(0, 30, -1), 0);
}

TEST(IntervalUsec, Boundary)
{
	EXPECT_EQ(rr_interval_usec(2500, 1, 0), kDay + 2500);
	EXPECT_EQ(rr_interval_usec(0, -1, 178000000 * 12), kMax);
}
