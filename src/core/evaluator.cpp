/*
 * evaluator.cpp -- join, evaluate and publish one round; see evaluator.hpp.
 */
#include "evaluator.hpp"

#include "errors.hpp"
#include "event_log.hpp"
#include "names.hpp"
#include "health.hpp"
#include "shared_table.hpp"
#include "text.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace replroute
{

Evaluator::NodeMemory &Evaluator::remember(bool registered, std::string_view name)
{
	/* A walsender that matches no node may carry a registered node's name as
	 * its application_name; the prefix keeps their memories apart. */
	key_.assign(registered ? "n:" : "u:");
	key_.append(name);
	NodeMemory &memory = memory_[key_];
	memory.seen_in_round = round_;
	return memory;
}

void Evaluator::add_event(rr_timestamp now, std::string_view node, std::string_view from,
                          std::string_view to, std::string_view reason)
{
	rr_event &event = events_.emplace_back();
	event = rr_event{};
	event.at = now;
	copy_text(event.node, sizeof(event.node), node.data(), node.size());
	copy_text(event.from_state, sizeof(event.from_state), from.data(), from.size());
	copy_text(event.to_state, sizeof(event.to_state), to.data(), to.size());
	copy_text(event.reason, sizeof(event.reason), reason.data(), reason.size());
}

void Evaluator::apply_memory(NodeMemory &memory, rr_node_entry &entry, rr_timestamp now)
{
	if (memory.since == RR_NO_TIME || memory.state != entry.state)
	{
		if (entry.registered)
				add_event(now, field_view(entry.name),
			          memory.since == RR_NO_TIME ? "" : state_name(memory.state),
			          state_name(entry.state), field_view(entry.reason));
		memory.state = entry.state;
		memory.since = now;
	}
	entry.state_since = memory.since;
}

void Evaluator::forget_unseen(rr_timestamp now)
{
	std::vector<std::pair<std::string_view, const NodeMemory *>> gone;
	for (const auto &[key, memory] : memory_)
		if (memory.seen_in_round != round_ && memory.since != RR_NO_TIME &&
		    key.starts_with("n:"))
			gone.emplace_back(key, &memory);
	/* Map order is arbitrary; events must not depend on it. */
	std::sort(gone.begin(), gone.end());
	for (const auto &[key, memory] : gone)
		add_event(now, key.substr(2), state_name(memory->state), "removed",
		          "no longer registered");
	std::erase_if(memory_,
	              [this](const auto &item) { return item.second.seen_in_round != round_; });
}

void Evaluator::worker_events(const rr_round_input &input)
{
	Role role = input.in_recovery ? Role::kStandby : Role::kPrimary;
	const char *role_word = input.in_recovery ? "standby" : "primary";
	char reason[RR_REASON_LEN];
	if (role_ == Role::kNone)
	{
		std::snprintf(reason, sizeof(reason), "worker pid %d started on a %s",
		              static_cast<int>(input.worker_pid), role_word);
		add_event(input.now, "", "", "worker_started", reason);
	}
	else if (role_ != role)
		add_event(input.now, "", role_ == Role::kStandby ? "standby" : "primary", role_word,
		          input.in_recovery ? "this server is in recovery: it became a standby"
		                            : "this server left recovery: it was promoted");
	role_ = role;
}

rr_status Evaluator::adopt(const rr_shared_table &table, rr_error *error)
{
	TableReader reader(table);
	rr_table_header header{};
	std::vector<rr_node_entry> entries(table.capacity);
	uint32_t n = 0;
	if (!reader.read_consistent(
	        [&]
	        {
		        header = reader.header();
		        n = std::min(header.n_entries, table.capacity);
		        for (uint32_t i = 0; i < n; ++i)
			        reader.entry(i, entries[i]);
	        }))
		return fail(error, RR_ERR_INTERNAL,
		            "the shared table stayed busy; its writer may have died mid-publication");
	for (uint32_t i = 0; i < n; ++i)
	{
		NodeMemory &memory = remember(entries[i].registered, field_view(entries[i].name));
		memory.state = entries[i].state;
		memory.since = entries[i].state_since;
		memory.slot_name.assign(field_view(entries[i].slot_name));
	}
	return RR_OK;
}

std::span<const rr_node_entry> Evaluator::evaluate(const rr_round_input &input,
                                                   const rr_thresholds &thresholds)
{
	++round_;
	index_.build(input);
	if (!input.in_recovery)
		history_.record(input.now, input.primary_flush_lsn);

	entries_.clear();
	events_.clear();
	worker_events(input);
	registered_apps_.clear();
	n_registered_ = 0;

	NodeObservation base;
	base.in_recovery = input.in_recovery;
	base.registry_available = input.registry_available;
	base.primary_flush_lsn = input.in_recovery ? 0 : input.primary_flush_lsn;
	base.now = input.now;

	auto history_lag = [&](const rr_walsender_obs *ws) -> int64_t
	{
		if (ws == nullptr || ws->replay_lsn == 0 || history_.size() == 0)
			return RR_NO_DURATION;
		return history_.lag_us(ws->replay_lsn, input.now);
	};
	/* WAL the standby has not even confirmed writing: the stall clock. */
	auto pending = [&](const rr_walsender_obs *ws) -> int64_t
	{
		if (ws == nullptr || ws->write_lsn == 0 || history_.size() == 0)
			return RR_NO_DURATION;
		return history_.lag_us(ws->write_lsn, input.now);
	};

	if (input.registry_available)
	{
		for (size_t i = 0; i < input.n_nodes; ++i)
		{
			const rr_node_config &node = input.nodes[i];
			registered_apps_.insert(field_view(node.application_name));
			NodeMemory &memory = remember(true, field_view(node.name));

			NodeObservation obs = base;
			obs.node = &node;
			obs.walsender = index_.walsender_for(field_view(node.application_name));
			obs.slot = index_.slot_for(obs.walsender, memory.slot_name, field_view(node.name));
			obs.history_lag_us = history_lag(obs.walsender);
			obs.pending_us = pending(obs.walsender);
			obs.probe = input.probes != nullptr ? &input.probes[i] : nullptr;
			if (obs.slot != nullptr)
				memory.slot_name.assign(field_view(obs.slot->slot_name));
			/* On a standby nothing is judged: what follows a promotion is a
			 * fresh start, not a recovery to hold. */
			if (input.in_recovery)
				memory.stability = StabilityMemory{};
			obs.lag_latched = memory.stability.lag_latched;

			rr_node_entry &entry = entries_.emplace_back(evaluate_node(obs, thresholds));
			if (!input.in_recovery)
				apply_stability(memory.stability, entry, thresholds.recovery_hold_us, input.now);
			apply_memory(memory, entry, input.now);
		}
	}
	n_registered_ = entries_.size();

	for (size_t i = 0; i < input.n_walsenders; ++i)
	{
		const rr_walsender_obs &ws = input.walsenders[i];
		if (registered_apps_.contains(field_view(ws.application_name)))
			continue;
		NodeObservation obs = base;
		obs.walsender = &ws;
		obs.slot = index_.slot_for(&ws, {}, {});
		obs.history_lag_us = history_lag(&ws);
		obs.pending_us = pending(&ws);
		rr_node_entry &entry = entries_.emplace_back(evaluate_node(obs, thresholds));
		apply_memory(remember(false, field_view(ws.application_name)), entry, input.now);
	}

	forget_unseen(input.now);
	return entries_;
}

rr_status Evaluator::evaluate_and_publish(const rr_round_input &input,
                                          const rr_thresholds &thresholds, rr_shared_table &table,
                                          rr_error *error)
{
	if ((input.n_nodes > 0 && input.nodes == nullptr) ||
	    (input.n_walsenders > 0 && input.walsenders == nullptr) ||
	    (input.n_slots > 0 && input.slots == nullptr))
		return fail(error, RR_ERR_NULL, "round input has a NULL array with a nonzero count");
	if (input.now == RR_NO_TIME)
		return fail(error, RR_ERR_INVALID, "round input has no observation time (now)");
	if (!table_is_formatted(&table))
		return fail(error, RR_ERR_NOT_READY, "the shared table was not initialised");

	if (input.n_nodes > 0 && input.probes != nullptr && input.nodes == nullptr)
		return fail(error, RR_ERR_NULL, "round input has probes without nodes");
	std::span<const rr_node_entry> entries = evaluate(input, thresholds);

	rr_table_header header = table_last_header(table);
	header.rounds += 1;
	header.worker_pid = input.worker_pid;
	header.in_recovery = input.in_recovery;
	header.registry_available = input.registry_available;
	header.round_started_at = input.started_at;
	header.published_at = input.now;
	header.round_duration_us =
	    input.started_at == RR_NO_TIME ? RR_NO_DURATION : input.now - input.started_at;
	header.primary_flush_lsn = input.primary_flush_lsn;
	table_publish(table, header, entries);
	if (event_log_ != nullptr && event_log_is_formatted(event_log_))
		for (const rr_event &event : events_)
			event_log_append(*event_log_, event);

	if (entries.size() > table.capacity)
	{
		size_t dropped = entries.size() - table.capacity;
		return fail(error, RR_ERR_CAPACITY,
		            "%zu nodes and %zu unmatched walsenders do not fit in the shared table "
		            "(capacity %u); %zu %s not published: raise replroute.max_nodes",
		            n_registered_, entries.size() - n_registered_, table.capacity, dropped,
		            dropped == 1 ? "entry was" : "entries were");
	}
	return RR_OK;
}

} // namespace replroute
