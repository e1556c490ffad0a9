/*
 * interval.cpp -- interval_usec; see interval.hpp.
 */
#include "interval.hpp"

#include <limits>

namespace replroute
{

int64_t interval_usec(int64_t time, int32_t day, int32_t month) noexcept
{
	constexpr __int128 kUsecPerDay = static_cast<__int128>(86400) * 1000000;
	constexpr __int128 kDaysPerMonth = 30;
	/* Exact: |time| < 2^63, each product below 2^32 * 2^42, the sum < 2^127. */
	__int128 total = static_cast<__int128>(time) + static_cast<__int128>(day) * kUsecPerDay +
	                 static_cast<__int128>(month) * kDaysPerMonth * kUsecPerDay;

	if (total > std::numeric_limits<int64_t>::max())
		return std::numeric_limits<int64_t>::max();
	if (total < std::numeric_limits<int64_t>::min())
		return std::numeric_limits<int64_t>::min();
	return static_cast<int64_t>(total);
}

} // namespace replroute
