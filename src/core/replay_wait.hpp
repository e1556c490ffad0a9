/*
 * replay_wait.hpp -- the decisions of replroute_wait_for_replay(): argument
 * checks, the end of a wait and its result, the sleep schedule.
 *
 * The C entry points (include/replroute/replay_wait.h) are defined in
 * replay_wait.cpp next to the logic; they hold no state and cannot throw.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replay_wait.h"

#include <cstdint>

namespace replroute
{

/*
 * The sleep schedule.  Nothing wakes a backend when replay advances (see
 * replay_wait.h), so the wait looks every kWaitMinSleepUs at first: on this
 * kind of machine a sleep of 50 us lasts about 135-200 us (timer slack,
 * wakeup) and costs about 25 us of CPU, which keeps the time added beyond
 * the moment replay passes the position near 0.1 ms, for the waits a healthy
 * standby ends within a few milliseconds.  From 10 ms on, the sleep grows
 * with the time already waited (0.5 % of it, at most kWaitMaxSleepUs): at
 * the default timeout of 50 ms it is 250 us, so even a wait that times out
 * adds about 0.2 ms to a replay that came late, and a standby far behind,
 * where many waits run out, pays about 40 % less CPU for them than at a
 * fixed 50 us; a wait of seconds looks once a millisecond.
 */
constexpr int64_t kWaitMinSleepUs = 50;
constexpr int64_t kWaitMaxSleepUs = 1000;
constexpr int64_t kWaitSleepDivisor = 200;

int64_t wait_sleep_us(int64_t elapsed_us) noexcept;

rr_wait_refusal wait_check(const rr_wait_args &args) noexcept;

rr_replay_wait wait_start(rr_lsn target, int64_t timeout_us, rr_timestamp now,
                          bool in_recovery) noexcept;

rr_wait_verdict wait_step(const rr_replay_wait &wait, rr_timestamp now, bool in_recovery,
                          rr_lsn replayed, int64_t *sleep_us) noexcept;

bool wait_result(rr_wait_verdict verdict) noexcept;

} // namespace replroute
