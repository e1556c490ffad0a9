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
	walsenders_ = std::span<const rr_walsender_obs>(input.walsenders, input.n_walsenders);
	slots_ = std::span<const rr_slot_obs>(input.slots, input.n_slots);
	walsender_by_app_.clear();
	slot_by_pid_.clear();
	slot_by_name_.clear();
	walsender_apps_.clear();
	walsender_app_hashes_.clear();
	slot_names_.clear();
	free_slots_ = 0;
	for (const rr_slot_obs &slot : slots_)
		free_slots_ += slot.active_pid == 0;
	if (walsenders_.size() <= kLinearLimit)
		for (const rr_walsender_obs &ws : walsenders_)
		{
			walsender_apps_.push_back(field_view(ws.application_name));
			walsender_app_hashes_.push_back(name_hash(walsender_apps_.back()));
		}
	if (slots_.size() <= kLinearLimit)
		for (const rr_slot_obs &slot : slots_)
			slot_names_.push_back(field_view(slot.slot_name));
	if (walsenders_.size() > kLinearLimit)
		for (const rr_walsender_obs &ws : walsenders_)
		{
			auto [it, inserted] =
			    walsender_by_app_.try_emplace(field_view(ws.application_name), &ws);
			if (!inserted && walsender_preferred(ws, *it->second))
				it->second = &ws;
		}
	if (slots_.size() > kLinearLimit)
		for (const rr_slot_obs &slot : slots_)
		{
			if (slot.active_pid != 0)
				slot_by_pid_.try_emplace(slot.active_pid, &slot);
			slot_by_name_.try_emplace(field_view(slot.slot_name), &slot);
		}
}

size_t RoundIndex::name_hash(std::string_view name) noexcept
{
	return std::hash<std::string_view>{}(name);
}

const rr_walsender_obs *RoundIndex::walsender_for(std::string_view application_name) const
{
	return walsender_for(application_name, name_hash(application_name));
}

const rr_walsender_obs *RoundIndex::find_walsender(std::string_view application_name,
                                                   size_t hash) const
{
	if (walsenders_.size() <= kLinearLimit)
	{
		const rr_walsender_obs *best = nullptr;
		for (size_t i = 0; i < walsenders_.size(); ++i)
			if (walsender_app_hashes_[i] == hash && walsender_apps_[i] == application_name &&
			    (best == nullptr || walsender_preferred(walsenders_[i], *best)))
				best = &walsenders_[i];
		return best;
	}
	auto it = walsender_by_app_.find(application_name);
	return it == walsender_by_app_.end() ? nullptr : it->second;
}

const rr_slot_obs *RoundIndex::slot_with_pid(int32_t pid) const
{
	if (slots_.size() <= kLinearLimit)
	{
		for (const rr_slot_obs &slot : slots_)
			if (slot.active_pid == pid)
				return &slot;
		return nullptr;
	}
	auto it = slot_by_pid_.find(pid);
	return it == slot_by_pid_.end() ? nullptr : it->second;
}

const rr_slot_obs *RoundIndex::free_slot_named(std::string_view name) const
{
	if (name.empty() || free_slots_ == 0)
		return nullptr;
	const rr_slot_obs *slot = nullptr;
	if (slots_.size() <= kLinearLimit)
	{
		for (size_t i = 0; i < slots_.size(); ++i)
			if (slot_names_[i] == name)
			{
				slot = &slots_[i];
				break;
			}
	}
	else
	{
		auto it = slot_by_name_.find(name);
		if (it != slot_by_name_.end())
			slot = it->second;
	}
	if (slot == nullptr || slot->active_pid != 0)
		return nullptr;
	return slot;
}

const rr_slot_obs *RoundIndex::slot_for(const rr_walsender_obs *walsender,
                                        std::string_view remembered,
                                        std::string_view node_name) const
{
	if (walsender != nullptr && walsender->pid != 0)
		if (const rr_slot_obs *slot = slot_with_pid(walsender->pid))
			return slot;
	if (const rr_slot_obs *slot = free_slot_named(remembered))
		return slot;
	return free_slot_named(node_name);
}

} // namespace replroute
