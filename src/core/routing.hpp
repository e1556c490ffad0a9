/*
 * routing.hpp -- what a backend does with the table: judge it (published?
 * fresh? a primary?), qualify its nodes against the per-call bounds, choose.
 *
 * pick_reader runs in every backend for every routed read.  It reads only
 * the candidates the worker prepared (shared_table.hpp): without per-call lag
 * bounds a pick is a few binary searches over them, whatever the number of
 * registered nodes; with lag bounds it filters the candidates that meet
 * min_lsn in two passes (count, then find), allocating nothing.
 * list_readers allocates nothing for up to kInlineCandidates qualifying ones.
 * It copies one name, and touches the shared round-robin counter only under
 * that policy.  Round robin and weighted choice go through the candidates in
 * their published order (newest replay position first).
 *
 * Bounds: a negative max_lag_bytes / max_lag_us means no bound (RR_NO_LIMIT);
 * a node whose lag is unknown fails any bound that is set.  min_lsn = 0 means
 * no bound; otherwise known_replay_lsn must be known and >= min_lsn.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

#include "shared_table.hpp"

#include <cstdint>
#include <optional>
#include <span>

namespace replroute
{

inline constexpr size_t kInlineCandidates = 16;

bool qualifies(bool routable, int64_t lag_bytes, int64_t lag_us, rr_lsn known_replay_lsn,
               const rr_pick_request &request) noexcept;

/* The table-level verdict: NO_DATA, STALE, NOT_PRIMARY or NONE (go on and
 * look at the nodes); also rr_table_freshness().  A negative stale_after_us
 * switches staleness off; an unknown now (RR_NO_TIME) is stale.  data_age_us: now - published_at,
 * at least 0 (a backend may read its clock just before the worker publishes), or RR_NO_DURATION. */
rr_unroutable_cause judge_table(const rr_table_header &header, rr_timestamp now,
                                int64_t stale_after_us, int64_t &data_age_us) noexcept;

/* random scaled onto [0, total): a 64x64->128 multiply, the bias is at most
 * total / 2^64. */
uint64_t scale_random(uint64_t random, uint64_t total) noexcept;

/* The weighted choice over cumulative weights (non-decreasing): the first i
 * whose cumulative weight exceeds random scaled onto [0, last).  cumulative(i)
 * gives the i-th of n; nullopt when n is 0 or the total weight is 0. */
template <class Cumulative>
std::optional<uint32_t> choose_by_cumulative_weight(uint32_t n, uint64_t random,
                                                    Cumulative &&cumulative)
{
	if (n == 0)
		return std::nullopt;
	uint64_t total = cumulative(n - 1);
	if (total == 0)
		return std::nullopt;
	uint64_t target = scale_random(random, total);
	/* The answer is in [base, base + len); halving without a branch on the
	 * (random) comparison, which a predictor cannot learn. */
	uint32_t base = 0, len = n;
	while (len > 1)
	{
		uint32_t half = len / 2;
		base += cumulative(base + half - 1) <= target ? half : 0;
		len -= half;
	}
	return base;
}

rr_status pick_reader(rr_shared_table &table, const rr_pick_request &request,
                      rr_pick_result &result, rr_error *error);

rr_status list_readers(const rr_shared_table &table, const rr_pick_request &request,
                       rr_node_entry *entries, uint32_t max_entries, uint32_t &n_entries,
                       rr_unroutable_cause &cause, rr_error *error);

} // namespace replroute
