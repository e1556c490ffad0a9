/*
 * lsn_history.hpp -- when did the primary's WAL pass a given position?
 *
 * pg_stat_replication.replay_lag is measured by the walsender only when the
 * standby replies, and stays at its last value or NULL while a standby is
 * stuck.  The worker therefore remembers, round by round, the primary's flush
 * LSN: if a node has replayed up to R and the earliest remembered sample past
 * R was taken at time t, the node is at least now - t behind.  That is a lower
 * bound, so routing on it is safe.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

#include <cstddef>
#include <optional>
#include <vector>

namespace replroute
{

class LsnHistory
{
public:
	static constexpr size_t kDefaultCapacity = 4096;

	explicit LsnHistory(size_t capacity = kDefaultCapacity);

	/* Records that the primary's flush LSN was lsn at time at.  Only rounds in
	 * which the WAL advanced are kept (the earliest time at an LSN is all
	 * that matters), so an idle primary does not push history out.  A flush
	 * LSN that goes backwards (a different primary) clears the history. */
	void record(rr_timestamp at, rr_lsn lsn);

	/* Time of the earliest sample whose LSN exceeds replay_lsn: the oldest
	 * sample when replay_lsn is older than all of them; nullopt when no
	 * sample is past replay_lsn. */
	std::optional<rr_timestamp> first_past(rr_lsn replay_lsn) const noexcept;

	/* now - first_past(replay_lsn), at least 0; 0 when nothing is past it. */
	int64_t lag_us(rr_lsn replay_lsn, rr_timestamp now) const noexcept;

	size_t size() const noexcept { return size_; }
	void clear() noexcept { head_ = size_ = 0; }

private:
	struct Sample
	{
		rr_timestamp at;
		rr_lsn lsn;
	};

	/* i-th sample from the oldest. */
	const Sample &at(size_t i) const noexcept { return ring_[(head_ + i) % ring_.size()]; }

	std::vector<Sample> ring_;
	size_t head_ = 0; /* oldest sample */
	size_t size_ = 0;
};

} // namespace replroute
