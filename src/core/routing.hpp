/*
 * routing.hpp -- what a backend does with the table: judge it (published?
 * fresh? a primary?), qualify its nodes against the per-call bounds, choose.
 *
 * pick_reader runs in every backend for every routed read, so it allocates
 * nothing for up to kInlineCandidates qualifying nodes, copies only the
 * compact RouteRecords, and touches the shared round-robin counter only
 * under that policy.
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

/* Index into candidates of the chosen one; nullopt when empty or policy is
 * unknown.  random feeds the weighted policy, ticket the round-robin one. */
std::optional<size_t> choose(std::span<const RouteRecord> candidates, rr_policy policy,
                             uint64_t random, uint64_t ticket) noexcept;

rr_status pick_reader(rr_shared_table &table, const rr_pick_request &request,
                      rr_pick_result &result, rr_error *error);

rr_status list_readers(const rr_shared_table &table, const rr_pick_request &request,
                       rr_node_entry *entries, uint32_t max_entries, uint32_t &n_entries,
                       rr_unroutable_cause &cause, rr_error *error);

} // namespace replroute
