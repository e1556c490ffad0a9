/*
 * stability.hpp -- what a node's verdict owes to its past rounds.
 *
 * evaluate_node() judges one round; these rules keep a node from flapping:
 *  - lag latch: a node judged lagging stays latched (evaluate_node then uses
 *    the leave bounds) until it is judged healthy, i.e. at or below them.
 *    Other states in between (a reconnect, a stall) keep the latch, so a
 *    lagging node that blips through `catchup` still has to come down.
 *  - recovery hold: a node that was routable, went bad and is healthy again
 *    is shown as `recovering` until it has been healthy for recovery_hold.
 *    Going bad again restarts the hold from zero.  A node never routable in
 *    this memory's life (worker start, a new registration, the first rounds
 *    after a promotion) is not held: it has not flapped, and a restarted
 *    primary must route again at once.
 *
 * "Bad" is every state that says the standby is unfit: unknown (for that
 * node), lagging, catchup, disconnected, stalled, unreachable,
 * not_in_recovery, slot_lost.  drained is an operator's act, not a fault:
 * draining does not start a hold, and undraining a healthy node routes it at
 * once (a hold already running continues across a drain).
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

namespace replroute
{

struct StabilityMemory
{
	bool lag_latched = false;
	bool was_routable = false;                  /* healthy in some earlier round */
	bool hold_pending = false;                  /* went bad after that, not yet held */
	rr_node_state bad_state = RR_STATE_UNKNOWN; /* the last bad state */
	rr_timestamp healthy_since = RR_NO_TIME;    /* while hold_pending */
};

bool is_bad_state(rr_node_state state) noexcept;

/* Applies the recovery hold to a registered node's fresh verdict and updates
 * memory (both rules above).  entry.state may become RR_STATE_RECOVERING, with
 * its reason prefixed and routable cleared. */
void apply_stability(StabilityMemory &memory, rr_node_entry &entry, int64_t recovery_hold_us,
                     rr_timestamp now) noexcept;

} // namespace replroute
