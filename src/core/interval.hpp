/*
 * interval.hpp -- PostgreSQL intervals as microseconds, without overflow.
 *
 * An interval is three fields (microseconds, days, months); every SQL function
 * that takes one as a bound or a timeout needs one number.  Months count 30
 * days, as EXTRACT(epoch FROM interval) does.  Values beyond int64 saturate:
 * callers compare the result or add it to a time, never scale it.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include <cstdint>

namespace replroute
{

constexpr int64_t kUsecPerDay = INT64_C(86400000000);
constexpr int64_t kDaysPerMonth = 30;

int64_t interval_usec(int64_t time_us, int32_t days, int32_t months) noexcept;

/* a + b, saturating at the int64 limits. */
int64_t saturating_add(int64_t a, int64_t b) noexcept;

} // namespace replroute
