/*
 * probe.hpp -- the state machine of one client-side probe target.
 *
 * Pure: it never touches a socket.  The worker's shim owns the libpq
 * connection, asks poll() what to do at a given time, does it, and reports
 * what happened with the on_* events.  Every decision about time -- when to
 * send, when a connection or a query has taken too long, how long to back off
 * -- is made here, so that synthetic timelines can test it.
 *
 *   IDLE --poll--> CONNECTING --connected--> OK --poll (interval due)--> QUERYING
 *                      |                     ^                              |
 *                      |                     +----------- answer -----------+
 *                      +--- failure or deadline ---> BACKOFF <--- failure or deadline
 *   BACKOFF --poll (retry due)--> CONNECTING
 *
 * Queries are paced from the time the previous one was sent, so that a slow
 * answer does not stretch the interval.  The backoff starts at one interval
 * and doubles up to kBackoffCap (or the interval, if that is longer): a dead
 * standby costs a connection attempt every few seconds, not every interval.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

#include <cstdint>

namespace replroute
{

constexpr int64_t kBackoffCapUs = 5'000'000;

class ProbeMachine
{
public:
	rr_probe_action poll(rr_timestamp now, const rr_probe_settings &settings) noexcept;
	rr_timestamp next_deadline(const rr_probe_settings &settings) const noexcept;
	void on_connected(rr_timestamp now) noexcept;
	void on_answer(rr_timestamp now, bool in_recovery, rr_lsn replay_lsn) noexcept;
	void on_failure(rr_timestamp now, const char *message) noexcept;
	rr_probe_obs observe(rr_timestamp now, const rr_probe_settings &settings) const noexcept;

	rr_probe_state state() const noexcept { return state_; }
	int64_t backoff_us() const noexcept { return backoff_us_; }

private:
	void fail(rr_timestamp now, const rr_probe_settings *settings, const char *format, ...) noexcept
	    __attribute__((format(printf, 4, 5)));

	rr_probe_state state_ = RR_PROBE_IDLE;
	rr_probe_outcome outcome_ = RR_PROBE_PENDING;
	rr_timestamp phase_started_ = RR_NO_TIME; /* connect started or query sent */
	rr_timestamp next_query_ = RR_NO_TIME;
	rr_timestamp retry_at_ = RR_NO_TIME;
	int64_t backoff_us_ = 0; /* 0: no failure since the last answer */
	int64_t last_interval_us_ = 0;
	bool in_recovery_ = false;
	rr_lsn replay_lsn_ = 0;
	rr_timestamp answered_at_ = RR_NO_TIME;
	char reason_[RR_REASON_LEN] = "";
	uint64_t reason_serial_ = 0; /* rr_probe_obs.reason_serial of reason_ */
	void reason_written() noexcept;
};

/* "probe failed: " and the first line of a libpq message, bounded. */
void probe_failure_reason(char (&reason)[RR_REASON_LEN], const char *message) noexcept;

} // namespace replroute

struct rr_probe_target
{
	replroute::ProbeMachine impl;
};
