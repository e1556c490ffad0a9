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
 * kind of machine a sleep of 50 us lasts about 135 us (timer slack, wakeup),
 * which keeps the time added beyond the moment replay passes the position
 * under 0.2 ms.  Waits longer than the default timeout are rare (a lagging
 * standby, or a caller's long timeout); there the sleep grows with the time
 * already waited (0.1 % of it, at most kWaitMaxSleepUs), so a long wait costs
 * little CPU and adds at most 0.1 % to its own length.
 */
constexpr int64_t kWaitMinSleepUs = 50;
constexpr int64_t kWaitMaxSleepUs = 1000;
constexpr int64_t kWaitSleepDivisor = 1000;

int64_t wait_sleep_us(int64_t elapsed_us) noexcept;

rr_wait_refusal wait_check(const rr_wait_args &args) noexcept;

rr_replay_wait wait_start(rr_lsn target, int64_t timeout_us, rr_timestamp now,
                          bool in_recovery) noexcept;

rr_wait_verdict wait_step(const rr_replay_wait &wait, rr_timestamp now, bool in_recovery,
                          rr_lsn replayed, int64_t *sleep_us) noexcept;

bool wait_result(rr_wait_verdict verdict) noexcept;

} // namespace replroute
