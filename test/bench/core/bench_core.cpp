/*
 * bench_core.cpp -- Google Benchmark suite of the C++ core: what a backend
 * pays for one pick, what the worker pays for one evaluation round, and what
 * a reader pays while the writer publishes.  Figures only, no assertions; it
 * is not part of CTest.  Run from a plain (not sanitized) build:
 *
 *   test/bench/run --only core
 *
 * which builds it (CMake, only if libbenchmark-dev is installed) and prints
 * the figures with the targets they are held against.
 *
 * Tables are built through the boundary, as the worker builds them: registered
 * nodes, of which either 2 or all stream (the others have no walsender, and
 * their probes fail, as nodes at loopback ports where nothing listens do).
 * Evaluation rounds run with registry_version 0 (the evaluator compares the
 * registry rows with the previous round's) and with the same nonzero version
 * in every round (the caller vouches that the registry was not re-read).
 */
#include "replroute/replroute.h"

#include "../../unit/support.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace replroute::test;

namespace
{

constexpr rr_lsn kFlush = 1000000;

std::string node_name(int i)
{
	char buf[32];
	std::snprintf(buf, sizeof buf, "standby%04d", i);
	return buf;
}

/* n registered nodes, the first `streaming` of them streaming with slots at
 * replay positions a few kB apart (so min_lsn splits them), the rest
 * disconnected with failed probes.  With probes, every node has one. */
Round scenario(int n, int streaming, bool probes = true)
{
	Round r;
	r.flush = kFlush;
	for (int i = 0; i < n; ++i)
	{
		std::string name = node_name(i);
		r.nodes.push_back(node(name, 100 + i % 7));
		if (i < streaming)
		{
			rr_walsender_obs ws = walsender(name, 1000 + i, kFlush - 64 * (i % 50));
			ws.sent_lsn = kFlush;
			ws.reply_time = r.now;
			r.walsenders.push_back(ws);
			r.slots.push_back(slot(name, ws.pid));
		}
		if (probes)
		{
			rr_probe_obs p{};
			if (i < streaming)
			{
				p.state = RR_PROBE_OK;
				p.outcome = RR_PROBE_ANSWERED;
				p.in_recovery = true;
				p.replay_lsn = kFlush - 64 * (i % 50);
				p.replay_lsn_fresh = true;
				p.answered_at = r.now;
			}
			else
			{
				p.state = RR_PROBE_BACKOFF;
				p.outcome = RR_PROBE_FAILED;
				p.answered_at = RR_NO_TIME;
				set_text(p.reason, "connection to 127.0.0.1 port 40000 failed: Connection refused");
				p.reason_serial = static_cast<uint64_t>(i) + 1; /* as rr_probe_observe sets it */
			}
			r.probes.push_back(p);
		}
	}
	return r;
}

const char *policy_word(rr_policy policy)
{
	switch (policy)
	{
	case RR_POLICY_WEIGHTED:
		return "weighted";
	case RR_POLICY_ROUND_ROBIN:
		return "round_robin";
	case RR_POLICY_LEAST_LAG:
		return "least_lag";
	}
	return "?";
}

enum class Bounds
{
	kNone,
	kMinLsn,    /* min_lsn that about half the streaming nodes meet */
	kLagBound,  /* a per-call byte bound that all meet: the filter path */
	kMinLsnLag, /* both */
};

const char *bounds_word(Bounds b)
{
	switch (b)
	{
	case Bounds::kNone:
		return "none";
	case Bounds::kMinLsn:
		return "min_lsn";
	case Bounds::kLagBound:
		return "max_lag_bytes";
	case Bounds::kMinLsnLag:
		return "min_lsn+max_lag_bytes";
	}
	return "?";
}

void pick(benchmark::State &state, rr_policy policy, int nodes, int routable, Bounds bounds)
{
	World w(static_cast<uint32_t>(nodes));
	Round r = scenario(nodes, routable);
	if (w.publish(r) != RR_OK)
	{
		state.SkipWithError(w.last_error.message);
		return;
	}
	rr_pick_request q = request(r.now, policy);
	q.stale_after_us = RR_NO_LIMIT;
	if (bounds == Bounds::kMinLsn || bounds == Bounds::kMinLsnLag)
		q.min_lsn = kFlush - 64 * 25;
	if (bounds == Bounds::kLagBound || bounds == Bounds::kMinLsnLag)
		q.max_lag_bytes = 1 << 20;
	std::mt19937_64 rng(1);
	uint64_t found = 0;
	for (auto _ : state)
	{
		q.random = rng();
		rr_pick_result result;
		rr_pick_reader(w.table(), &q, &result, nullptr);
		found += result.found;
		benchmark::DoNotOptimize(result);
	}
	state.counters["found"] =
	    benchmark::Counter(static_cast<double>(found), benchmark::Counter::kAvgIterations);
}

/* One round as the worker runs it: the observation moves on (time, the
 * primary's WAL, the streaming standbys' positions and replies), the
 * evaluator judges every node and publishes. */
void evaluation_round(benchmark::State &state, int nodes, int streaming, bool versioned)
{
	World w(static_cast<uint32_t>(nodes));
	rr_error error{};
	rr_evaluator *evaluator = rr_evaluator_create(&error);
	Round r = scenario(nodes, streaming);
	rr_thresholds thresholds = stable_limits(16 << 20, 1000000, 0.5, 5000000, 5000000);
	for (auto _ : state)
	{
		r.now += 5000;
		r.flush += 128;
		for (rr_walsender_obs &ws : r.walsenders)
		{
			ws.sent_lsn = ws.write_lsn = ws.flush_lsn = r.flush;
			ws.replay_lsn = r.flush - 64;
			ws.reply_time = r.now;
		}
		rr_round_input in = r.input();
		in.registry_version = versioned ? 1 : 0;
		rr_status status = rr_evaluate_and_publish(evaluator, &in, &thresholds, w.table(), &error);
		if (status != RR_OK)
		{
			state.SkipWithError(error.message);
			break;
		}
	}
	rr_evaluator_destroy(evaluator);
}

/* Readers under a writer thread that publishes rounds of the same table,
 * continuously (pause_us 0: the worst case) or every pause_us. */
void read_under_writer(benchmark::State &state, int nodes, int pause_us, bool whole_table)
{
	World w(static_cast<uint32_t>(nodes));
	Round r = scenario(nodes, 2);
	if (w.publish(r) != RR_OK)
	{
		state.SkipWithError(w.last_error.message);
		return;
	}
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> publications{0};
	std::thread writer(
	    [&]
	    {
		    rr_error error{};
		    rr_evaluator *evaluator = rr_evaluator_create(&error);
		    rr_thresholds thresholds = limits();
		    Round wr = r;
		    while (!stop.load(std::memory_order_relaxed))
		    {
			    wr.now += 1;
			    wr.flush += 8;
			    rr_round_input in = wr.input();
			    rr_evaluate_and_publish(evaluator, &in, &thresholds, w.table(), &error);
			    publications.fetch_add(1, std::memory_order_relaxed);
			    if (pause_us > 0)
				    std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
		    }
		    rr_evaluator_destroy(evaluator);
	    });
	rr_pick_request q = request(r.now, RR_POLICY_WEIGHTED);
	q.stale_after_us = RR_NO_LIMIT;
	std::mt19937_64 rng(1);
	std::vector<rr_node_entry> entries(static_cast<size_t>(nodes));
	uint64_t failed = 0;
	uint64_t before = publications.load();
	for (auto _ : state)
	{
		if (whole_table)
		{
			rr_table_header header;
			uint32_t n = 0;
			failed += rr_table_snapshot(w.table(), &header, entries.data(),
			                            static_cast<uint32_t>(nodes), &n, nullptr) != RR_OK;
		}
		else
		{
			q.random = rng();
			rr_pick_result result;
			rr_pick_reader(w.table(), &q, &result, nullptr);
			failed += !result.found;
		}
	}
	uint64_t during = publications.load() - before;
	stop.store(true);
	writer.join();
	state.counters["publications"] = static_cast<double>(during);
	state.counters["not_found"] = static_cast<double>(failed);
}

} // namespace

int main(int argc, char **argv)
{
	const rr_policy policies[] = {RR_POLICY_WEIGHTED, RR_POLICY_ROUND_ROBIN, RR_POLICY_LEAST_LAG};
	const Bounds all_bounds[] = {Bounds::kNone, Bounds::kMinLsn, Bounds::kLagBound,
	                             Bounds::kMinLsnLag};
	for (rr_policy policy : policies)
		for (Bounds bounds : all_bounds)
			for (int nodes : {1, 8, 64, 1024})
				for (bool all_routable : {false, true})
				{
					int routable = all_routable ? nodes : (nodes < 2 ? nodes : 2);
					if (all_routable && routable <= 2)
						continue; /* the same table as the 2-routable one */
					std::string name = std::string("pick/") + policy_word(policy) + "/" +
					                   bounds_word(bounds) + "/nodes:" + std::to_string(nodes) +
					                   "/routable:" + std::to_string(routable);
					benchmark::RegisterBenchmark(name.c_str(), pick, policy, nodes, routable,
					                             bounds);
				}
	for (int nodes : {8, 64, 1024})
		for (bool all_streaming : {false, true})
			for (bool versioned : {false, true})
			{
				int streaming = all_streaming ? nodes : 2;
				std::string name = "evaluation_round/nodes:" + std::to_string(nodes) +
				                   "/streaming:" + std::to_string(streaming) +
				                   "/registry_version:" + (versioned ? "same" : "none");
				benchmark::RegisterBenchmark(name.c_str(), evaluation_round, nodes, streaming,
				                             versioned);
			}
	for (bool whole_table : {false, true})
		for (int pause_us : {0, 1000})
		{
			std::string name = std::string("seqlock_read/") +
			                   (whole_table ? "snapshot" : "pick/weighted") +
			                   "/nodes:64/writer_pause_us:" + std::to_string(pause_us);
			benchmark::RegisterBenchmark(name.c_str(), read_under_writer, 64, pause_us, whole_table)
			    ->UseRealTime();
		}
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
