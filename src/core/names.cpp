/*
 * names.cpp -- enum <-> text.  The words are part of the SQL contract
 * (dashboards match on them), so they are spelled out here once.
 */
#include "names.hpp"

#include <cstring>

namespace replroute
{

namespace
{

constexpr const char *kInvalid = "invalid";

constexpr const char *kStateNames[] = {
    "unknown",     "healthy",         "lagging",   "catchup", "disconnected", "stalled",
    "unreachable", "not_in_recovery", "slot_lost", "drained", "unregistered", "recovering",
};
static_assert(sizeof kStateNames / sizeof kStateNames[0] == RR_STATE_COUNT_);

/* Index 0 (RR_WS_NONE) is what a node without a walsender shows. */
constexpr const char *kWalsenderStateNames[] = {
    "none", "startup", "catchup", "streaming", "backup", "stopping",
};
static_assert(sizeof kWalsenderStateNames / sizeof kWalsenderStateNames[0] == RR_WS_COUNT_);

constexpr const char *kWalStatusNames[] = {
    "none", "reserved", "extended", "unreserved", "lost",
};
static_assert(sizeof kWalStatusNames / sizeof kWalStatusNames[0] == RR_WAL_COUNT_);

constexpr const char *kProbeStateNames[] = {
    "off", "idle", "connecting", "querying", "ok", "backoff",
};
static_assert(sizeof kProbeStateNames / sizeof kProbeStateNames[0] == RR_PROBE_STATE_COUNT_);

template <size_t N>
const char *name_of(const char *const (&names)[N], int value) noexcept
{
	if (value < 0 || static_cast<size_t>(value) >= N)
		return kInvalid;
	return names[value];
}

/* Index 0 is the "none" value, which is never parsed from text: NULL or an
 * unknown word maps to it. */
template <size_t N>
int parse(const char *const (&names)[N], const char *text) noexcept
{
	if (text == nullptr)
		return 0;
	for (size_t i = 1; i < N; ++i)
		if (std::strcmp(names[i], text) == 0)
			return static_cast<int>(i);
	return 0;
}

} // namespace

const char *probe_state_name(rr_probe_state state) noexcept
{
	return name_of(kProbeStateNames, static_cast<int>(state));
}

const char *state_name(rr_node_state state) noexcept
{
	return name_of(kStateNames, static_cast<int>(state));
}

const char *walsender_state_name(rr_walsender_state state) noexcept
{
	return name_of(kWalsenderStateNames, static_cast<int>(state));
}

const char *wal_status_name(rr_wal_status status) noexcept
{
	return name_of(kWalStatusNames, static_cast<int>(status));
}

rr_walsender_state parse_walsender_state(const char *text) noexcept
{
	return static_cast<rr_walsender_state>(parse(kWalsenderStateNames, text));
}

rr_wal_status parse_wal_status(const char *text) noexcept
{
	return static_cast<rr_wal_status>(parse(kWalStatusNames, text));
}

} // namespace replroute
