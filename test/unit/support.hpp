/*
 * support.hpp -- builders for the unit tests: a shared table on the heap and
 * round inputs that read like the scenario they describe.
 */
#pragma once

#include "replroute/replroute.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace replroute::test
{

constexpr rr_timestamp kSecond = 1000000;
constexpr rr_timestamp kT0 = 700000000 * kSecond; /* an arbitrary epoch offset */

/* Cache-line aligned, like PostgreSQL's shared memory allocations. */
class HeapTable
{
public:
	explicit HeapTable(uint32_t capacity)
	    : size_(rr_table_size(capacity)),
	      memory_(static_cast<unsigned char *>(std::aligned_alloc(64, round_up(size_))), &std::free)
	{
		std::memset(memory_.get(), 0xa5, size_); /* init must not rely on zeroed memory */
		table_ = rr_table_init(memory_.get(), capacity);
	}
	rr_shared_table *get() const { return table_; }
	operator rr_shared_table *() const { return table_; }

private:
	static size_t round_up(size_t n) { return (n + 63) / 64 * 64; }
	size_t size_;
	std::unique_ptr<unsigned char, decltype(&std::free)> memory_;
	rr_shared_table *table_;
};

inline void set_text(char *dst, size_t size, const std::string &text)
{
	std::memset(dst, 0, size);
	std::memcpy(dst, text.data(), text.size() < size - 1 ? text.size() : size - 1);
}

template <size_t N>
void set_text(char (&dst)[N], const std::string &text)
{
	set_text(dst, N, text);
}

inline rr_node_config node(const std::string &name, int32_t weight = 100,
                           const std::string &application_name = "", bool drained = false)
{
	rr_node_config n{};
	set_text(n.name, name);
	set_text(n.host, name + ".example");
	n.port = 5432;
	n.weight = weight;
	set_text(n.application_name, application_name.empty() ? name : application_name);
	n.drained = drained;
	return n;
}

/* A streaming walsender that has replayed up to replay (everything sent). */
inline rr_walsender_obs walsender(const std::string &application_name, int32_t pid, rr_lsn replay,
                                  rr_walsender_state state = RR_WS_STREAMING)
{
	rr_walsender_obs w{};
	w.pid = pid;
	w.state = state;
	set_text(w.application_name, application_name);
	set_text(w.client_addr, "127.0.0.1");
	set_text(w.sync_state, "async");
	w.sent_lsn = w.write_lsn = w.flush_lsn = w.replay_lsn = replay;
	w.write_lag_us = w.flush_lag_us = w.replay_lag_us = RR_NO_DURATION;
	w.reply_time = kT0;
	return w;
}

inline rr_slot_obs slot(const std::string &name, int32_t active_pid,
                        rr_wal_status wal_status = RR_WAL_RESERVED)
{
	rr_slot_obs s{};
	set_text(s.slot_name, name);
	s.active = active_pid != 0;
	s.active_pid = active_pid;
	s.wal_status = wal_status;
	s.restart_lsn = 1;
	return s;
}

/* Without the stability rules (no hysteresis, no hold, no stall verdict),
 * unless a test asks for them. */
inline rr_thresholds limits(int64_t max_lag_bytes = RR_NO_LIMIT,
                            int64_t max_replay_lag_us = RR_NO_LIMIT)
{
	return rr_thresholds{max_lag_bytes, max_replay_lag_us, 1.0, 0, RR_NO_LIMIT};
}

inline rr_thresholds stable_limits(int64_t max_lag_bytes, int64_t max_replay_lag_us,
                                   double leave_fraction, int64_t recovery_hold_us,
                                   int64_t stall_timeout_us = RR_NO_LIMIT)
{
	return rr_thresholds{max_lag_bytes, max_replay_lag_us, leave_fraction, recovery_hold_us,
	                     stall_timeout_us};
}

struct Round
{
	std::vector<rr_node_config> nodes;
	std::vector<rr_walsender_obs> walsenders;
	std::vector<rr_slot_obs> slots;
	std::vector<rr_probe_obs> probes; /* empty: probes off; else one per node */
	rr_timestamp now = kT0;
	rr_lsn flush = 1000;
	bool in_recovery = false;
	bool registry_available = true;

	rr_round_input input() const
	{
		rr_round_input in{};
		in.started_at = now - 250;
		in.now = now;
		in.worker_pid = 4242;
		in.in_recovery = in_recovery;
		in.registry_available = registry_available;
		in.primary_flush_lsn = in_recovery ? 0 : flush;
		in.nodes = nodes.data();
		in.n_nodes = nodes.size();
		in.walsenders = walsenders.data();
		in.n_walsenders = walsenders.size();
		in.slots = slots.data();
		in.n_slots = slots.size();
		in.probes = probes.empty() ? nullptr : probes.data();
		return in;
	}
};

struct Snapshot
{
	rr_table_header header{};
	std::vector<rr_node_entry> entries;

	const rr_node_entry *find(const std::string &name) const
	{
		for (const rr_node_entry &e : entries)
			if (name == e.name)
				return &e;
		return nullptr;
	}
};

inline Snapshot snapshot(const rr_shared_table *table)
{
	Snapshot s;
	rr_table_header header{};
	rr_table_header_snapshot(table, &header, nullptr);
	s.entries.resize(header.capacity);
	uint32_t n = 0;
	rr_error error{};
	rr_table_snapshot(table, &s.header, s.entries.data(), header.capacity, &n, &error);
	s.entries.resize(n);
	return s;
}

inline rr_pick_request request(rr_timestamp now, rr_policy policy = RR_POLICY_LEAST_LAG,
                               uint64_t random = 0)
{
	rr_pick_request r{};
	r.now = now;
	r.stale_after_us = 5 * kSecond;
	r.max_lag_bytes = RR_NO_LIMIT;
	r.max_lag_us = RR_NO_LIMIT;
	r.min_lsn = 0;
	r.policy = policy;
	r.random = random;
	return r;
}

/* Evaluates and publishes one round with a fresh or given evaluator. */
class World
{
public:
	explicit World(uint32_t capacity = 16) : table_(capacity)
	{
		rr_error error{};
		evaluator_ = rr_evaluator_create(&error);
	}
	~World() { rr_evaluator_destroy(evaluator_); }
	World(const World &) = delete;
	World &operator=(const World &) = delete;

	rr_status publish(const Round &round, const rr_thresholds &thresholds = limits())
	{
		rr_round_input in = round.input();
		return rr_evaluate_and_publish(evaluator_, &in, &thresholds, table_, &last_error);
	}
	Snapshot snap() const { return snapshot(table_); }
	rr_shared_table *table() const { return table_; }

	rr_pick_result pick(const rr_pick_request &req)
	{
		rr_pick_result result{};
		rr_pick_reader(table_, &req, &result, &last_error);
		return result;
	}

	rr_error last_error{};

private:
	HeapTable table_;
	rr_evaluator *evaluator_ = nullptr;
};

} // namespace replroute::test
