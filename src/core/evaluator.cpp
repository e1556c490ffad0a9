/*
 * evaluator.cpp -- join, evaluate and publish one round; see evaluator.hpp.
 */
#include "evaluator.hpp"

#include "errors.hpp"
#include "event_log.hpp"
#include "health.hpp"
#include "names.hpp"
#include "shared_table.hpp"
#include "text.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

namespace replroute
{

Evaluator::NodeMemory &Evaluator::remember(bool registered, std::string_view name)
{
	/* A walsender that matches no node may carry a registered node's name as
	 * its application_name; the prefix keeps their memories apart. */
	key_.assign(registered ? "n:" : "u:");
	key_.append(name);
	auto [it, inserted] = memory_.try_emplace(key_);
	NodeMemory &memory = it->second;
	if (!registered)
	{
		unregistered_memories_ += inserted;
		unregistered_seen_ += memory.seen_in_round != round_;
	}
	mark_seen(memory);
	return memory;
}

void Evaluator::mark_seen(NodeMemory &memory) noexcept
{
	if (memory.seen_in_round != round_)
	{
		memory.seen_in_round = round_;
		++seen_;
	}
}

namespace
{

/* Equal as the verdict reads them: text up to its NUL (or the field's end),
 * never the bytes after it, which a shim need not clear. */
template <size_t N>
bool same_text(const char (&a)[N], const char (&b)[N]) noexcept
{
	/* strncmp(a, b, N) == 0, a word at a time and inline: this runs for
	 * every registered node in every round. */
	static_assert(N % 8 == 0);
	constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
	for (size_t i = 0; i < N; i += 8)
	{
		uint64_t wa, wb;
		std::memcpy(&wa, a + i, 8);
		std::memcpy(&wb, b + i, 8);
		if (wa != wb)
		{
			for (size_t k = i; k < i + 8; ++k)
			{
				if (a[k] != b[k])
					return false;
				if (a[k] == '\0')
					return true;
			}
		}
		if (((wa - kOnes) & ~wa & kHighs) != 0)
			return true; /* equal so far, and a NUL in this word */
	}
	return true;
}

bool same_config(const rr_node_config &a, const rr_node_config &b) noexcept
{
	return a.port == b.port && a.weight == b.weight && a.drained == b.drained &&
	       same_text(a.name, b.name) && same_text(a.application_name, b.application_name) &&
	       same_text(a.host, b.host);
}

bool same_slot(const rr_slot_obs &a, const rr_slot_obs &b) noexcept
{
	return a.active == b.active && a.active_pid == b.active_pid && a.wal_status == b.wal_status &&
	       a.restart_lsn == b.restart_lsn && same_text(a.slot_name, b.slot_name);
}

bool same_probe(const rr_probe_obs &a, const rr_probe_obs &b) noexcept
{
	if (a.state != b.state || a.outcome != b.outcome || a.in_recovery != b.in_recovery ||
	    a.replay_lsn != b.replay_lsn || a.replay_lsn_fresh != b.replay_lsn_fresh ||
	    a.answered_at != b.answered_at)
		return false;
	/* The verdict reads the reason only of a failed probe. */
	if (a.outcome != RR_PROBE_FAILED)
		return true;
	return (a.reason_serial != 0 && a.reason_serial == b.reason_serial) ||
	       same_text(a.reason, b.reason);
}

} // namespace

bool Evaluator::inputs_unchanged(const NodeInputs &last, const RowInputs &row,
                                 const rr_walsender_obs *walsender, const rr_slot_obs *slot,
                                 const rr_probe_obs *probe) const noexcept
{
	if (!keep_unchanged_ || !last.valid || walsender != nullptr || last.had_walsender)
		return false;
	if ((slot != nullptr) != last.had_slot || (slot != nullptr && !same_slot(*slot, row.slot)))
		return false;
	if ((probe != nullptr) != last.had_probe ||
	    (probe != nullptr && !same_probe(*probe, last.probe)))
		return false;
	return true;
}

void Evaluator::keep_inputs(NodeInputs &last, RowInputs &row, const rr_walsender_obs *walsender,
                            const rr_slot_obs *slot, const rr_probe_obs *probe) noexcept
{
	last.had_walsender = walsender != nullptr;
	last.had_slot = slot != nullptr;
	if (slot != nullptr)
		std::memcpy(&row.slot, slot, sizeof *slot);
	last.had_probe = probe != nullptr;
	if (probe != nullptr)
		std::memcpy(&last.probe, probe, sizeof *probe);
	last.valid = true;
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

void Evaluator::forget_unseen(rr_timestamp now, bool registry_stable)
{
	/* With the registry as it was, every registered node's memory is held by
	 * a row (last_inputs_), so only walsenders without a node can have left.
	 * The common round: nobody did, and no memory is even touched. */
	if (registry_stable && registered_held_by_rows_ && unregistered_seen_ == unregistered_memories_)
		return;
	for (const NodeInputs &last : last_inputs_)
		mark_seen(*last.memory);
	registered_held_by_rows_ = true; /* the others go now */
	if (seen_ == memory_.size())
		return;
	std::vector<std::pair<std::string_view, const NodeMemory *>> gone;
	for (const auto &[key, memory] : memory_)
		if (memory.seen_in_round != round_ && memory.since != RR_NO_TIME && key.starts_with("n:"))
			gone.emplace_back(key, &memory);
	/* Map order is arbitrary; events must not depend on it. */
	std::sort(gone.begin(), gone.end());
	for (const auto &[key, memory] : gone)
		add_event(now, key.substr(2), state_name(memory->state), "removed", "no longer registered");
	std::erase_if(memory_,
	              [this](const auto &item)
	              {
		              if (item.second.seen_in_round == round_)
			              return false;
		              unregistered_memories_ -= item.first.starts_with("u:");
		              return true;
	              });
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
	registered_held_by_rows_ = false; /* until the next round forgets the rest */
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
	seen_ = 0;
	unregistered_seen_ = 0;
	index_.build(input);
	if (!input.in_recovery)
		history_.record(input.now, input.primary_flush_lsn);

	events_.clear();
	worker_events(input);
	n_registered_ = 0;

	/* The previous round's inputs stand for this one's only under the same
	 * role and thresholds; without a registry they all go (and with them the
	 * memories they point to). */
	size_t n_nodes = input.registry_available ? input.n_nodes : 0;
	if (last_in_recovery_ != input.in_recovery ||
	    std::memcmp(&last_thresholds_, &thresholds, sizeof thresholds) != 0)
		for (NodeInputs &last : last_inputs_)
			last.valid = false;
	last_in_recovery_ = input.in_recovery;
	last_thresholds_ = thresholds;
	last_inputs_.resize(n_nodes);
	last_rows_.resize(n_nodes);
	entries_.resize(n_nodes);
	changed_.assign(n_nodes, 1);

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

	bool registry_changed = false;
	/* The caller vouches for the rows (registry_version); a row without a
	 * memory is new at its position all the same. */
	bool rows_vouched_for = input.registry_version != 0 &&
	                        input.registry_version == last_registry_version_ &&
	                        last_n_rows_ == n_nodes;
	last_registry_version_ = input.registry_version;
	size_t rows_before = last_n_rows_;
	last_n_rows_ = n_nodes;
	routable_.clear();
	for (size_t i = 0; i < n_nodes; ++i)
	{
		const rr_node_config &node = input.nodes[i];
		NodeInputs &last = last_inputs_[i];
		RowInputs &row = last_rows_[i];
		if (last.memory == nullptr || !(rows_vouched_for || same_config(row.config, node)))
		{
			registry_changed = true;
			last.valid = false;
			std::memcpy(&row.config, &node, sizeof node);
			last.name_length = static_cast<uint8_t>(field_view(row.config.name).size());
			last.application_name_length =
			    static_cast<uint8_t>(field_view(row.config.application_name).size());
			last.application_name_hash = RoundIndex::name_hash(row_application_name(i));
			last.memory = &remember(true, row_name(i));
		}
		const rr_walsender_obs *walsender =
		    index_.walsender_for(row_application_name(i), last.application_name_hash);
		/* Without a walsender only a slot that no process holds can match,
		 * by name; usually there is none, and the memory is not touched. */
		const rr_slot_obs *slot =
		    walsender == nullptr && !index_.any_free_slot()
		        ? nullptr
		        : index_.slot_for(walsender, last.memory->slot_name, row_name(i));
		const rr_probe_obs *probe = input.probes != nullptr ? &input.probes[i] : nullptr;
		rr_node_entry &entry = entries_[i];
		if (inputs_unchanged(last, row, walsender, slot, probe))
		{
			changed_[i] = 0;
			if (last.routable)
				routable_.push_back(static_cast<uint32_t>(i));
			continue;
		}

		NodeMemory &memory = *last.memory;
		NodeObservation obs = base;
		obs.node = &node;
		obs.walsender = walsender;
		obs.slot = slot;
		obs.history_lag_us = history_lag(walsender);
		obs.pending_us = pending(walsender);
		obs.probe = probe;
		if (slot != nullptr)
			memory.slot_name.assign(field_view(slot->slot_name));
		/* On a standby nothing is judged: what follows a promotion is a
		 * fresh start, not a recovery to hold. */
		if (input.in_recovery)
			memory.stability = StabilityMemory{};
		obs.lag_latched = memory.stability.lag_latched;

		entry = evaluate_node(obs, thresholds);
		if (!input.in_recovery)
			apply_stability(memory.stability, entry, thresholds.recovery_hold_us, input.now);
		apply_memory(memory, entry, input.now);
		keep_inputs(last, row, walsender, slot, probe);
		last.routable = entry.routable;
		if (entry.routable)
			routable_.push_back(static_cast<uint32_t>(i));
	}
	n_registered_ = n_nodes;

	/* The application names of the registry, kept as views into last_inputs_
	 * (which holds the same rows): rebuilt only when the registry changed. */
	if (registry_changed || registered_apps_n_ != n_nodes)
	{
		registered_apps_n_ = n_nodes;
		registered_apps_.clear();
		for (size_t i = 0; i < n_nodes; ++i)
			registered_apps_.insert(row_application_name(i));
	}

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
		changed_.push_back(1);
		apply_memory(remember(false, field_view(ws.application_name)), entry, input.now);
		if (entry.routable)
			routable_.push_back(static_cast<uint32_t>(entries_.size() - 1));
	}

	forget_unseen(input.now, !registry_changed && n_nodes == rows_before);
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
	/* Only what changed needs rewriting if the table still holds exactly our
	 * previous publication (no reset, no other writer) of the round before. */
	rr_table_header current = table_last_header(table);
	bool incremental = published_to_ == &table && published_round_ + 1 == round_ &&
	                   current.rounds == published_header_.rounds &&
	                   current.published_at == published_header_.published_at &&
	                   current.n_entries == published_header_.n_entries &&
	                   (table.sequence.load(std::memory_order_relaxed) & 1) == 0;
	table_publish(table, header, entries,
	              incremental ? std::span<const uint8_t>(changed_) : std::span<const uint8_t>(),
	              &routable_);
	published_to_ = &table;
	published_round_ = round_;
	published_header_ = table_last_header(table);
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
