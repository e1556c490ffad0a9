/* The candidates a pick reads: only the routable nodes, ordered by known
 * replay position with cumulative weights (shared_table.hpp).  Picks among
 * many unroutable nodes, at the min_lsn boundary, with zero weights and with
 * ties, and a randomised comparison of every path against a plain scan of
 * the published entries. */
#include "routing.hpp"
#include "shared_table.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace replroute;
using namespace replroute::test;

namespace
{

constexpr rr_policy kPolicies[] = {RR_POLICY_WEIGHTED, RR_POLICY_ROUND_ROBIN, RR_POLICY_LEAST_LAG};

uint32_t published_candidates(rr_shared_table *table)
{
	TableReader reader(*table);
	uint32_t n = 0;
	EXPECT_TRUE(reader.read_consistent([&] { n = reader.candidate_count(); }));
	return n;
}

/* The names a request can get, over many random draws and tickets. */
std::set<std::string> names_picked(World &w, rr_pick_request q, int draws = 400)
{
	std::set<std::string> seen;
	std::mt19937_64 rng(99);
	for (int i = 0; i < draws; ++i)
	{
		q.random = rng();
		rr_pick_result p = w.pick(q);
		if (p.found)
			seen.insert(p.name);
	}
	return seen;
}

/* What a policy can pick among all: least lag always the least lagging. */
std::set<std::string> choosable(rr_policy policy, std::set<std::string> all,
                                const std::string &least)
{
	if (policy == RR_POLICY_LEAST_LAG)
		return {least};
	return all;
}

/* Streaming standbys named by the caller, each replayed up to its LSN;
 * everything sent, so lag in bytes is flush - lsn and the time lag 0. */
Round standbys_at(const std::vector<std::pair<std::string, rr_lsn>> &at, rr_lsn flush = 10000)
{
	Round r;
	r.flush = flush;
	int32_t pid = 1;
	for (const auto &[name, lsn] : at)
	{
		r.nodes.push_back(node(name));
		rr_walsender_obs ws = walsender(name, pid++, lsn);
		ws.sent_lsn = flush;
		r.walsenders.push_back(ws);
	}
	return r;
}

} // namespace

TEST(Candidates, OnlyRoutableNodesArePrepared)
{
	World w(1024);
	Round r;
	for (int i = 0; i < 1022; ++i)
		r.nodes.push_back(node("down" + std::to_string(i)));
	r.nodes.push_back(node("up1"));
	r.nodes.push_back(node("up2"));
	r.walsenders = {walsender("up1", 1, 1000), walsender("up2", 2, 990)};
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(w.snap().entries.size(), 1024u);
	EXPECT_EQ(published_candidates(w.table()), 2u);

	for (rr_policy policy : kPolicies)
	{
		rr_pick_request q = request(r.now, policy);
		EXPECT_EQ(names_picked(w, q), choosable(policy, {"up1", "up2"}, "up1"))
		    << "policy " << policy;
		q.max_lag_bytes = 100;
		EXPECT_EQ(names_picked(w, q), choosable(policy, {"up1", "up2"}, "up1"))
		    << "policy " << policy << " under a lag bound";
		q.max_lag_bytes = 5;
		EXPECT_EQ(names_picked(w, q), (std::set<std::string>{"up1"}))
		    << "policy " << policy << " under a tight lag bound";
		q.max_lag_bytes = RR_NO_LIMIT;
		q.min_lsn = 995;
		EXPECT_EQ(names_picked(w, q), (std::set<std::string>{"up1"}))
		    << "policy " << policy << " with min_lsn";
		q.max_lag_us = 0;
		EXPECT_EQ(names_picked(w, q), (std::set<std::string>{"up1"}))
		    << "policy " << policy << " with min_lsn and a time bound";
		q.min_lsn = 1001;
		EXPECT_EQ(w.pick(q).cause, RR_CAUSE_NO_CANDIDATE);
	}

	std::vector<rr_node_entry> out(1024);
	uint32_t n = 0;
	rr_unroutable_cause cause;
	rr_pick_request q = request(r.now);
	ASSERT_EQ(rr_list_readers(w.table(), &q, out.data(), 1024, &n, &cause, nullptr), RR_OK);
	ASSERT_EQ(n, 2u);
	EXPECT_STREQ(out[0].name, "up1");
	EXPECT_STREQ(out[1].name, "up2");
	EXPECT_STREQ(out[1].host, "up2.example");

	/* A round in which they all go down empties the candidates. */
	r.walsenders.clear();
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(published_candidates(w.table()), 0u);
	EXPECT_EQ(w.pick(request(r.now)).cause, RR_CAUSE_NO_CANDIDATE);
}

TEST(Candidates, MinLsnBoundaryIsInclusive)
{
	World w;
	ASSERT_EQ(w.publish(standbys_at({{"s1", 10000}, {"s2", 9900}, {"s3", 9800}})), RR_OK);
	for (rr_policy policy : kPolicies)
		for (bool bounded : {false, true})
		{
			rr_pick_request q = request(kT0, policy);
			if (bounded)
				q.max_lag_bytes = 1000;
			std::string label = std::to_string(policy) + (bounded ? " bounded" : "");
			q.min_lsn = 9900;
			EXPECT_EQ(names_picked(w, q), choosable(policy, {"s1", "s2"}, "s1")) << label;
			q.min_lsn = 9901;
			EXPECT_EQ(names_picked(w, q), (std::set<std::string>{"s1"})) << label;
			q.min_lsn = 9800;
			EXPECT_EQ(names_picked(w, q), choosable(policy, {"s1", "s2", "s3"}, "s1")) << label;
			q.min_lsn = 9799;
			EXPECT_EQ(names_picked(w, q), choosable(policy, {"s1", "s2", "s3"}, "s1")) << label;
			q.min_lsn = 10000;
			EXPECT_EQ(names_picked(w, q), (std::set<std::string>{"s1"})) << label;
			q.min_lsn = 10001;
			EXPECT_EQ(w.pick(q).cause, RR_CAUSE_NO_CANDIDATE) << label;
		}
	/* Least lag within a prefix: the least lagging of those that qualify. */
	rr_pick_request q = request(kT0, RR_POLICY_LEAST_LAG);
	q.min_lsn = 9800;
	EXPECT_STREQ(w.pick(q).name, "s1");
}

TEST(Candidates, ZeroWeightsAreNeverPicked)
{
	World w;
	Round r = standbys_at({{"a", 10000}, {"z", 10000}, {"b", 9000}});
	r.nodes[1].weight = 0;
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_FALSE(w.snap().find("z")->routable);
	EXPECT_EQ(published_candidates(w.table()), 2u);
	for (rr_policy policy : kPolicies)
	{
		rr_pick_request q = request(kT0, policy);
		EXPECT_EQ(names_picked(w, q), choosable(policy, {"a", "b"}, "a")) << policy;
		q.min_lsn = 10000;
		EXPECT_EQ(names_picked(w, q), (std::set<std::string>{"a"})) << policy;
		q.max_lag_bytes = 0;
		EXPECT_EQ(names_picked(w, q), (std::set<std::string>{"a"})) << policy;
	}

	for (rr_node_config &n : r.nodes)
		n.weight = 0;
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(published_candidates(w.table()), 0u);
	for (rr_policy policy : kPolicies)
	{
		rr_pick_request q = request(kT0, policy);
		EXPECT_EQ(w.pick(q).cause, RR_CAUSE_NO_CANDIDATE) << policy;
		q.max_lag_bytes = 1 << 20;
		EXPECT_EQ(w.pick(q).cause, RR_CAUSE_NO_CANDIDATE) << policy;
	}
}

TEST(Candidates, TiesAtOnePosition)
{
	World w;
	ASSERT_EQ(w.publish(standbys_at({{"c", 9500}, {"b", 9500}, {"a", 9500}, {"old", 9000}})),
	          RR_OK);
	/* The min_lsn boundary at the tied position keeps all three. */
	for (rr_policy policy : kPolicies)
	{
		rr_pick_request q = request(kT0, policy);
		q.min_lsn = 9500;
		std::set<std::string> expected = policy == RR_POLICY_LEAST_LAG
		                                     ? std::set<std::string>{"a"}
		                                     : std::set<std::string>{"a", "b", "c"};
		EXPECT_EQ(names_picked(w, q), expected) << policy;
		q.max_lag_bytes = 500;
		EXPECT_EQ(names_picked(w, q), expected) << policy << " bounded";
	}
	/* Round robin over the tie visits each in turn, in name order. */
	rr_pick_request q = request(kT0, RR_POLICY_ROUND_ROBIN);
	q.min_lsn = 9500;
	std::vector<std::string> order = {"a", "b", "c"};
	std::string first = w.pick(q).name;
	size_t start = std::find(order.begin(), order.end(), first) - order.begin();
	ASSERT_LT(start, order.size());
	for (int i = 1; i < 9; ++i)
		EXPECT_EQ(std::string(w.pick(q).name), order[(start + i) % 3]) << i;
	/* Equal weights over the tie: each gets about a third. */
	std::map<std::string, int> counts;
	std::mt19937_64 rng(5);
	rr_pick_request weighted = request(kT0, RR_POLICY_WEIGHTED);
	weighted.min_lsn = 9500;
	for (int i = 0; i < 3000; ++i)
	{
		weighted.random = rng();
		++counts[w.pick(weighted).name];
	}
	for (const std::string &name : order)
		EXPECT_NEAR(counts[name], 1000, 150) << name;
}

/* Every path of a pick against the plain rule: the entries that qualify
 * (rr_entry_qualifies on a snapshot), and for the deterministic policies the
 * one that must be chosen.  The weighted reference walks the qualifying
 * entries in candidate order (newest position first, then name). */
TEST(Candidates, AgreeWithAScanOfTheEntries)
{
	std::mt19937_64 rng(20261129);
	auto pick_of = [&](auto &values) { return values[rng() % std::size(values)]; };
	for (int table_round = 0; table_round < 60; ++table_round)
	{
		World w(64);
		Round r;
		r.flush = 10000;
		int n = 1 + static_cast<int>(rng() % 40);
		for (int i = 0; i < n; ++i)
		{
			std::string name = "n" + std::to_string(rng() % 1000) + "_" + std::to_string(i);
			static const int32_t weights[] = {0, 1, 5, 100};
			rr_node_config c = node(name, pick_of(weights));
			c.drained = rng() % 10 == 0;
			r.nodes.push_back(c);
			if (rng() % 10 < 7)
			{
				static const rr_lsn behind[] = {0, 0, 100, 200, 300, 500};
				rr_walsender_obs ws = walsender(name, i + 1, r.flush - pick_of(behind));
				ws.sent_lsn = r.flush;
				static const int64_t lags[] = {RR_NO_DURATION, 0, 40, 400, 4000};
				ws.replay_lag_us = pick_of(lags);
				r.walsenders.push_back(ws);
			}
		}
		ASSERT_EQ(w.publish(r), RR_OK);
		Snapshot s = w.snap();

		for (int call = 0; call < 200; ++call)
		{
			rr_pick_request q = request(r.now, pick_of(kPolicies), rng());
			static const int64_t byte_bounds[] = {RR_NO_LIMIT, RR_NO_LIMIT, 0, 100, 300};
			static const int64_t time_bounds[] = {RR_NO_LIMIT, RR_NO_LIMIT, 0, 50, 500};
			static const rr_lsn min_lsns[] = {0, 0, 9500, 9700, 9800, 9900, 10000, 10001};
			q.max_lag_bytes = pick_of(byte_bounds);
			q.max_lag_us = pick_of(time_bounds);
			q.min_lsn = pick_of(min_lsns);

			std::vector<const rr_node_entry *> qualifying;
			for (const rr_node_entry &e : s.entries)
				if (rr_entry_qualifies(&e, &q))
					qualifying.push_back(&e);
			rr_pick_result p = w.pick(q);
			std::string label = "table " + std::to_string(table_round) + " call " +
			                    std::to_string(call) + " policy " + std::to_string(q.policy);
			ASSERT_EQ(p.found, !qualifying.empty()) << label;

			std::vector<rr_node_entry> listed(64);
			uint32_t n_listed = 0;
			rr_unroutable_cause cause;
			ASSERT_EQ(rr_list_readers(w.table(), &q, listed.data(), 64, &n_listed, &cause, nullptr),
			          RR_OK);
			ASSERT_EQ(n_listed, qualifying.size()) << label;
			for (uint32_t i = 0; i < n_listed; ++i)
				EXPECT_STREQ(listed[i].name, qualifying[i]->name) << label << " (table order)";
			if (!p.found)
				continue;

			auto chosen = std::find_if(qualifying.begin(), qualifying.end(),
			                           [&](const rr_node_entry *e)
			                           { return p.name == std::string(e->name); });
			ASSERT_NE(chosen, qualifying.end()) << label << " chose " << p.name;
			if (q.policy == RR_POLICY_LEAST_LAG)
			{
				const rr_node_entry *best = qualifying[0];
				for (const rr_node_entry *e : qualifying)
					if (less_lagging(e->lag_bytes, e->lag_us, e->name, best->lag_bytes,
					                 best->lag_us, best->name))
						best = e;
				EXPECT_STREQ(p.name, best->name) << label;
			}
			else if (q.policy == RR_POLICY_WEIGHTED)
			{
				std::vector<const rr_node_entry *> order = qualifying;
				std::sort(order.begin(), order.end(),
				          [](const rr_node_entry *a, const rr_node_entry *b)
				          {
					          if (a->known_replay_lsn != b->known_replay_lsn)
						          return a->known_replay_lsn > b->known_replay_lsn;
					          return std::string(a->name) < b->name;
				          });
				uint64_t total = 0;
				for (const rr_node_entry *e : order)
					total += static_cast<uint64_t>(e->weight);
				uint64_t target = scale_random(q.random, total), cumulative = 0;
				const rr_node_entry *expected = nullptr;
				for (const rr_node_entry *e : order)
				{
					cumulative += static_cast<uint64_t>(e->weight);
					if (target < cumulative)
					{
						expected = e;
						break;
					}
				}
				ASSERT_NE(expected, nullptr);
				EXPECT_STREQ(p.name, expected->name) << label;
			}
		}
	}
}
