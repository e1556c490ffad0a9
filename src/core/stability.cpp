/*
 * stability.cpp -- lag latch and recovery hold; rules in stability.hpp.
 */
#include "stability.hpp"

#include "names.hpp"
#include "text.hpp"

#include <cstdio>
#include <cstring>

namespace replroute
{

bool is_bad_state(rr_node_state state) noexcept
{
	switch (state)
	{
	case RR_STATE_HEALTHY:
	case RR_STATE_RECOVERING:
	case RR_STATE_DRAINED:
	case RR_STATE_UNREGISTERED:
		return false;
	default:
		return true;
	}
}

void apply_stability(StabilityMemory &memory, rr_node_entry &entry, int64_t recovery_hold_us,
                     rr_timestamp now) noexcept
{
	if (entry.state == RR_STATE_LAGGING)
		memory.lag_latched = true;
	else if (entry.state == RR_STATE_HEALTHY)
		memory.lag_latched = false;

	if (is_bad_state(entry.state))
	{
		if (memory.was_routable)
			memory.hold_pending = true;
		memory.bad_state = entry.state;
		memory.healthy_since = RR_NO_TIME;
		return;
	}
	if (entry.state != RR_STATE_HEALTHY)
	{
		/* drained: the hold, if any, counts from when it is healthy and back */
		memory.healthy_since = RR_NO_TIME;
		return;
	}

	memory.was_routable = true;
	if (!memory.hold_pending)
		return;
	if (memory.healthy_since == RR_NO_TIME)
		memory.healthy_since = now;
	int64_t healthy_for = now - memory.healthy_since;
	if (recovery_hold_us <= 0 || healthy_for >= recovery_hold_us)
	{
		memory.hold_pending = false;
		memory.healthy_since = RR_NO_TIME;
		return;
	}

	char verdict[RR_REASON_LEN];
	std::memcpy(verdict, entry.reason, sizeof verdict);
	verdict[sizeof verdict - 1] = '\0';
	std::snprintf(entry.reason, sizeof entry.reason, "back from %s: healthy for %s of %s; %s",
	              state_name(memory.bad_state), format_duration(healthy_for).text,
	              format_duration(recovery_hold_us).text, verdict);
	entry.state = RR_STATE_RECOVERING;
	entry.routable = false;
}

} // namespace replroute
