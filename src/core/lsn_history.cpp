/*
 * lsn_history.cpp -- a ring of (time, primary flush LSN) samples whose LSNs
 * strictly increase, so the earliest sample past a position is found by
 * binary search.
 */
#include "lsn_history.hpp"

namespace replroute
{

LsnHistory::LsnHistory(size_t capacity) : ring_(capacity == 0 ? 1 : capacity) {}

void LsnHistory::record(rr_timestamp at, rr_lsn lsn)
{
	if (lsn == 0 || at == RR_NO_TIME)
		return;
	if (size_ > 0)
	{
		rr_lsn newest = this->at(size_ - 1).lsn;
		if (lsn == newest)
			return;
		if (lsn < newest)
			clear();
	}
	if (size_ == ring_.size())
	{
		head_ = (head_ + 1) % ring_.size();
		--size_;
	}
	ring_[(head_ + size_) % ring_.size()] = Sample{at, lsn};
	++size_;
}

std::optional<rr_timestamp> LsnHistory::first_past(rr_lsn replay_lsn) const noexcept
{
	size_t lo = 0, hi = size_;
	while (lo < hi)
	{
		size_t mid = lo + (hi - lo) / 2;
		if (at(mid).lsn > replay_lsn)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (lo == size_)
		return std::nullopt;
	return at(lo).at;
}

int64_t LsnHistory::lag_us(rr_lsn replay_lsn, rr_timestamp now) const noexcept
{
	std::optional<rr_timestamp> since = first_past(replay_lsn);
	if (!since || now == RR_NO_TIME || now <= *since)
		return 0;
	return now - *since;
}

} // namespace replroute
