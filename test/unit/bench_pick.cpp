/*
 * bench_pick.cpp -- cost of one rr_pick_reader() call with a handful of
 * standbys, per policy.  Not a test (timings under sanitizers or a loaded
 * machine prove nothing); run it from a plain build:
 *   build/replroute_core_bench
 */
#include "support.hpp"

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

using namespace replroute::test;

int main()
{
	World w;
	Round r;
	for (int i = 0; i < 4; ++i)
	{
		std::string name = "standby" + std::to_string(i);
		r.nodes.push_back(node(name, 100 + i));
		r.walsenders.push_back(walsender(name, 100 + i, 1000 - i));
	}
	if (w.publish(r) != RR_OK)
		return 1;

	const struct
	{
		rr_policy policy;
		const char *name;
	} policies[] = {{RR_POLICY_WEIGHTED, "weighted"},
	                {RR_POLICY_ROUND_ROBIN, "round_robin"},
	                {RR_POLICY_LEAST_LAG, "least_lag"}};
	std::mt19937_64 rng(1);
	constexpr int kCalls = 2000000;
	for (const auto &p : policies)
	{
		rr_pick_request q = request(r.now, p.policy);
		q.max_lag_bytes = 1 << 20;
		q.min_lsn = 500;
		unsigned found = 0;
		auto start = std::chrono::steady_clock::now();
		for (int i = 0; i < kCalls; ++i)
		{
			q.random = rng();
			rr_pick_result result;
			rr_pick_reader(w.table(), &q, &result, nullptr);
			found += result.found;
		}
		auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
		              .count();
		std::printf("pick_reader %-12s 4 standbys: %6.1f ns/call (%u found)\n", p.name, ns / kCalls,
		            found);
	}
	return 0;
}
