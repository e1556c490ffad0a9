/* The shared table: layout, reset, snapshots, and the seqlock under a writer
 * thread racing reader threads. */
#include "shared_table.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace replroute;
using namespace replroute::test;

TEST(SharedTable, SizeGrowsWithCapacity)
{
	size_t base = rr_table_size(0);
	EXPECT_GE(base, sizeof(rr_shared_table) + sizeof(rr_table_header));
	EXPECT_EQ(rr_table_size(10) - base, 10 * (sizeof(Candidate) + sizeof(rr_node_entry)));
	EXPECT_EQ(rr_table_size(RR_MAX_NODES_LIMIT + 64) % 8, 0u);
}

TEST(SharedTable, InitRefusesNullAndMisalignedMemory)
{
	alignas(64) static unsigned char memory[4096 + 64];
	EXPECT_EQ(rr_table_init(nullptr, 1), nullptr);
	EXPECT_EQ(rr_table_init(memory + 4, 1), nullptr);
	EXPECT_EQ(rr_table_init(memory + 8, 1), reinterpret_cast<rr_shared_table *>(memory + 8));
}

TEST(SharedTable, FreshTableHasNothingPublished)
{
	HeapTable t(4);
	ASSERT_NE(t.get(), nullptr);
	rr_table_header h{};
	rr_error error{};
	ASSERT_EQ(rr_table_header_snapshot(t, &h, &error), RR_OK);
	EXPECT_EQ(h.rounds, 0u);
	EXPECT_EQ(h.published_at, RR_NO_TIME);
	EXPECT_EQ(h.round_started_at, RR_NO_TIME);
	EXPECT_EQ(h.n_entries, 0u);
	EXPECT_EQ(h.capacity, 4u);
	std::vector<rr_node_entry> out(4);
	uint32_t n = 7;
	ASSERT_EQ(rr_table_snapshot(t, &h, out.data(), 4, &n, &error), RR_OK);
	EXPECT_EQ(n, 0u);
}

TEST(SharedTable, UnformattedMemoryIsNotReady)
{
	alignas(64) static unsigned char memory[8192] = {};
	auto *table = reinterpret_cast<rr_shared_table *>(memory);
	rr_table_header h{};
	rr_error error{};
	EXPECT_EQ(rr_table_header_snapshot(table, &h, &error), RR_ERR_NOT_READY);
	rr_pick_request q = request(kT0);
	rr_pick_result p{};
	EXPECT_EQ(rr_pick_reader(table, &q, &p, &error), RR_ERR_NOT_READY);
	rr_table_reset(table); /* harmless */
	rr_table_reset(nullptr);
	EXPECT_EQ(rr_table_header_snapshot(nullptr, &h, &error), RR_ERR_NULL);
}

TEST(SharedTable, SnapshotCopiesAtMostWhatTheCallerHolds)
{
	World w(8);
	Round r;
	r.nodes = {node("a"), node("b"), node("c")};
	ASSERT_EQ(w.publish(r), RR_OK);
	rr_table_header h{};
	std::vector<rr_node_entry> out(2);
	uint32_t n = 0;
	rr_error error{};
	ASSERT_EQ(rr_table_snapshot(w.table(), &h, out.data(), 2, &n, &error), RR_OK);
	EXPECT_EQ(n, 2u);
	EXPECT_EQ(h.n_entries, 3u);
	EXPECT_STREQ(out[1].name, "b");
	ASSERT_EQ(rr_table_snapshot(w.table(), &h, nullptr, 0, &n, &error), RR_OK);
	EXPECT_EQ(n, 0u);
	EXPECT_EQ(rr_table_snapshot(w.table(), &h, nullptr, 2, &n, &error), RR_ERR_NULL);
}

TEST(SharedTable, AWriterThatDiedMidPublicationIsRepairedByReset)
{
	World w;
	Round r;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 1, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	/* What a worker killed between its two stores of the sequence leaves. */
	w.table()->sequence.fetch_add(1);
	rr_pick_result p = w.pick(request(r.now));
	EXPECT_FALSE(p.found);
	EXPECT_EQ(p.cause, RR_CAUSE_STALE) << "an unreadable table is not trusted";
	rr_table_header h{};
	rr_error error{};
	EXPECT_EQ(rr_table_header_snapshot(w.table(), &h, &error), RR_ERR_INTERNAL);

	rr_table_reset(w.table()); /* the restarted worker's first act */
	EXPECT_EQ(w.table()->sequence.load() % 2, 0u);
	EXPECT_EQ(rr_table_header_snapshot(w.table(), &h, &error), RR_OK);
	EXPECT_EQ(h.n_entries, 0u) << "rows a dying writer may have half-written are not kept";
	EXPECT_EQ(w.pick(request(r.now)).cause, RR_CAUSE_NO_DATA);
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_TRUE(w.pick(request(r.now)).found);
}

/* ------------------------------------------------------------------------
 * Concurrency.  Every field of every published entry is derived from one
 * counter k (and the entry's index), so a reader can tell a consistent
 * snapshot from a torn one: any word from another publication breaks the
 * derivation.  If the seqlock did not retry, or let a publication's words
 * leak into a snapshot it validated, these checks fail within milliseconds
 * (an rr_node_entry is ~100 words, written while readers copy them).
 * --------------------------------------------------------------------- */
namespace
{

constexpr uint32_t kEntries = 6;
constexpr rr_timestamp kBase = 1000000000;

std::string name_for(uint64_t k, uint32_t i)
{
	char buf[RR_NAME_LEN];
	std::snprintf(buf, sizeof buf, "n%u-%" PRIu64, i, k);
	return buf;
}

rr_node_entry entry_for(uint64_t k, uint32_t i)
{
	rr_node_entry e{};
	set_text(e.name, name_for(k, i));
	/* A host whose length and letters both change with k. */
	set_text(e.host, std::string(1 + (k * 7 + i) % 250, static_cast<char>('a' + (k + i) % 26)));
	e.port = static_cast<int32_t>(k % 60000 + i);
	e.weight = static_cast<int32_t>(k % 1000 + 1);
	set_text(e.application_name, name_for(k, i));
	e.registered = (k & 1) != 0;
	e.drained = false;
	e.state = RR_STATE_HEALTHY;
	e.routable = true;
	std::snprintf(e.reason, sizeof e.reason, "round %" PRIu64 " entry %u", k, i);
	e.state_since = kBase + static_cast<rr_timestamp>(k);
	e.walsender_pid = static_cast<int32_t>(k % 100000);
	e.walsender_state = RR_WS_STREAMING;
	e.sent_lsn = k * 16 + 4;
	e.write_lsn = k * 16 + 3;
	e.flush_lsn = k * 16 + 2;
	e.replay_lsn = k * 16 + 1;
	e.write_lag_us = static_cast<int64_t>(k) * 3;
	e.flush_lag_us = static_cast<int64_t>(k) * 5;
	e.replay_lag_us = static_cast<int64_t>(k) * 7;
	e.reply_time = kBase + static_cast<rr_timestamp>(k) * 2;
	set_text(e.slot_name, name_for(k, i));
	e.slot_active = true;
	e.wal_status = RR_WAL_RESERVED;
	e.known_replay_lsn = k * 16 + 1;
	e.lag_bytes = static_cast<int64_t>(k);
	e.lag_us = static_cast<int64_t>(k) * 11;
	e.observed_at = kBase + static_cast<rr_timestamp>(k);
	return e;
}

rr_table_header header_for(uint64_t k)
{
	rr_table_header h{};
	h.rounds = k;
	h.worker_pid = static_cast<int32_t>(k % 100000);
	h.round_started_at = kBase + static_cast<rr_timestamp>(k) - 1;
	h.published_at = kBase + static_cast<rr_timestamp>(k);
	h.round_duration_us = 1;
	h.primary_flush_lsn = k * 16 + 8;
	return h;
}

/* Field by field: memcmp would compare padding, which copies need not keep. */
bool same(const rr_node_entry &a, const rr_node_entry &b)
{
	return std::string(a.name) == b.name && std::string(a.host) == b.host && a.port == b.port &&
	       a.weight == b.weight && std::string(a.application_name) == b.application_name &&
	       a.registered == b.registered && a.drained == b.drained && a.state == b.state &&
	       a.routable == b.routable && std::string(a.reason) == b.reason &&
	       a.state_since == b.state_since && a.walsender_pid == b.walsender_pid &&
	       a.walsender_state == b.walsender_state && a.sent_lsn == b.sent_lsn &&
	       a.write_lsn == b.write_lsn && a.flush_lsn == b.flush_lsn &&
	       a.replay_lsn == b.replay_lsn && a.write_lag_us == b.write_lag_us &&
	       a.flush_lag_us == b.flush_lag_us && a.replay_lag_us == b.replay_lag_us &&
	       a.reply_time == b.reply_time && std::string(a.slot_name) == b.slot_name &&
	       a.slot_active == b.slot_active && a.wal_status == b.wal_status &&
	       a.known_replay_lsn == b.known_replay_lsn && a.lag_bytes == b.lag_bytes &&
	       a.lag_us == b.lag_us && a.observed_at == b.observed_at;
}

struct ReaderReport
{
	uint64_t reads = 0;
	uint64_t torn = 0;
	uint64_t distinct_rounds = 0;
	std::string first_problem;
};

} // namespace

TEST(SharedTableConcurrency, ReadersNeverSeeATornPublication)
{
	HeapTable table(kEntries);
	ASSERT_NE(table.get(), nullptr);
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> published{0};

	/* Entries precomputed per k would cost memory; the writer builds them
	 * just before publishing, which still leaves it writing most of the
	 * time. */
	std::thread writer(
	    [&]
	    {
		    std::vector<rr_node_entry> entries(kEntries);
		    for (uint64_t k = 1; !stop.load(std::memory_order_relaxed); ++k)
		    {
			    for (uint32_t i = 0; i < kEntries; ++i)
				    entries[i] = entry_for(k, i);
			    table_publish(*table.get(), header_for(k), entries);
			    published.store(k, std::memory_order_relaxed);
		    }
	    });

	auto snapshot_reader = [&](ReaderReport &report)
	{
		std::vector<rr_node_entry> out(kEntries);
		uint64_t last_k = 0;
		while (!stop.load(std::memory_order_relaxed))
		{
			rr_table_header h{};
			uint32_t n = 0;
			rr_error error{};
			if (rr_table_snapshot(table, &h, out.data(), kEntries, &n, &error) != RR_OK)
			{
				report.first_problem = error.message;
				++report.torn;
				continue;
			}
			++report.reads;
			if (h.published_at == RR_NO_TIME)
				continue;
			uint64_t k = h.rounds;
			bool ok = h.published_at == header_for(k).published_at &&
			          h.primary_flush_lsn == header_for(k).primary_flush_lsn &&
			          h.worker_pid == header_for(k).worker_pid && n == kEntries && k >= last_k;
			for (uint32_t i = 0; ok && i < n; ++i)
				ok = same(out[i], entry_for(k, i));
			if (!ok)
			{
				if (report.torn++ == 0)
					report.first_problem = "torn snapshot at round " + std::to_string(k) +
					                       ": entry 0 is '" + out[0].name + "'";
			}
			if (k != last_k)
				++report.distinct_rounds;
			last_k = k;
		}
	};

	/* pick_reader's own path: the compact records.  The data age tells
	 * which publication was read; the chosen name, its lag_bytes (least lag)
	 * and min_lsn must all belong to it. */
	auto pick_reader_thread = [&](ReaderReport &report)
	{
		const rr_timestamp now = kBase + (INT64_C(1) << 40);
		while (!stop.load(std::memory_order_relaxed))
		{
			rr_pick_request q = request(now, RR_POLICY_LEAST_LAG);
			q.stale_after_us = RR_NO_LIMIT;
			rr_pick_result p{};
			rr_error error{};
			if (rr_pick_reader(table, &q, &p, &error) != RR_OK)
			{
				report.first_problem = error.message;
				++report.torn;
				continue;
			}
			++report.reads;
			if (p.cause == RR_CAUSE_NO_DATA)
				continue;
			uint64_t k = static_cast<uint64_t>(now - p.data_age_us - kBase);
			/* Equal lag everywhere: least lag falls back to the smallest name. */
			std::string expected = name_for(k, 0);
			for (uint32_t i = 1; i < kEntries; ++i)
				expected = std::min(expected, name_for(k, i));
			if (!p.found || expected != p.name)
			{
				if (report.torn++ == 0)
					report.first_problem = "pick at round " + std::to_string(k) + " chose '" +
					                       p.name + "', expected '" + expected + "'";
			}
		}
	};

	/* The other paths of a pick: weighted by cumulative weight with min_lsn
	 * (binary searches), and round robin under a lag bound (the filter).  The
	 * chosen name must be one of the publication the data age names. */
	auto other_picks_thread = [&](ReaderReport &report)
	{
		const rr_timestamp now = kBase + (INT64_C(1) << 40);
		std::mt19937_64 rng(7);
		for (uint64_t call = 0; !stop.load(std::memory_order_relaxed); ++call)
		{
			rr_pick_request q = request(now, RR_POLICY_WEIGHTED, rng());
			q.stale_after_us = RR_NO_LIMIT;
			q.min_lsn = 1;
			if (call % 2 == 1)
			{
				q.policy = RR_POLICY_ROUND_ROBIN;
				q.max_lag_bytes = INT64_MAX;
			}
			rr_pick_result p{};
			rr_error error{};
			if (rr_pick_reader(table, &q, &p, &error) != RR_OK)
			{
				report.first_problem = error.message;
				++report.torn;
				continue;
			}
			++report.reads;
			if (p.cause == RR_CAUSE_NO_DATA)
				continue;
			uint64_t k = static_cast<uint64_t>(now - p.data_age_us - kBase);
			bool ok = false;
			for (uint32_t i = 0; i < kEntries && p.found; ++i)
				ok = ok || name_for(k, i) == p.name;
			if (!ok && report.torn++ == 0)
				report.first_problem = "pick at round " + std::to_string(k) + " chose '" + p.name +
				                       "', not one of that round's";
		}
	};

	std::vector<ReaderReport> reports(5);
	std::vector<std::thread> readers;
	readers.emplace_back(snapshot_reader, std::ref(reports[0]));
	readers.emplace_back(snapshot_reader, std::ref(reports[1]));
	readers.emplace_back(pick_reader_thread, std::ref(reports[2]));
	readers.emplace_back(pick_reader_thread, std::ref(reports[3]));
	readers.emplace_back(other_picks_thread, std::ref(reports[4]));

	/* Long enough for many thousand publications even under TSan on a busy
	 * two-core machine, short enough for a unit test. */
	auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
	while (std::chrono::steady_clock::now() < deadline)
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
	stop.store(true);
	writer.join();
	for (std::thread &t : readers)
		t.join();

	EXPECT_GT(published.load(), 1000u);
	for (size_t i = 0; i < reports.size(); ++i)
	{
		EXPECT_EQ(reports[i].torn, 0u) << "reader " << i << ": " << reports[i].first_problem;
		EXPECT_GT(reports[i].reads, 100u) << "reader " << i << " barely ran";
	}
	EXPECT_GT(reports[0].distinct_rounds + reports[1].distinct_rounds, 10u)
	    << "the snapshot readers must have seen the table change under them";
	std::printf("publications %" PRIu64 "; reads %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
	            " %" PRIu64 "\n",
	            published.load(), reports[0].reads, reports[1].reads, reports[2].reads,
	            reports[3].reads, reports[4].reads);
}

TEST(SharedTableConcurrency, RoundRobinCounterIsSharedByAllReaders)
{
	World w;
	Round r;
	r.nodes = {node("a"), node("b")};
	r.walsenders = {walsender("a", 1, 1000), walsender("b", 2, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	constexpr int kThreads = 4, kPicks = 5000;
	std::atomic<int> a_count{0};
	std::vector<std::thread> threads;
	for (int t = 0; t < kThreads; ++t)
		threads.emplace_back(
		    [&]
		    {
			    rr_pick_request q = request(r.now, RR_POLICY_ROUND_ROBIN);
			    for (int i = 0; i < kPicks; ++i)
			    {
				    rr_pick_result p{};
				    rr_pick_reader(w.table(), &q, &p, nullptr);
				    if (std::string(p.name) == "a")
					    a_count.fetch_add(1, std::memory_order_relaxed);
			    }
		    });
	for (std::thread &t : threads)
		t.join();
	/* Each ticket is handed out once, so the split is exact. */
	EXPECT_EQ(a_count.load(), kThreads * kPicks / 2);
}
