/* Rounds that change little: the evaluator keeps unchanged rows without
 * judging them again and the publication rewrites only what changed
 * (evaluator.hpp).  Whatever it skips, the table and the events must be
 * exactly those of an evaluator that judges every row in every round. */
#include "evaluator.hpp"
#include "join.hpp"
#include "shared_table.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <iterator>
#include <random>
#include <string>
#include <vector>

using namespace replroute;
using namespace replroute::test;

namespace
{

/* Garbage after the NUL of a text field: a shim need not clear it, and it
 * must not make a row look changed (nor unchanged). */
template <size_t N>
void scribble_after_nul(char (&field)[N], std::mt19937_64 &rng)
{
	size_t len = strnlen(field, N);
	for (size_t i = len + 1; i < N; ++i)
		field[i] = static_cast<char>(rng());
}

std::string describe(const rr_node_entry &e)
{
	char buf[1024];
	std::snprintf(buf, sizeof buf,
	              "%s host=%s w=%d reg=%d dr=%d state=%d routable=%d since=%lld reason='%s' "
	              "ws=%d slot=%s/%d probe=%d/%lld known=%llu lag=%lld/%lld obs=%lld",
	              e.name, e.host, e.weight, e.registered, e.drained, e.state, e.routable,
	              static_cast<long long>(e.state_since), e.reason, e.walsender_pid, e.slot_name,
	              e.wal_status, e.probe_state, static_cast<long long>(e.probe_at),
	              static_cast<unsigned long long>(e.known_replay_lsn),
	              static_cast<long long>(e.lag_bytes), static_cast<long long>(e.lag_us),
	              static_cast<long long>(e.observed_at));
	return buf;
}

std::vector<std::string> describe(const std::vector<rr_event> &events)
{
	std::vector<std::string> out;
	for (const rr_event &e : events)
		out.push_back(std::string(e.node) + ":" + e.from_state + ">" + e.to_state + ":" + e.reason);
	return out;
}

class Generator
{
public:
	explicit Generator(uint64_t seed) : rng_(seed) {}

	/* The next round: mostly the previous one again (time and WAL move on),
	 * sometimes with changes of every kind. */
	Round next()
	{
		round_.now += 5000;
		round_.flush += rng_() % 3 * 100;
		bool change = first_ || rng_() % 10 < 4;
		first_ = false;
		if (change)
			mutate();
		else if (version_ != 0 && rng_() % 4 == 0)
			version_used_ = 0; /* a caller that does not vouch */
		else
			version_used_ = version_;
		for (rr_walsender_obs &ws : round_.walsenders)
		{
			ws.sent_lsn = round_.flush;
			ws.reply_time = round_.now;
		}
		for (rr_node_config &n : round_.nodes)
		{
			scribble_after_nul(n.host, rng_);
			scribble_after_nul(n.name, rng_);
		}
		for (rr_probe_obs &p : round_.probes)
			scribble_after_nul(p.reason, rng_);
		return round_;
	}
	uint64_t version() const { return version_used_; }
	bool thresholds_changed() { return rng_() % 25 == 0; }

private:
	void mutate()
	{
		static const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
		Round r;
		r.now = round_.now;
		r.flush = round_.flush;
		r.in_recovery = rng_() % 15 == 0;
		r.registry_available = rng_() % 20 != 0;
		bool probes = rng_() % 3 != 0;
		int32_t pid = 100;
		for (const char *name : names)
		{
			if (rng_() % 10 < 3)
				continue;
			rr_node_config n =
			    node(name, static_cast<int32_t>(rng_() % 3) * 50,
			         rng_() % 8 == 0 ? std::string("app-") + name : "", rng_() % 10 == 0);
			if (rng_() % 6 == 0)
				set_text(n.host, std::string(name) + ".other");
			r.nodes.push_back(n);
			int32_t ws_pid = 0;
			if (rng_() % 10 < 6)
			{
				ws_pid = pid++;
				rr_walsender_obs ws =
				    walsender(n.application_name, ws_pid, r.flush - rng_() % 4 * 100,
				              rng_() % 8 == 0 ? RR_WS_CATCHUP : RR_WS_STREAMING);
				r.walsenders.push_back(ws);
			}
			if (rng_() % 3 == 0)
				r.slots.push_back(slot(name, rng_() % 2 ? ws_pid : 0,
				                       rng_() % 5 == 0 ? RR_WAL_LOST : RR_WAL_RESERVED));
			if (probes)
			{
				rr_probe_obs p{};
				switch (rng_() % 3)
				{
				case 0:
					p.state = RR_PROBE_IDLE;
					p.outcome = RR_PROBE_PENDING;
					p.answered_at = RR_NO_TIME;
					break;
				case 1:
					p.state = RR_PROBE_OK;
					p.outcome = RR_PROBE_ANSWERED;
					p.in_recovery = rng_() % 10 != 0;
					p.replay_lsn = r.flush - rng_() % 3 * 100;
					p.replay_lsn_fresh = rng_() % 2;
					p.answered_at = r.now - 1000;
					break;
				default:
					p.state = RR_PROBE_BACKOFF;
					p.outcome = RR_PROBE_FAILED;
					p.answered_at = RR_NO_TIME;
					{
						bool refused = rng_() % 2;
						set_text(p.reason, refused ? "connection refused" : "timeout after 1 s");
						/* As rr_probe_observe gives them (one serial, one
						 * text), or none. */
						p.reason_serial = rng_() % 2 ? (refused ? 1 : 2) : 0;
					}
				}
				r.probes.push_back(p);
			}
		}
		if (rng_() % 4 == 0)
			r.walsenders.push_back(walsender("stranger", 999, r.flush));
		round_ = r;
		version_ = rng_() % 3 == 0 ? 0 : version_ + 1 + rng_() % 3;
		version_used_ = version_;
	}

	std::mt19937_64 rng_;
	Round round_;
	bool first_ = true;
	uint64_t version_ = 0, version_used_ = 0;
};

} // namespace

TEST(Incremental, KeptRowsAreExactlyWhatJudgingThemAgainGives)
{
	for (uint64_t seed = 1; seed <= 12; ++seed)
	{
		Generator gen(seed);
		HeapTable table_kept(32), table_judged(32);
		Evaluator kept, judged;
		judged.set_keep_unchanged(false);
		rr_thresholds thresholds = stable_limits(250, 1000000, 0.5, 20000, 15000);
		size_t rows_kept = 0;
		for (int round = 0; round < 300; ++round)
		{
			Round r = gen.next();
			if (gen.thresholds_changed())
				thresholds.max_lag_bytes = thresholds.max_lag_bytes == 250 ? 150 : 250;
			rr_round_input in = r.input();
			in.registry_version = gen.version();
			std::string label = "seed " + std::to_string(seed) + " round " + std::to_string(round);
			ASSERT_EQ(kept.evaluate_and_publish(in, thresholds, *table_kept.get(), nullptr), RR_OK)
			    << label;
			ASSERT_EQ(judged.evaluate_and_publish(in, thresholds, *table_judged.get(), nullptr),
			          RR_OK)
			    << label;
			rows_kept += kept.rows_kept();
			EXPECT_EQ(judged.rows_kept(), 0u);
			EXPECT_EQ(
			    describe(std::vector<rr_event>(kept.events().begin(), kept.events().end())),
			    describe(std::vector<rr_event>(judged.events().begin(), judged.events().end())))
			    << label;
			Snapshot a = snapshot(table_kept), b = snapshot(table_judged);
			ASSERT_EQ(a.entries.size(), b.entries.size()) << label;
			for (size_t i = 0; i < a.entries.size(); ++i)
				ASSERT_EQ(describe(a.entries[i]), describe(b.entries[i])) << label << " row " << i;
			for (rr_policy policy : {RR_POLICY_LEAST_LAG, RR_POLICY_WEIGHTED})
			{
				rr_pick_request q = request(r.now, policy, 0x9e3779b97f4a7c15ULL * round);
				rr_pick_result pa{}, pb{};
				ASSERT_EQ(rr_pick_reader(table_kept, &q, &pa, nullptr), RR_OK);
				ASSERT_EQ(rr_pick_reader(table_judged, &q, &pb, nullptr), RR_OK);
				EXPECT_EQ(pa.found, pb.found) << label;
				EXPECT_STREQ(pa.name, pb.name) << label;
			}
		}
		EXPECT_GT(rows_kept, 200u) << "seed " << seed << ": the comparison must cover kept rows";
	}
}

/* 1,022 nodes down and 2 streaming: a round in which nothing changes
 * rewrites none of the down nodes' entries, yet every entry shows the
 * round's observation time, and a change to one of them shows at once. */
TEST(Incremental, OnlyChangedEntriesAreRewritten)
{
	World w(1024);
	Round r;
	for (int i = 0; i < 1022; ++i)
		r.nodes.push_back(node("down" + std::to_string(i)));
	r.nodes.push_back(node("up1"));
	r.nodes.push_back(node("up2"));
	r.walsenders = {walsender("up1", 1, 1000), walsender("up2", 2, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);

	/* Scribble on a down node's entry in the table behind the evaluator's
	 * back: a round that rewrote it would repair it. */
	auto entry_words = [&](uint32_t index)
	{
		rr_table_header h = table_last_header(*w.table());
		(void) h;
		return reinterpret_cast<unsigned char *>(w.table()) + sizeof(rr_shared_table) +
		       sizeof(rr_table_header) + sizeof(PickIndex) + 1024 * sizeof(Candidate) +
		       index * sizeof(rr_node_entry);
	};
	rr_node_entry *down7 = reinterpret_cast<rr_node_entry *>(entry_words(7));
	ASSERT_STREQ(down7->name, "down7");
	down7->port = 4242;

	r.now += 5000;
	r.flush += 100;
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	EXPECT_EQ(s.entries[7].port, 4242) << "an unchanged entry is not rewritten";
	for (const rr_node_entry &e : s.entries)
		EXPECT_EQ(e.observed_at, r.now) << e.name;
	EXPECT_EQ(s.find("up1")->state, RR_STATE_HEALTHY);

	r.nodes[7].port = 5555;
	r.now += 5000;
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(w.snap().entries[7].port, 5555) << "a changed row is published at once";

	r.walsenders.push_back(walsender("down9", 3, r.flush));
	r.now += 5000;
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(w.snap().entries[9].state, RR_STATE_HEALTHY) << "a walsender arriving is seen";
}

/* A reset between two publications (a worker restart in the same table)
 * leaves rows the evaluator did not write: the next publication must write
 * them all again. */
TEST(Incremental, AfterAResetEverythingIsPublishedAgain)
{
	World w(8);
	Round r;
	r.nodes = {node("down"), node("up")};
	r.walsenders = {walsender("up", 1, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	rr_table_reset(w.table());
	EXPECT_EQ(w.snap().find("down")->state, RR_STATE_UNKNOWN);
	r.now += 5000;
	ASSERT_EQ(w.publish(r), RR_OK);
	Snapshot s = w.snap();
	EXPECT_EQ(s.find("down")->state, RR_STATE_DISCONNECTED);
	EXPECT_EQ(s.find("up")->state, RR_STATE_HEALTHY);
	EXPECT_NE(s.find("down")->state_since, RR_NO_TIME);
}

/* registry_version: the same nonzero value vouches for the rows; a new one
 * (or 0) makes the evaluator read them. */
TEST(Incremental, RegistryVersion)
{
	World w(8);
	rr_error error{};
	rr_evaluator *ev = rr_evaluator_create(&error);
	Round r;
	r.nodes = {node("a"), node("b")};
	rr_thresholds t = limits();
	auto publish = [&](uint64_t version)
	{
		rr_round_input in = r.input();
		in.registry_version = version;
		r.now += 5000;
		return rr_evaluate_and_publish(ev, &in, &t, w.table(), &error);
	};
	ASSERT_EQ(publish(7), RR_OK);
	r.nodes[1].drained = true;
	ASSERT_EQ(publish(8), RR_OK);
	EXPECT_EQ(w.snap().find("b")->state, RR_STATE_DRAINED) << "a new version is read";
	r.nodes[1].drained = false;
	ASSERT_EQ(publish(0), RR_OK);
	EXPECT_EQ(w.snap().find("b")->state, RR_STATE_DISCONNECTED) << "version 0 is compared";
	set_text(r.nodes[1].name, "c");
	set_text(r.nodes[1].application_name, "c");
	ASSERT_EQ(publish(0), RR_OK);
	EXPECT_NE(w.snap().find("c"), nullptr) << "a renamed row at the same position";
	r.nodes.pop_back();
	ASSERT_EQ(publish(9), RR_OK);
	ASSERT_EQ(publish(9), RR_OK);
	EXPECT_EQ(w.snap().entries.size(), 1u);
	rr_evaluator_destroy(ev);
}

/* More walsenders or slots than are searched in place go through hash maps:
 * the same joins either way. */
TEST(Incremental, ManyWalsendersAndSlotsJoinAsFewDo)
{
	for (int extra : {0, static_cast<int>(RoundIndex::kLinearLimit) + 4})
	{
		World w(64);
		Round r;
		r.nodes = {node("a"), node("b"), node("c")};
		r.walsenders = {walsender("a", 1, 990, RR_WS_CATCHUP), walsender("a", 2, 500),
		                walsender("a", 3, 800), walsender("b", 4, 900)};
		r.slots = {slot("a", 3), slot("b", 0), slot("c", 0, RR_WAL_LOST), slot("c", 77)};
		for (int i = 0; i < extra; ++i)
		{
			r.walsenders.push_back(walsender("x" + std::to_string(i), 100 + i, 1000));
			r.slots.push_back(slot("x" + std::to_string(i), 100 + i));
		}
		ASSERT_EQ(w.publish(r), RR_OK);
		Snapshot s = w.snap();
		std::string label = "extra " + std::to_string(extra);
		EXPECT_EQ(s.find("a")->walsender_pid, 3) << label;
		EXPECT_STREQ(s.find("a")->slot_name, "a") << label;
		EXPECT_EQ(s.find("b")->walsender_pid, 4) << label;
		EXPECT_STREQ(s.find("b")->slot_name, "b") << label << ": the free slot named like it";
		EXPECT_EQ(s.find("c")->state, RR_STATE_SLOT_LOST) << label << ": the first slot 'c' wins";
	}
}

/* A new worker adopts its predecessor's nodes; if its first round has no
 * registry, they leave (as they would in any round without a registry). */
TEST(Incremental, AdoptedNodesWithoutARegistryAreRemoved)
{
	HeapTable table(8);
	Round r;
	r.nodes = {node("a"), node("b")};
	r.walsenders = {walsender("a", 11, 1000)};
	{
		Evaluator first;
		rr_round_input in = r.input();
		ASSERT_EQ(first.evaluate_and_publish(in, limits(), *table.get(), nullptr), RR_OK);
	}
	Evaluator next;
	ASSERT_EQ(next.adopt(*table.get(), nullptr), RR_OK);
	r.registry_available = false;
	r.now += 5000;
	rr_round_input in = r.input();
	ASSERT_EQ(next.evaluate_and_publish(in, limits(), *table.get(), nullptr), RR_OK);
	std::vector<std::string> events =
	    describe(std::vector<rr_event>(next.events().begin(), next.events().end()));
	EXPECT_EQ(events,
	          (std::vector<std::string>{":>worker_started:worker pid 4242 started on a primary",
	                                    "a:healthy>removed:no longer registered",
	                                    "b:disconnected>removed:no longer registered"}));
}
