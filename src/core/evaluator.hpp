/*
 * evaluator.hpp -- the worker's side: one round of observations in, one
 * publication out, with the memory that spans rounds:
 *   - per node (by name): its state and since when, and the slot it used;
 *   - the primary's LSN history, for the time-lag estimate.
 * Memory of a node that disappears from a round is forgotten, so a node that
 * is removed and added again starts afresh.
 *
 * Output order: registered nodes in input order, then walsenders that match no
 * node in input order.  When that exceeds the table, the tail is dropped --
 * registered nodes go first -- and RR_ERR_CAPACITY is returned after the
 * publication.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

#include "join.hpp"
#include "lsn_history.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace replroute
{

class Evaluator
{
public:
	/* Evaluates a round without publishing it; the span lives until the next
	 * call.  Throws std::bad_alloc. */
	std::span<const rr_node_entry> evaluate(const rr_round_input &input,
	                                        const rr_thresholds &thresholds);

	rr_status evaluate_and_publish(const rr_round_input &input, const rr_thresholds &thresholds,
	                               rr_shared_table &table, rr_error *error);

	const LsnHistory &history() const noexcept { return history_; }

private:
	struct NodeMemory
	{
		rr_node_state state = RR_STATE_UNKNOWN;
		rr_timestamp since = RR_NO_TIME;
		std::string slot_name;
		uint64_t seen_in_round = 0;
	};

	NodeMemory &remember(bool registered, std::string_view name);
	void apply_memory(NodeMemory &memory, rr_node_entry &entry, rr_timestamp now);
	void forget_unseen();

	uint64_t round_ = 0;
	LsnHistory history_;
	RoundIndex index_;
	std::unordered_map<std::string, NodeMemory> memory_;
	std::unordered_set<std::string_view> registered_apps_;
	std::vector<rr_node_entry> entries_;
	size_t n_registered_ = 0;
	std::string key_;
};

} // namespace replroute

/* The boundary's opaque handle. */
struct rr_evaluator
{
	replroute::Evaluator impl;
};
