/*
 * routing.cpp -- qualification, policies, and the two reader entry points.
 */
#include "routing.hpp"

#include "errors.hpp"
#include "text.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

namespace replroute
{

bool qualifies(bool routable, int64_t lag_bytes, int64_t lag_us, rr_lsn known_replay_lsn,
               const rr_pick_request &request) noexcept
{
	if (!routable)
		return false;
	if (request.max_lag_bytes >= 0 && (lag_bytes < 0 || lag_bytes > request.max_lag_bytes))
		return false;
	if (request.max_lag_us >= 0 && (lag_us < 0 || lag_us > request.max_lag_us))
		return false;
	if (request.min_lsn != 0 && (known_replay_lsn == 0 || known_replay_lsn < request.min_lsn))
		return false;
	return true;
}

rr_unroutable_cause judge_table(const rr_table_header &header, rr_timestamp now,
                                int64_t stale_after_us, int64_t &data_age_us) noexcept
{
	if (header.published_at == RR_NO_TIME)
	{
		data_age_us = RR_NO_DURATION;
		return RR_CAUSE_NO_DATA;
	}
	/* Computed in unsigned arithmetic: a hostile or broken clock must not
	 * overflow a signed subtraction. */
	if (now == RR_NO_TIME || now <= header.published_at)
		data_age_us = 0;
	else
	{
		uint64_t age = static_cast<uint64_t>(now) - static_cast<uint64_t>(header.published_at);
		constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
		data_age_us = static_cast<int64_t>(age > kMax ? kMax : age);
	}
	if (now == RR_NO_TIME || (stale_after_us >= 0 && data_age_us > stale_after_us))
		return RR_CAUSE_STALE;
	if (header.in_recovery)
		return RR_CAUSE_NOT_PRIMARY;
	return RR_CAUSE_NONE;
}

uint64_t scale_random(uint64_t random, uint64_t total) noexcept
{
	return static_cast<uint64_t>((static_cast<unsigned __int128>(random) * total) >> 64);
}

namespace
{

/* The request comes from C, where any int fits in the enum; in C++ loading
 * an out-of-range enumerator is undefined, so look at the raw integer before
 * trusting the field. */
bool policy_known(const rr_pick_request &request)
{
	std::underlying_type_t<rr_policy> raw;
	static_assert(sizeof raw == sizeof request.policy);
	std::memcpy(&raw, &request.policy, sizeof raw);
	return raw == RR_POLICY_WEIGHTED || raw == RR_POLICY_ROUND_ROBIN || raw == RR_POLICY_LEAST_LAG;
}

bool has_lag_bounds(const rr_pick_request &request)
{
	return request.max_lag_bytes >= 0 || request.max_lag_us >= 0;
}

/* How many candidates, from the first, meet min_lsn: they are ordered by
 * known replay position, newest first, so this is a binary search. */
uint32_t meeting_min_lsn(const TableReader &reader, uint32_t n, rr_lsn min_lsn)
{
	if (min_lsn == 0)
		return n;
	uint32_t low = 0, high = n; /* [0, low) meet it, [high, n) do not */
	while (low < high)
	{
		uint32_t mid = low + (high - low) / 2;
		if (reader.candidate_lsn(mid) >= min_lsn)
			low = mid + 1;
		else
			high = mid;
	}
	return low;
}

/* A candidate that met min_lsn, as the per-call lag bounds see it. */
struct Qualified
{
	uint32_t candidate;
	uint32_t entry_index;
	uint32_t lag_rank;
	int32_t weight;
};
using QualifiedVector = boost::container::small_vector<Qualified, kInlineCandidates>;

/* The candidates among the first k that meet the per-call lag bounds. */
void filter_by_lag(const TableReader &reader, uint32_t k, const rr_pick_request &request,
                   QualifiedVector &out)
{
	out.clear();
	for (uint32_t c = 0; c < k; ++c)
	{
		Candidate candidate;
		reader.candidate_metrics(c, candidate);
		if (qualifies(true, candidate.lag_bytes, candidate.lag_us, candidate.known_replay_lsn,
		              request))
			out.push_back({c, candidate.entry_index, candidate.lag_rank, candidate.weight});
	}
}

/* The chosen candidate among the first k that meet min_lsn, or nullopt.
 * Runs inside a consistent read: every index it reads is below the
 * candidate count, which is at most the capacity. */
std::optional<uint32_t> choose_candidate(const TableReader &reader, uint32_t n_candidates,
                                         const rr_pick_request &request, uint64_t ticket)
{
	uint32_t k = meeting_min_lsn(reader, n_candidates, request.min_lsn);
	if (k == 0)
		return std::nullopt;
	if (!has_lag_bounds(request))
	{
		switch (request.policy)
		{
		case RR_POLICY_WEIGHTED:
			return choose_by_cumulative_weight(k, request.random,
			                                   [&](uint32_t i)
			                                   { return reader.candidate_cumulative_weight(i); });
		case RR_POLICY_ROUND_ROBIN:
			return static_cast<uint32_t>(ticket % k);
		case RR_POLICY_LEAST_LAG:
		{
			uint32_t best = reader.candidate_least_lag_upto(k - 1);
			return best < k ? best : 0; /* a torn read may say anything */
		}
		}
		return std::nullopt;
	}

	/* Two passes over the first k candidates, allocating nothing: the
	 * first counts those within the lag bounds (and their weight, and the
	 * least lagging), the second finds the one a ticket or a weight names. */
	/* The prefix already meets min_lsn: only the lag words are tested, and
	 * the weight and rank word read only for those within the bounds. */
	auto within = [&](uint32_t c, Candidate &candidate)
	{
		reader.candidate_lags(c, candidate);
		if (request.max_lag_bytes >= 0 &&
		    (candidate.lag_bytes < 0 || candidate.lag_bytes > request.max_lag_bytes))
			return false;
		if (request.max_lag_us >= 0 &&
		    (candidate.lag_us < 0 || candidate.lag_us > request.max_lag_us))
			return false;
		reader.candidate_weight_rank(c, candidate);
		return true;
	};
	auto weight_of = [](const Candidate &candidate)
	{ return candidate.weight > 0 ? static_cast<uint64_t>(candidate.weight) : 0; };
	uint32_t count = 0, best = k;
	uint32_t best_rank = UINT32_MAX;
	uint64_t total = 0;
	for (uint32_t c = 0; c < k; ++c)
	{
		Candidate candidate;
		if (!within(c, candidate))
			continue;
		++count;
		total += weight_of(candidate);
		if (candidate.lag_rank < best_rank)
		{
			best_rank = candidate.lag_rank;
			best = c;
		}
	}
	if (count == 0)
		return std::nullopt;
	switch (request.policy)
	{
	case RR_POLICY_LEAST_LAG:
		return best;
	case RR_POLICY_ROUND_ROBIN:
	case RR_POLICY_WEIGHTED:
	{
		if (request.policy == RR_POLICY_WEIGHTED && total == 0)
			return std::nullopt;
		uint64_t target = request.policy == RR_POLICY_WEIGHTED ? scale_random(request.random, total)
		                                                       : ticket % count;
		uint64_t cumulative = 0;
		for (uint32_t c = 0; c < k; ++c)
		{
			Candidate candidate;
			if (!within(c, candidate))
				continue;
			cumulative += request.policy == RR_POLICY_WEIGHTED ? weight_of(candidate) : 1;
			if (target < cumulative)
				return c;
		}
		/* Only if the words changed between the passes: the read retries. */
		return std::nullopt;
	}
	}
	return std::nullopt;
}

} // namespace

rr_status pick_reader(rr_shared_table &table, const rr_pick_request &request,
                      rr_pick_result &result, rr_error *error)
{
	result.found = false;
	result.cause = RR_CAUSE_NO_DATA;
	result.name[0] = '\0';
	result.data_age_us = RR_NO_DURATION;
	if (!policy_known(request))
	{
		int raw;
		std::memcpy(&raw, &request.policy, sizeof raw);
		return fail(error, RR_ERR_INVALID,
		            "unknown routing policy %d: allowed are weighted, round_robin and least_lag",
		            raw);
	}
	if (!table_is_formatted(&table))
		return fail(error, RR_ERR_NOT_READY, "the shared table was not initialised");

	/* Taken before the read, so that a retried read uses the same ticket. */
	uint64_t ticket = 0;
	if (request.policy == RR_POLICY_ROUND_ROBIN)
		ticket = table.round_robin.fetch_add(1, std::memory_order_relaxed);

	rr_unroutable_cause cause = RR_CAUSE_NO_DATA;
	int64_t data_age_us = RR_NO_DURATION;
	std::optional<uint32_t> chosen;
	char name[RR_NAME_LEN];

	TableReader reader(table);
	bool consistent = reader.read_consistent(
	    [&]
	    {
		    chosen.reset();
		    rr_table_header header = reader.header();
		    cause = judge_table(header, request.now, request.stale_after_us, data_age_us);
		    if (cause != RR_CAUSE_NONE)
			    return;
		    chosen = choose_candidate(reader, reader.candidate_count(), request, ticket);
		    if (chosen)
			    reader.candidate_name(*chosen, name);
	    });
	if (!consistent)
	{
		/* Fail safe: a table we cannot read is a table we do not trust. */
		result.cause = RR_CAUSE_STALE;
		return RR_OK;
	}

	result.data_age_us = data_age_us;
	if (cause != RR_CAUSE_NONE)
	{
		result.cause = cause;
		return RR_OK;
	}
	if (!chosen)
	{
		result.cause = RR_CAUSE_NO_CANDIDATE;
		return RR_OK;
	}
	result.found = true;
	result.cause = RR_CAUSE_NONE;
	copy_field(result.name, name);
	return RR_OK;
}

rr_status list_readers(const rr_shared_table &table, const rr_pick_request &request,
                       rr_node_entry *entries, uint32_t max_entries, uint32_t &n_entries,
                       rr_unroutable_cause &cause, rr_error *error)
{
	n_entries = 0;
	cause = RR_CAUSE_NO_DATA;
	if (entries == nullptr && max_entries > 0)
		return fail(error, RR_ERR_NULL, "entries must not be NULL");
	if (!table_is_formatted(&table))
		return fail(error, RR_ERR_NOT_READY, "the shared table was not initialised");

	uint32_t copied = 0, qualified = 0;
	QualifiedVector scratch;
	boost::container::small_vector<uint32_t, kInlineCandidates> indexes;
	TableReader reader(table);
	bool consistent = reader.read_consistent(
	    [&]
	    {
		    copied = qualified = 0;
		    int64_t data_age_us;
		    cause = judge_table(reader.header(), request.now, request.stale_after_us, data_age_us);
		    if (cause != RR_CAUSE_NONE)
			    return;
		    uint32_t k = meeting_min_lsn(reader, reader.candidate_count(), request.min_lsn);
		    filter_by_lag(reader, k, request, scratch);
		    indexes.clear();
		    for (const Qualified &q : scratch)
			    if (q.entry_index < table.capacity) /* a torn read may say anything */
				    indexes.push_back(q.entry_index);
		    /* Table order, as replroute_nodes lists them. */
		    std::sort(indexes.begin(), indexes.end());
		    qualified = static_cast<uint32_t>(indexes.size());
		    for (uint32_t i : indexes)
			    if (copied < max_entries)
				    reader.entry(i, entries[copied++]);
	    });
	if (!consistent)
	{
		cause = RR_CAUSE_STALE;
		return RR_OK;
	}
	n_entries = copied;
	if (cause == RR_CAUSE_NONE && qualified == 0)
		cause = RR_CAUSE_NO_CANDIDATE;
	if (qualified > copied)
		return fail(error, RR_ERR_CAPACITY,
		            "%u nodes qualify but the buffer holds %u; size it to the table's capacity",
		            qualified, max_entries);
	return RR_OK;
}

} // namespace replroute
