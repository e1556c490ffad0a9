/*
 * health.cpp -- evaluate_node(): one node, one round, one verdict.
 * Precedence of the states is listed in health.hpp.
 */
#include "health.hpp"

#include "names.hpp"
#include "text.hpp"

#include <cstdarg>
#include <cstdio>
#include <limits>

namespace replroute
{

int64_t lag_bytes_between(rr_lsn primary_flush_lsn, rr_lsn replay_lsn) noexcept
{
	if (primary_flush_lsn == 0 || replay_lsn == 0)
		return RR_NO_DURATION;
	if (replay_lsn >= primary_flush_lsn)
		return 0;
	rr_lsn behind = primary_flush_lsn - replay_lsn;
	constexpr rr_lsn kMax = static_cast<rr_lsn>(std::numeric_limits<int64_t>::max());
	return static_cast<int64_t>(behind > kMax ? kMax : behind);
}

int64_t idle_aware_lag(int64_t reported_us, rr_lsn position, rr_lsn sent_lsn) noexcept
{
	if (sent_lsn != 0 && position >= sent_lsn)
		return 0;
	return reported_us < 0 ? RR_NO_DURATION : reported_us;
}

int64_t effective_lag_us(rr_lsn primary_flush_lsn, rr_lsn replay_lsn, int64_t reported_replay_us,
                         int64_t history_lag_us) noexcept
{
	if (primary_flush_lsn == 0 || replay_lsn == 0)
		return RR_NO_DURATION;
	if (replay_lsn >= primary_flush_lsn)
		return 0;
	int64_t lag = RR_NO_DURATION;
	if (reported_replay_us >= 0)
		lag = reported_replay_us;
	if (history_lag_us >= 0 && history_lag_us > lag)
		lag = history_lag_us;
	return lag;
}

int64_t leave_bound(int64_t bound, double fraction) noexcept
{
	if (bound < 0)
		return RR_NO_LIMIT;
	if (!(fraction > 0.0)) /* also NaN */
		return 0;
	if (fraction >= 1.0)
		return bound;
	return static_cast<int64_t>(static_cast<double>(bound) * fraction);
}

namespace
{

bool limited(int64_t limit)
{
	return limit >= 0;
}

/* How long a standby has been silent while WAL waited for it: the shorter of
 * the time since its last reply and the time WAL has been pending, so that a
 * standby that was idle (replying only every wal_receiver_status_interval) is
 * not judged on the quiet stretch before the WAL arrived.  reply_time is the
 * standby's clock; a standby clock that runs ahead only delays the verdict,
 * one that runs behind is capped by the primary-side pending time. */
int64_t silent_us(const NodeObservation &in)
{
	const rr_walsender_obs *ws = in.walsender;
	if (in.pending_us <= 0 || ws->write_lsn == 0)
		return 0;
	int64_t silent = in.pending_us;
	if (ws->reply_time != RR_NO_TIME && in.now != RR_NO_TIME && in.now - ws->reply_time < silent)
		silent = in.now - ws->reply_time;
	return silent < 0 ? 0 : silent;
}

void fill_identity(const NodeObservation &in, rr_node_entry &e)
{
	if (in.node != nullptr)
	{
		copy_field(e.name, in.node->name);
		copy_field(e.host, in.node->host);
		e.port = in.node->port;
		e.weight = in.node->weight;
		copy_field(e.application_name, in.node->application_name);
		e.registered = true;
		e.drained = in.node->drained;
	}
	else if (in.walsender != nullptr)
	{
		copy_field(e.name, in.walsender->application_name);
		copy_field(e.application_name, in.walsender->application_name);
		e.registered = false;
	}
}

void fill_walsender(const rr_walsender_obs *ws, rr_node_entry &e)
{
	if (ws == nullptr)
	{
		e.walsender_state = RR_WS_NONE;
		e.write_lag_us = e.flush_lag_us = e.replay_lag_us = RR_NO_DURATION;
		e.reply_time = RR_NO_TIME;
		return;
	}
	e.walsender_pid = ws->pid;
	e.walsender_state = ws->state;
	copy_field(e.client_addr, ws->client_addr);
	copy_field(e.sync_state, ws->sync_state);
	e.sent_lsn = ws->sent_lsn;
	e.write_lsn = ws->write_lsn;
	e.flush_lsn = ws->flush_lsn;
	e.replay_lsn = ws->replay_lsn;
	e.write_lag_us = idle_aware_lag(ws->write_lag_us, ws->write_lsn, ws->sent_lsn);
	e.flush_lag_us = idle_aware_lag(ws->flush_lag_us, ws->flush_lsn, ws->sent_lsn);
	e.replay_lag_us = idle_aware_lag(ws->replay_lag_us, ws->replay_lsn, ws->sent_lsn);
	e.reply_time = ws->reply_time;
}

void fill_slot(const rr_slot_obs *slot, rr_node_entry &e)
{
	if (slot == nullptr)
		return;
	copy_field(e.slot_name, slot->slot_name);
	e.slot_active = slot->active;
	e.wal_status = slot->wal_status;
}

struct Warning
{
	char text[RR_REASON_LEN] = "";
};

/* wal_status 'unreserved': the slot holds more than max_wal_size and the next
 * checkpoint may remove WAL the standby still needs.  Not a fault yet (the
 * standby may catch up in time), so only said; a lagging standby is the one
 * most likely to get there. */
Warning slot_warning(const NodeObservation &in, const rr_node_entry &e)
{
	Warning w;
	if (in.slot != nullptr && in.slot->wal_status == RR_WAL_UNRESERVED)
		std::snprintf(w.text, sizeof w.text,
		              "; warning: slot '%s' unreserved, WAL may be removed soon", e.slot_name);
	return w;
}

void set_verdict(rr_node_entry &e, rr_node_state state, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

void set_verdict(rr_node_entry &e, rr_node_state state, const char *format, ...)
{
	e.state = state;
	va_list args;
	va_start(args, format);
	std::vsnprintf(e.reason, sizeof e.reason, format, args);
	va_end(args);
}

/* The state and reason; everything else is already filled in. */
void judge(const NodeObservation &in, const rr_thresholds &limits, rr_node_entry &e)
{
	const rr_walsender_obs *ws = in.walsender;

	if (in.node == nullptr)
	{
		if (in.registry_available)
			set_verdict(e, RR_STATE_UNREGISTERED, "no registered node has application_name '%s'",
			            e.name);
		else
			set_verdict(e, RR_STATE_UNREGISTERED,
			            "node registry not available; walsender not matched");
		return;
	}
	if (in.in_recovery)
		return set_verdict(e, RR_STATE_UNKNOWN, "this server is a standby; route from the primary");
	if (e.drained)
		return set_verdict(e, RR_STATE_DRAINED, "drained by an operator");
	if (in.probe != nullptr && in.probe->outcome == RR_PROBE_ANSWERED && !in.probe->in_recovery)
		return set_verdict(e, RR_STATE_NOT_IN_RECOVERY,
		                   "the node answers but is not in recovery: it may be a primary");
	if (in.slot != nullptr && in.slot->wal_status == RR_WAL_LOST)
		return set_verdict(e, RR_STATE_SLOT_LOST,
		                   "slot '%s' lost: WAL removed before the standby received it",
		                   e.slot_name);
	bool probe_failed = in.probe != nullptr && in.probe->outcome == RR_PROBE_FAILED;
	if (ws == nullptr)
	{
		if (probe_failed)
			return set_verdict(e, RR_STATE_DISCONNECTED,
			                   "no walsender with application_name '%s'; %.*s", e.application_name,
			                   static_cast<int>(sizeof in.probe->reason), in.probe->reason);
		return set_verdict(e, RR_STATE_DISCONNECTED, "no walsender with application_name '%s'",
		                   e.application_name);
	}
	/* A frozen standby's walsender lingers until wal_sender_timeout: the
	 * probe is the fresher witness. */
	if (probe_failed)
		return set_verdict(e, RR_STATE_UNREACHABLE, "%.*s; its walsender is still connected",
		                   static_cast<int>(sizeof in.probe->reason), in.probe->reason);
	switch (ws->state)
	{
	case RR_WS_STREAMING:
		break;
	case RR_WS_STOPPING:
		return set_verdict(e, RR_STATE_DISCONNECTED, "walsender stopping");
	case RR_WS_STARTUP:
	case RR_WS_CATCHUP:
	case RR_WS_BACKUP:
		return set_verdict(e, RR_STATE_CATCHUP, "walsender state %s",
		                   walsender_state_name(ws->state));
	default:
		return set_verdict(e, RR_STATE_UNKNOWN, "walsender state not reported");
	}
	if (limited(limits.stall_timeout_us))
	{
		int64_t silent = silent_us(in);
		if (silent > limits.stall_timeout_us)
			return set_verdict(e, RR_STATE_STALLED,
			                   "no reply for %s while WAL is pending (stall_timeout %s)",
			                   format_duration_against(silent, limits.stall_timeout_us).text,
			                   format_duration(limits.stall_timeout_us).text);
	}
	if (e.replay_lsn == 0)
		return set_verdict(e, RR_STATE_UNKNOWN,
		                   "streaming; the standby has not reported its replay position yet");
	if (e.lag_bytes < 0)
		return set_verdict(e, RR_STATE_UNKNOWN, "streaming; the primary's WAL position is unknown");
	/* Without a time bound an unknown time lag decides nothing; with one, a
	 * node that cannot be shown to be within it is not routed to. */
	if (limited(limits.max_replay_lag_us) && e.lag_us < 0)
		return set_verdict(e, RR_STATE_UNKNOWN, "streaming, %s behind; replay lag unknown",
		                   format_bytes(e.lag_bytes).text);

	/* Enter above the bounds; once in, leave only at or below the leave
	 * bounds.  Each part of the reason names the bound it is past. */
	int64_t enter_bytes = limits.max_lag_bytes, enter_time = limits.max_replay_lag_us;
	int64_t stay_bytes =
	    in.lag_latched ? leave_bound(enter_bytes, limits.lag_leave_fraction) : enter_bytes;
	int64_t stay_time =
	    in.lag_latched ? leave_bound(enter_time, limits.lag_leave_fraction) : enter_time;
	bool over_bytes = limited(stay_bytes) && e.lag_bytes > stay_bytes;
	bool over_time = limited(stay_time) && e.lag_us > stay_time;
	if (over_bytes || over_time)
	{
		char bytes_part[128] = "", time_part[128] = "";
		if (over_bytes)
		{
			bool entered = e.lag_bytes > enter_bytes;
			int64_t bound = entered ? enter_bytes : stay_bytes;
			std::snprintf(bytes_part, sizeof bytes_part, "%s behind > %s%s",
			              format_bytes_against(e.lag_bytes, bound).text, format_bytes(bound).text,
			              entered ? "" : " leave bound");
		}
		if (over_time)
		{
			bool entered = e.lag_us > enter_time;
			int64_t bound = entered ? enter_time : stay_time;
			std::snprintf(time_part, sizeof time_part, "replay lag %s > %s%s",
			              format_duration_against(e.lag_us, bound).text,
			              format_duration(bound).text, entered ? "" : " leave bound");
		}
		return set_verdict(e, RR_STATE_LAGGING, "%s%s%s%s", bytes_part,
		                   over_bytes && over_time ? "; " : "", time_part,
		                   slot_warning(in, e).text);
	}

	char time_part[96] = "";
	if (e.lag_us > 0)
		std::snprintf(time_part, sizeof time_part, ", replay lag %s",
		              format_duration(e.lag_us).text);
	set_verdict(e, RR_STATE_HEALTHY, "streaming, %s behind%s%s", format_bytes(e.lag_bytes).text,
	            time_part, slot_warning(in, e).text);
}

} // namespace

rr_node_entry evaluate_node(const NodeObservation &in, const rr_thresholds &limits) noexcept
{
	rr_node_entry e{};
	fill_identity(in, e);
	fill_walsender(in.walsender, e);
	fill_slot(in.slot, e);

	const rr_walsender_obs *ws = in.walsender;
	bool streaming = ws != nullptr && ws->state == RR_WS_STREAMING;
	e.known_replay_lsn = streaming ? ws->replay_lsn : 0;
	if (in.probe != nullptr)
	{
		e.probe_state = in.probe->state;
		e.probe_replay_lsn = in.probe->replay_lsn;
		e.probe_at = in.probe->answered_at;
		/* Both are lower bounds of the same position: the newer one wins.
		 * A stale or failed answer vouches for nothing. */
		if (in.probe->replay_lsn_fresh && in.probe->in_recovery &&
		    in.probe->replay_lsn > e.known_replay_lsn)
			e.known_replay_lsn = in.probe->replay_lsn;
	}
	else
	{
		e.probe_state = RR_PROBE_OFF;
		e.probe_at = RR_NO_TIME;
	}
	rr_lsn replay = ws != nullptr ? ws->replay_lsn : 0;
	e.lag_bytes = lag_bytes_between(in.primary_flush_lsn, replay);
	e.lag_us = effective_lag_us(in.primary_flush_lsn, replay, e.replay_lag_us, in.history_lag_us);

	judge(in, limits, e);
	e.routable = e.state == RR_STATE_HEALTHY && e.weight > 0;
	e.state_since = in.now;
	e.observed_at = in.now;
	return e;
}

} // namespace replroute
