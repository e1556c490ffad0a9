/*
 * join.cpp -- indexes of one round's walsenders and slots; rules in join.hpp.
 */
#include "join.hpp"

#include "text.hpp"

namespace replroute
{

bool walsender_preferred(const rr_walsender_obs &a, const rr_walsender_obs &b) noexcept
{
	bool a_streaming = a.state == RR_WS_STREAMING, b_streaming = b.state == RR_WS_STREAMING;
	if (a_streaming != b_streaming)
		return a_streaming;
	if (a.replay_lsn != b.replay_lsn)
		return a.replay_lsn > b.replay_lsn;
	return a.pid < b.pid;
}

void RoundIndex::build(const rr_round_input &input)
{
	walsender_by_app_.clear();
	slot_by_pid_.clear();
	slot_by_name_.clear();
	for (size_t i = 0; i < input.n_walsenders; ++i)
	{
		const rr_walsender_obs &ws = input.walsenders[i];
		auto [it, inserted] = walsender_by_app_.try_emplace(field_view(ws.application_name), &ws);
		if (!inserted && walsender_preferred(ws, *it->second))
			it->second = &ws;
	}
	for (size_t i = 0; i < input.n_slots; ++i)
	{
		const rr_slot_obs &slot = input.slots[i];
		if (slot.active_pid != 0)
			slot_by_pid_.try_emplace(slot.active_pid, &slot);
		slot_by_name_.try_emplace(field_view(slot.slot_name), &slot);
	}
}

const rr_walsender_obs *RoundIndex::walsender_for(std::string_view application_name) const
{
	auto it = walsender_by_app_.find(application_name);
	return it == walsender_by_app_.end() ? nullptr : it->second;
}

const rr_slot_obs *RoundIndex::free_slot_named(std::string_view name) const
{
	if (name.empty())
		return nullptr;
	auto it = slot_by_name_.find(name);
	if (it == slot_by_name_.end() || it->second->active_pid != 0)
		return nullptr;
	return it->second;
}

const rr_slot_obs *RoundIndex::slot_for(const rr_walsender_obs *walsender,
                                        std::string_view remembered,
                                        std::string_view node_name) const
{
	if (walsender != nullptr && walsender->pid != 0)
	{
		auto it = slot_by_pid_.find(walsender->pid);
		if (it != slot_by_pid_.end())
			return it->second;
	}
	if (const rr_slot_obs *slot = free_slot_named(remembered))
		return slot;
	return free_slot_named(node_name);
}

} // namespace replroute
