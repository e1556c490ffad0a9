/*
 * health.hpp -- the verdict on one node from one round's observation.
 *
 * Probes that are off, or have concluded nothing yet, leave the verdict to
 * the walsender data alone.
 *
 * A pure function of its inputs: the evaluator supplies what it remembers
 * (the LSN-history estimate) and keeps state_since itself.
 *
 * Precedence, first match wins (an operator's intent first, then what makes
 * a standby unusable, then what makes it merely behind):
 *   this server is a standby     -> unknown
 *   drained                      -> drained
 *   probe: answered, not in recovery -> not_in_recovery (maybe a split-brain
 *                                   primary: never route there)
 *   slot wal_status lost         -> slot_lost
 *   no walsender                 -> disconnected (a failed probe's reason
 *                                   added: the node is down either way)
 *   probe: last exchange failed  -> unreachable (a frozen standby's
 *                                   walsender lingers until wal_sender_timeout)
 *   walsender stopping           -> disconnected (it is going away)
 *   walsender startup/catchup/backup -> catchup
 *   streaming, WAL pending and no reply for stall_timeout -> stalled
 *   replay position not reported, or time lag unknown under a time bound
 *                                -> unknown
 *   past max_lag_bytes or max_replay_lag -> lagging; a node that was
 *     lagging stays lagging until it is at or below the leave bounds
 *     (lag_leave_fraction of each), so a lag that hovers around a bound
 *     does not flap
 *   otherwise                    -> healthy (slot unreserved: a warning only)
 * The recovery hold (healthy -> recovering for a while) needs memory of
 * earlier rounds and lives in stability.hpp.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

namespace replroute
{

struct NodeObservation
{
	const rr_node_config *node = nullptr;        /* nullptr: an unregistered walsender */
	const rr_walsender_obs *walsender = nullptr; /* nullptr: none */
	const rr_slot_obs *slot = nullptr;           /* nullptr: none */
	const rr_probe_obs *probe = nullptr;         /* nullptr: probes off */
	bool in_recovery = false;
	bool registry_available = true;
	rr_lsn primary_flush_lsn = 0;
	/* The LSN-history lower bound of the node's replay lag; RR_NO_DURATION
	 * when there is no history. */
	int64_t history_lag_us = RR_NO_DURATION;
	/* How long WAL past the standby's confirmed write position has existed
	 * on the primary (LSN history); RR_NO_DURATION when not known. */
	int64_t pending_us = RR_NO_DURATION;
	/* The node was lagging and has not yet come down to the leave bounds. */
	bool lag_latched = false;
	rr_timestamp now = RR_NO_TIME;
};

/* Fills every field of the entry but state_since (set to now). */
rr_node_entry evaluate_node(const NodeObservation &observation,
                            const rr_thresholds &thresholds) noexcept;

/* Primary flush LSN - replay LSN; 0 when replay is at or past it;
 * RR_NO_DURATION when either is unknown (0). */
int64_t lag_bytes_between(rr_lsn primary_flush_lsn, rr_lsn replay_lsn) noexcept;

/* A reported write/flush/replay lag made idle-aware: a position at or past
 * sent_lsn has nothing in flight, so its lag is 0 even if reported NULL. */
int64_t idle_aware_lag(int64_t reported_us, rr_lsn position, rr_lsn sent_lsn) noexcept;

/* The time lag routing uses: 0 without pending WAL, else the larger of the
 * reported replay lag and the LSN-history estimate. */
int64_t effective_lag_us(rr_lsn primary_flush_lsn, rr_lsn replay_lsn, int64_t reported_replay_us,
                         int64_t history_lag_us) noexcept;

/* The bound below which a lagging node leaves `lagging`: fraction of bound,
 * rounded down; RR_NO_LIMIT stays RR_NO_LIMIT; a fraction outside 0..1 is
 * clamped. */
int64_t leave_bound(int64_t bound, double fraction) noexcept;

} // namespace replroute
