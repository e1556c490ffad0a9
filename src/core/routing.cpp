/*
 * routing.cpp -- qualification, policies, and the two reader entry points.
 */
#include "routing.hpp"

#include "errors.hpp"
#include "text.hpp"

#include <boost/container/small_vector.hpp>

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

namespace
{

/* Unknown lag sorts after every known lag. */
int64_t lag_key(int64_t lag)
{
	return lag < 0 ? std::numeric_limits<int64_t>::max() : lag;
}

bool less_lagging(const RouteRecord &a, const RouteRecord &b)
{
	if (lag_key(a.lag_bytes) != lag_key(b.lag_bytes))
		return lag_key(a.lag_bytes) < lag_key(b.lag_bytes);
	if (lag_key(a.lag_us) != lag_key(b.lag_us))
		return lag_key(a.lag_us) < lag_key(b.lag_us);
	return std::strncmp(a.name, b.name, RR_NAME_LEN) < 0;
}

/* Weighted choice: random scaled onto [0, total) by a 64x64->128 multiply
 * (the bias is at most total / 2^64), then the candidate whose cumulative
 * weight range holds it. */
std::optional<size_t> choose_weighted(std::span<const RouteRecord> candidates, uint64_t random)
{
	uint64_t total = 0;
	for (const RouteRecord &c : candidates)
		total += c.weight > 0 ? static_cast<uint64_t>(c.weight) : 0;
	if (total == 0)
		return std::nullopt;
	uint64_t target = static_cast<uint64_t>((static_cast<unsigned __int128>(random) * total) >> 64);
	uint64_t cumulative = 0;
	for (size_t i = 0; i < candidates.size(); ++i)
	{
		if (candidates[i].weight <= 0)
			continue;
		cumulative += static_cast<uint64_t>(candidates[i].weight);
		if (target < cumulative)
			return i;
	}
	return std::nullopt; /* unreachable: target < total */
}

} // namespace

std::optional<size_t> choose(std::span<const RouteRecord> candidates, rr_policy policy,
                             uint64_t random, uint64_t ticket) noexcept
{
	if (candidates.empty())
		return std::nullopt;
	switch (policy)
	{
	case RR_POLICY_WEIGHTED:
		return choose_weighted(candidates, random);
	case RR_POLICY_ROUND_ROBIN:
		return static_cast<size_t>(ticket % candidates.size());
	case RR_POLICY_LEAST_LAG:
	{
		size_t best = 0;
		for (size_t i = 1; i < candidates.size(); ++i)
			if (less_lagging(candidates[i], candidates[best]))
				best = i;
		return best;
	}
	}
	return std::nullopt;
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

uint32_t entries_in(const rr_table_header &header, const rr_shared_table &table)
{
	/* A header read mid-publication may hold anything; never index past the
	 * table. */
	return header.n_entries < table.capacity ? header.n_entries : table.capacity;
}

/* One pass of a consistent read, shared by pick and list: judges the table,
 * then calls visit(index, metrics) for every entry that qualifies under the
 * request -- checked on the compact record, so that callers copy only what
 * qualifies.  Returns the table's verdict (RR_CAUSE_NONE: fresh, usable). */
template <typename Visit>
rr_unroutable_cause visit_qualifying(TableReader &reader, const rr_shared_table &table,
                                     const rr_pick_request &request, int64_t &data_age_us,
                                     Visit &&visit)
{
	rr_table_header header = reader.header();
	rr_unroutable_cause cause =
	    judge_table(header, request.now, request.stale_after_us, data_age_us);
	if (cause != RR_CAUSE_NONE)
		return cause;
	uint32_t n = entries_in(header, table);
	for (uint32_t i = 0; i < n; ++i)
	{
		RouteRecord record;
		reader.route_metrics(i, record);
		if (qualifies(record.routable != 0, record.lag_bytes, record.lag_us,
		              record.known_replay_lsn, request))
			visit(i, record);
	}
	return RR_CAUSE_NONE;
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

	boost::container::small_vector<RouteRecord, kInlineCandidates> candidates;
	rr_unroutable_cause cause = RR_CAUSE_NO_DATA;
	int64_t data_age_us = RR_NO_DURATION;

	TableReader reader(table);
	bool consistent = reader.read_consistent(
	    [&]
	    {
		    candidates.clear();
		    cause = visit_qualifying(reader, table, request, data_age_us,
		                             [&](uint32_t i, RouteRecord &record)
		                             {
			                             reader.route_name(i, record);
			                             candidates.push_back(record);
		                             });
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
	uint64_t ticket = 0;
	if (request.policy == RR_POLICY_ROUND_ROBIN && !candidates.empty())
		ticket = table.round_robin.fetch_add(1, std::memory_order_relaxed);
	std::optional<size_t> chosen =
	    choose(std::span<const RouteRecord>(candidates.data(), candidates.size()), request.policy,
	           request.random, ticket);
	if (!chosen)
	{
		result.cause = RR_CAUSE_NO_CANDIDATE;
		return RR_OK;
	}
	result.found = true;
	result.cause = RR_CAUSE_NONE;
	copy_field(result.name, candidates[*chosen].name);
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
	TableReader reader(table);
	bool consistent = reader.read_consistent(
	    [&]
	    {
		    copied = qualified = 0;
		    int64_t data_age_us;
		    cause = visit_qualifying(reader, table, request, data_age_us,
		                             [&](uint32_t i, const RouteRecord &)
		                             {
			                             ++qualified;
			                             if (copied < max_entries)
				                             reader.entry(i, entries[copied++]);
		                             });
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
