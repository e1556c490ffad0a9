/*
 * replay_wait.cpp -- replroute_wait_for_replay()'s decisions, and their C
 * entry points (replroute/replay_wait.h).
 */
#include "replay_wait.hpp"

#include "interval.hpp"

#include <algorithm>

namespace replroute
{

int64_t wait_sleep_us(int64_t elapsed_us) noexcept
{
	int64_t grown = elapsed_us / kWaitSleepDivisor;
	return std::clamp(grown, kWaitMinSleepUs, kWaitMaxSleepUs);
}

rr_wait_refusal wait_check(const rr_wait_args &args) noexcept
{
	if (args.lsn_is_null)
		return RR_WAIT_NULL_LSN;
	if (args.timeout_is_null)
		return RR_WAIT_NULL_TIMEOUT;
	if (args.timeout_us < 0)
		return RR_WAIT_NEGATIVE_TIMEOUT;
	if (args.xact_snapshot_taken)
		return RR_WAIT_SNAPSHOT_TAKEN;
	return RR_WAIT_ACCEPTED;
}

rr_replay_wait wait_start(rr_lsn target, int64_t timeout_us, rr_timestamp now,
                          bool in_recovery) noexcept
{
	rr_replay_wait wait{};
	wait.target = target;
	wait.started_at = now;
	wait.deadline = saturating_add(now, std::max<int64_t>(timeout_us, 0));
	wait.started_in_recovery = in_recovery;
	return wait;
}

rr_wait_verdict wait_step(const rr_replay_wait &wait, rr_timestamp now, bool in_recovery,
                          rr_lsn replayed, int64_t *sleep_us) noexcept
{
	/* A primary has every write that a client of this cluster committed. */
	if (!wait.started_in_recovery)
		return RR_WAIT_NOT_IN_RECOVERY;
	if (replayed >= wait.target)
		return RR_WAIT_REPLAYED;
	/* Promoted meanwhile: replay has ended for good (replayed was read after
	 * in_recovery), and a later write on this server is another history. */
	if (!in_recovery)
		return RR_WAIT_PROMOTED_BEHIND;
	if (now >= wait.deadline)
		return RR_WAIT_TIMED_OUT;

	int64_t elapsed = std::max<int64_t>(now - wait.started_at, 0);
	int64_t sleep = std::min(wait_sleep_us(elapsed), wait.deadline - now);
	if (sleep_us != nullptr)
		*sleep_us = sleep;
	return RR_WAIT_SLEEP;
}

bool wait_result(rr_wait_verdict verdict) noexcept
{
	return verdict == RR_WAIT_NOT_IN_RECOVERY || verdict == RR_WAIT_REPLAYED;
}

} // namespace replroute

extern "C"
{

	rr_wait_refusal rr_wait_check(const rr_wait_args *args) noexcept
	{
		if (args == nullptr)
			return RR_WAIT_NULL_LSN;
		return replroute::wait_check(*args);
	}

	void rr_replay_wait_start(rr_replay_wait *wait, rr_lsn target, int64_t timeout_us,
	                          rr_timestamp now, bool in_recovery) noexcept
	{
		if (wait != nullptr)
			*wait = replroute::wait_start(target, timeout_us, now, in_recovery);
	}

	rr_wait_verdict rr_replay_wait_step(const rr_replay_wait *wait, rr_timestamp now,
	                                    bool in_recovery, rr_lsn replayed,
	                                    int64_t *sleep_us) noexcept
	{
		if (wait == nullptr)
			return RR_WAIT_TIMED_OUT;
		return replroute::wait_step(*wait, now, in_recovery, replayed, sleep_us);
	}

	bool rr_wait_verdict_result(rr_wait_verdict verdict) noexcept
	{
		return replroute::wait_result(verdict);
	}

	int64_t rr_replay_wait_sleep_us(int64_t elapsed_us) noexcept
	{
		return replroute::wait_sleep_us(elapsed_us);
	}
}
