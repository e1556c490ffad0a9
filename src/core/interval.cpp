/*
 * interval.cpp -- interval_usec() and its C entry point rr_interval_usec().
 */
#include "interval.hpp"

#include "replroute/replay_wait.h"

#include <limits>

namespace replroute
{

int64_t saturating_add(int64_t a, int64_t b) noexcept
{
	int64_t sum;
	if (!__builtin_add_overflow(a, b, &sum))
		return sum;
	return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

int64_t interval_usec(int64_t time_us, int32_t days, int32_t months) noexcept
{
	int64_t days_us;
	int64_t months_us;
	int64_t total;

	if (!__builtin_mul_overflow(static_cast<int64_t>(days), kUsecPerDay, &days_us) &&
	    !__builtin_mul_overflow(static_cast<int64_t>(months), kDaysPerMonth * kUsecPerDay,
	                            &months_us) &&
	    !__builtin_add_overflow(time_us, days_us, &total) &&
	    !__builtin_add_overflow(total, months_us, &total))
		return total;

	/*
	 * The sign of the whole, not of any one field.  Past 2^63 us, a long
	 * double (64-bit mantissa) cannot round a sum across zero.
	 */
	long double exact = static_cast<long double>(time_us) +
	                    static_cast<long double>(days) * kUsecPerDay +
	                    static_cast<long double>(months) * kDaysPerMonth * kUsecPerDay;
	return exact < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
}

} // namespace replroute

extern "C" int64_t rr_interval_usec(int64_t time_us, int32_t days, int32_t months) noexcept
{
	return replroute::interval_usec(time_us, days, months);
}
