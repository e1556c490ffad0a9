/*
 * join.hpp -- which walsender and which slot belong to a node.
 *
 *  - walsender: the one whose application_name is the node's; if several
 *    share it (a standby reconnecting while its old walsender lingers), the
 *    streaming one, then the one with the highest replay LSN, then the lowest
 *    pid (only so that the choice is deterministic);
 *  - slot: the physical slot whose active_pid is that walsender's pid; when
 *    there is none (typically: the walsender is gone), the slot the node used
 *    in an earlier round, else a slot named like the node -- in both cases
 *    only if no other process holds it.  This is what lets a lost slot show
 *    as slot_lost after its standby was thrown out.
 *
 * Built once per round; the pointers point into the round's input.  A few
 * walsenders or slots (kLinearLimit) are searched in place, which is cheaper
 * than hashing a name for every registered node; more go into hash maps.
 * Both give the same answers: the first slot in input order for a pid or a
 * name, the preferred walsender for an application_name.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

#include <boost/container/static_vector.hpp>

#include <span>
#include <string_view>
#include <unordered_map>

namespace replroute
{

/* Is a preferred over b as the walsender of their application_name? */
bool walsender_preferred(const rr_walsender_obs &a, const rr_walsender_obs &b) noexcept;

class RoundIndex
{
public:
	void build(const rr_round_input &input);

	const rr_walsender_obs *walsender_for(std::string_view application_name) const;
	/* The same, with name_hash(application_name) computed by the caller
	 * (who may keep it across rounds). */
	const rr_walsender_obs *walsender_for(std::string_view application_name, size_t hash) const
	{
		/* Inline, the common answer for most nodes of a large registry:
		 * no walsender of the (few) has that hash. */
		if (walsenders_.size() <= kLinearLimit)
		{
			bool any = false;
			for (size_t h : walsender_app_hashes_)
				any |= h == hash;
			if (!any)
				return nullptr;
		}
		return find_walsender(application_name, hash);
	}
	static size_t name_hash(std::string_view name) noexcept;
	/* Is any slot held by no process?  Only such a slot matches by name. */
	bool any_free_slot() const noexcept { return free_slots_ > 0; }
	const rr_slot_obs *slot_for(const rr_walsender_obs *walsender, std::string_view remembered,
	                            std::string_view node_name) const;

	static constexpr size_t kLinearLimit = 8;

private:
	const rr_walsender_obs *find_walsender(std::string_view application_name, size_t hash) const;
	const rr_slot_obs *free_slot_named(std::string_view name) const;
	const rr_slot_obs *slot_with_pid(int32_t pid) const;

	std::span<const rr_walsender_obs> walsenders_;
	std::span<const rr_slot_obs> slots_;
	/* Their names, when searched in place. */
	boost::container::static_vector<std::string_view, kLinearLimit> walsender_apps_;
	boost::container::static_vector<size_t, kLinearLimit> walsender_app_hashes_;
	boost::container::static_vector<std::string_view, kLinearLimit> slot_names_;
	size_t free_slots_ = 0; /* held by no process: only these match by name */

	std::unordered_map<std::string_view, const rr_walsender_obs *> walsender_by_app_;
	std::unordered_map<int32_t, const rr_slot_obs *> slot_by_pid_;
	std::unordered_map<std::string_view, const rr_slot_obs *> slot_by_name_;
};

} // namespace replroute
