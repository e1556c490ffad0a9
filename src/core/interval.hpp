/*
 * interval.hpp -- a PostgreSQL interval as a number of microseconds.
 */
#ifndef REPLROUTE_CORE_INTERVAL_HPP
#define REPLROUTE_CORE_INTERVAL_HPP

#ifdef POSTGRES_H
#error "the replroute core must not include postgres.h"
#endif

#include <cstdint>

namespace replroute
{

/*
 * time + day days + month months, in microseconds, with a month of 30 days
 * (as EXTRACT(epoch FROM interval) counts it).  Never overflows: a total
 * beyond int64 saturates to INT64_MAX or INT64_MIN by the sign of the whole,
 * not of any one field ('178000000 years -1 day' is a long time).
 */
int64_t interval_usec(int64_t time, int32_t day, int32_t month) noexcept;

} // namespace replroute

#endif
