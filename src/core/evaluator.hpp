/*
 * evaluator.hpp -- the worker's side: one round of observations in, one
 * publication out, with the memory that spans rounds:
 *   - per node (by name): its state and since when, the slot it used, and
 *     what the stability rules remember (stability.hpp);
 *   - the primary's LSN history, for the time-lag estimate.
 * Memory of a node that disappears from a round is forgotten, so a node that
 * is removed and added again starts afresh.
 *
 * Events (replroute.h, rr_event): every round collects, in this order, the
 * worker's own (worker_started on the first round, then a role change), each
 * registered node whose state differs from its memory (in output order; from
 * "" when it had none), and each node that left the registry (to "removed",
 * by name).  Walsenders that match no node are shown in the table but make no
 * events: they share names with nodes (a standby streams before it is
 * registered), and two chains under one name would read as one broken chain.  They are
 * appended to the event log after the table is published, so a client that
 * hears of an event finds the new state in the table.
 *
 * Rounds that change nothing cost little (1,024 registered nodes, most of them
 * down, are judged every few milliseconds): a registered node whose inputs
 * are byte for byte those of the previous round at the same position -- its
 * registry row, its slot, its probe's observation, no walsender then or now,
 * and the same thresholds and server role -- keeps its previous entry (only
 * observed_at moves) without being judged again: its verdict is a function
 * of exactly those inputs (health.hpp; with no walsender there is no lag, no
 * stall clock, no recovery hold).  Such entries are also the ones the
 * publication need not rewrite (table_publish's unchanged).  A node with a
 * walsender is judged every round.
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
#include "stability.hpp"

#include <algorithm>
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
	 * call.  An entry kept unchanged keeps the observed_at of the round that
	 * judged it (the table shows every entry at its publication's time).
	 * Throws std::bad_alloc. */
	std::span<const rr_node_entry> evaluate(const rr_round_input &input,
	                                        const rr_thresholds &thresholds);

	rr_status evaluate_and_publish(const rr_round_input &input, const rr_thresholds &thresholds,
	                               rr_shared_table &table, rr_error *error);

	const LsnHistory &history() const noexcept { return history_; }
	/* The events of the last evaluate(), seq 0 (assigned when appended). */
	std::span<const rr_event> events() const noexcept { return events_; }

	void set_event_log(rr_event_log *log) noexcept { event_log_ = log; }
	/* Judge every row in every round (tests compare both ways). */
	void set_keep_unchanged(bool keep) noexcept { keep_unchanged_ = keep; }
	/* Rows the last evaluate() kept without judging them. */
	size_t rows_kept() const noexcept
	{
		return static_cast<size_t>(std::count(changed_.begin(), changed_.end(), 0));
	}
	/* Takes the states of a previous worker's publication as its memory. */
	rr_status adopt(const rr_shared_table &table, rr_error *error);

private:
	struct NodeMemory
	{
		rr_node_state state = RR_STATE_UNKNOWN;
		rr_timestamp since = RR_NO_TIME;
		std::string slot_name;
		StabilityMemory stability;
		uint64_t seen_in_round = 0;
	};

	/* What a registered node's previous round saw, by input position. */
	struct NodeInputs
	{
		/* What an unchanged round reads: these flags, then the probe's
		 * observation; the registry row and the slot are in RowInputs. */
		bool valid = false; /* the observations are the last round's */
		bool had_walsender = false;
		bool had_slot = false;
		bool had_probe = false;
		bool routable = false;                                /* the entry's, last round */
		uint8_t name_length = 0, application_name_length = 0; /* of the row's */
		size_t application_name_hash = 0;
		/* The row's memory, held (not forgotten) while the row is here;
		 * nullptr: none yet.  With the row, valid even when the rest is not. */
		NodeMemory *memory = nullptr;
		rr_probe_obs probe{};
	};
	struct RowInputs
	{
		rr_node_config config{};
		rr_slot_obs slot{};
	};

	NodeMemory &remember(bool registered, std::string_view name);
	void mark_seen(NodeMemory &memory) noexcept;
	bool inputs_unchanged(const NodeInputs &last, const RowInputs &row,
	                      const rr_walsender_obs *walsender, const rr_slot_obs *slot,
	                      const rr_probe_obs *probe) const noexcept;
	void keep_inputs(NodeInputs &last, RowInputs &row, const rr_walsender_obs *walsender,
	                 const rr_slot_obs *slot, const rr_probe_obs *probe) noexcept;
	std::string_view row_name(size_t i) const noexcept
	{
		return {last_rows_[i].config.name, last_inputs_[i].name_length};
	}
	std::string_view row_application_name(size_t i) const noexcept
	{
		return {last_rows_[i].config.application_name, last_inputs_[i].application_name_length};
	}
	void apply_memory(NodeMemory &memory, rr_node_entry &entry, rr_timestamp now);
	void forget_unseen(rr_timestamp now, bool registry_stable);
	void add_event(rr_timestamp now, std::string_view node, std::string_view from,
	               std::string_view to, std::string_view reason);
	void worker_events(const rr_round_input &input);

	uint64_t round_ = 0;
	LsnHistory history_;
	RoundIndex index_;
	std::unordered_map<std::string, NodeMemory> memory_;
	std::unordered_set<std::string_view> registered_apps_;
	size_t registered_apps_n_ = 0;
	std::vector<rr_node_entry> entries_;
	/* Per entry of the last evaluate(): 0 = as in the round before but for
	 * observed_at. */
	std::vector<uint8_t> changed_;
	std::vector<uint32_t> routable_; /* indexes of routable entries */
	uint64_t last_registry_version_ = 0;
	size_t last_n_rows_ = 0;
	bool keep_unchanged_ = true;
	std::vector<NodeInputs> last_inputs_; /* by row */
	std::vector<RowInputs> last_rows_;    /* by row */
	bool last_in_recovery_ = false;
	rr_thresholds last_thresholds_{};
	size_t seen_ = 0;                                          /* memories seen in this round */
	size_t unregistered_memories_ = 0, unregistered_seen_ = 0; /* "u:" ones */
	/* Every registered node's memory belongs to a row of last_inputs_ (not
	 * so after adopt(), which remembers nodes no row may have). */
	bool registered_held_by_rows_ = true;
	/* The last publication, so that the next may rewrite only what changed. */
	const rr_shared_table *published_to_ = nullptr;
	uint64_t published_round_ = 0; /* round_ when published */
	rr_table_header published_header_{};
	size_t n_registered_ = 0;
	std::string key_;
	std::vector<rr_event> events_;
	rr_event_log *event_log_ = nullptr;
	enum class Role
	{
		kNone,
		kPrimary,
		kStandby
	} role_ = Role::kNone;
};

} // namespace replroute

/* The boundary's opaque handle. */
struct rr_evaluator
{
	replroute::Evaluator impl;
};
