/* The event log: the ring (wraparound, ordering, a writer racing readers),
 * the NOTIFY payload, and the events the evaluator emits. */
#include "event_log.hpp"

#include "support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace replroute;
using namespace replroute::test;

namespace
{

class HeapEventLog
{
public:
	explicit HeapEventLog(uint32_t capacity)
	    : size_(rr_event_log_size(capacity)),
	      memory_(static_cast<unsigned char *>(std::aligned_alloc(64, (size_ + 63) / 64 * 64)),
	              &std::free)
	{
		std::memset(memory_.get(), 0x5a, size_); /* init must not rely on zeroed memory */
		log_ = rr_event_log_init(memory_.get(), capacity);
	}
	rr_event_log *get() const { return log_; }
	operator rr_event_log *() const { return log_; }

private:
	size_t size_;
	std::unique_ptr<unsigned char, decltype(&std::free)> memory_;
	rr_event_log *log_;
};

rr_event event(const std::string &node, const std::string &from, const std::string &to,
               const std::string &reason = "", rr_timestamp at = kT0)
{
	rr_event e{};
	e.at = at;
	set_text(e.node, node);
	set_text(e.from_state, from);
	set_text(e.to_state, to);
	set_text(e.reason, reason);
	return e;
}

std::vector<rr_event> read_all(const rr_event_log *log, uint64_t after = 0)
{
	std::vector<rr_event> out(RR_EVENT_LOG_MAX);
	uint32_t n = 0;
	rr_error error{};
	EXPECT_EQ(rr_event_log_read(log, after, out.data(), static_cast<uint32_t>(out.size()), &n,
	                            &error),
	          RR_OK)
	    << error.message;
	out.resize(n);
	return out;
}

/* "from>to@node" per event, for compact expectations. */
std::vector<std::string> summary(const std::vector<rr_event> &events)
{
	std::vector<std::string> out;
	for (const rr_event &e : events)
		out.push_back(std::string(e.from_state) + ">" + e.to_state + "@" + e.node);
	return out;
}

} // namespace

TEST(EventLog, InitRefusesNullMisalignedAndEmpty)
{
	alignas(64) static unsigned char memory[8192];
	EXPECT_EQ(rr_event_log_init(nullptr, 16), nullptr);
	EXPECT_EQ(rr_event_log_init(memory + 4, 16), nullptr);
	EXPECT_EQ(rr_event_log_init(memory, 0), nullptr);
	EXPECT_NE(rr_event_log_init(memory, 16), nullptr);
	EXPECT_EQ(rr_event_log_size(16) - rr_event_log_size(0), 16 * (sizeof(rr_event) + 8));
}

TEST(EventLog, UnformattedMemoryIsNotReady)
{
	alignas(64) static unsigned char memory[8192] = {};
	auto *log = reinterpret_cast<rr_event_log *>(memory);
	rr_event out[1];
	uint32_t n = 9;
	rr_error error{};
	EXPECT_EQ(rr_event_log_read(log, 0, out, 1, &n, &error), RR_ERR_NOT_READY);
	EXPECT_EQ(n, 0u);
	EXPECT_EQ(rr_event_log_last_seq(log), 0u);
	EXPECT_EQ(rr_event_log_read(nullptr, 0, out, 1, &n, &error), RR_ERR_NULL);
}

TEST(EventLog, AppendsInOrderWithIncreasingSeq)
{
	HeapEventLog log(16);
	ASSERT_NE(log.get(), nullptr);
	EXPECT_TRUE(read_all(log).empty());
	EXPECT_EQ(event_log_append(*log.get(), event("a", "", "healthy")), 1u);
	EXPECT_EQ(event_log_append(*log.get(), event("a", "healthy", "drained")), 2u);
	EXPECT_EQ(event_log_append(*log.get(), event("b", "", "disconnected")), 3u);
	EXPECT_EQ(rr_event_log_last_seq(log), 3u);
	std::vector<rr_event> all = read_all(log);
	ASSERT_EQ(all.size(), 3u);
	for (size_t i = 0; i < all.size(); ++i)
		EXPECT_EQ(all[i].seq, i + 1);
	EXPECT_EQ(summary(all), (std::vector<std::string>{">healthy@a", "healthy>drained@a",
	                                                  ">disconnected@b"}));
	/* after_seq: only what is newer */
	EXPECT_EQ(summary(read_all(log, 2)), (std::vector<std::string>{">disconnected@b"}));
	EXPECT_TRUE(read_all(log, 3).empty());
}

TEST(EventLog, WrapsAroundKeepingTheNewest)
{
	HeapEventLog log(16);
	for (int i = 1; i <= 40; ++i)
		event_log_append(*log.get(), event("n" + std::to_string(i), "", "healthy"));
	std::vector<rr_event> all = read_all(log);
	ASSERT_EQ(all.size(), 16u);
	EXPECT_EQ(all.front().seq, 25u);
	EXPECT_EQ(all.back().seq, 40u);
	for (const rr_event &e : all)
		EXPECT_EQ("n" + std::to_string(e.seq), e.node);
	/* An after_seq older than the ring gives what is left, oldest first. */
	EXPECT_EQ(read_all(log, 3).front().seq, 25u);
	EXPECT_EQ(read_all(log, 30).front().seq, 31u);
}

TEST(EventLog, ReadStopsAtMaxEventsOldestFirst)
{
	HeapEventLog log(16);
	for (int i = 0; i < 10; ++i)
		event_log_append(*log.get(), event("x", "", "healthy"));
	rr_event out[4];
	uint32_t n = 0;
	ASSERT_EQ(rr_event_log_read(log, 2, out, 4, &n, nullptr), RR_OK);
	ASSERT_EQ(n, 4u);
	EXPECT_EQ(out[0].seq, 3u);
	EXPECT_EQ(out[3].seq, 6u);
}

TEST(EventLog, JsonIsEscapedAndNullForEmpty)
{
	rr_event e = event("", "", "worker_started", "a \"quoted\" \\ back\\slash\nnew\tline\x01");
	e.seq = 42;
	char buffer[RR_EVENT_JSON_LEN];
	rr_error error{};
	ASSERT_EQ(rr_event_json(&e, buffer, sizeof(buffer), &error), RR_OK);
	EXPECT_STREQ(buffer, "{\"seq\":42,\"node\":null,\"from\":null,\"to\":\"worker_started\","
	                     "\"reason\":\"a \\\"quoted\\\" \\\\ back\\\\slash\\nnew\\tline\\u0001\"}");

	rr_event s = event("s1", "healthy", "drained", "");
	s.seq = 7;
	ASSERT_EQ(rr_event_json(&s, buffer, sizeof(buffer), &error), RR_OK);
	EXPECT_STREQ(buffer, "{\"seq\":7,\"node\":\"s1\",\"from\":\"healthy\",\"to\":\"drained\","
	                     "\"reason\":null}");

	char tiny[16];
	EXPECT_EQ(rr_event_json(&s, tiny, sizeof(tiny), &error), RR_ERR_TOO_LONG);
	EXPECT_EQ(std::strlen(tiny), sizeof(tiny) - 1) << "cut but terminated";
}

TEST(EventLog, WorstCaseJsonFitsTheDocumentedBuffer)
{
	rr_event e{};
	e.seq = UINT64_MAX;
	std::memset(e.node, '"', sizeof(e.node) - 1);
	std::memset(e.from_state, 0x02, sizeof(e.from_state) - 1);
	std::memset(e.to_state, 0x02, sizeof(e.to_state) - 1);
	std::memset(e.reason, 0x1f, sizeof(e.reason) - 1);
	char buffer[RR_EVENT_JSON_LEN];
	EXPECT_EQ(rr_event_json(&e, buffer, sizeof(buffer), nullptr), RR_OK);
	EXPECT_LT(sizeof(buffer), 8000u) << "NOTIFY payloads must stay below 8000 bytes";
}

/* --- the evaluator's events ------------------------------------------------ */

namespace
{

class EventWorld
{
public:
	explicit EventWorld(rr_event_log *log, rr_shared_table *table) : log_(log), table_(table)
	{
		evaluator_ = rr_evaluator_create(nullptr);
		rr_evaluator_set_event_log(evaluator_, log_);
	}
	~EventWorld() { rr_evaluator_destroy(evaluator_); }
	EventWorld(const EventWorld &) = delete;
	EventWorld &operator=(const EventWorld &) = delete;

	rr_status publish(const Round &round)
	{
		rr_round_input in = round.input();
		rr_thresholds t = limits();
		return rr_evaluate_and_publish(evaluator_, &in, &t, table_, nullptr);
	}
	rr_evaluator *get() const { return evaluator_; }

private:
	rr_event_log *log_;
	rr_shared_table *table_;
	rr_evaluator *evaluator_;
};

} // namespace

TEST(EvaluatorEvents, StartAppearanceChangesAndRemovalInOrder)
{
	HeapEventLog log(64);
	HeapTable table(8);
	EventWorld w(log, table);
	Round r;
	r.nodes = {node("b"), node("a")};
	r.walsenders = {walsender("a", 11, 1000), walsender("b", 12, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	std::vector<rr_event> first = read_all(log);
	EXPECT_EQ(summary(first), (std::vector<std::string>{">worker_started@", ">healthy@b",
	                                                    ">healthy@a"}));
	EXPECT_STREQ(first[0].reason, "worker pid 4242 started on a primary");
	EXPECT_EQ(first[1].at, kT0);

	/* Nothing changes: no event. */
	r.now += kSecond;
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(read_all(log).size(), 3u);

	/* a drained, b's walsender gone. */
	r.now += kSecond;
	r.nodes = {node("b"), node("a", 100, "", true)};
	r.walsenders = {walsender("a", 11, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	std::vector<rr_event> second = read_all(log, 3);
	EXPECT_EQ(summary(second), (std::vector<std::string>{"healthy>disconnected@b",
	                                                     "healthy>drained@a"}));
	EXPECT_EQ(second[0].at, kT0 + 2 * kSecond);
	EXPECT_STRNE(second[0].reason, "");

	/* b removed from the registry; an unregistered walsender appears. */
	r.now += kSecond;
	r.nodes = {node("a", 100, "", true)};
	r.walsenders = {walsender("a", 11, 1000), walsender("pg_basebackup", 13, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(summary(read_all(log, 5)), (std::vector<std::string>{"disconnected>removed@b"}))
	    << "walsenders that match no node make no events";

	/* A standby that streamed before it was registered: one chain. */
	r.now += kSecond;
	r.nodes = {node("a", 100, "", true), node("pg_basebackup")};
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(summary(read_all(log, 6)), (std::vector<std::string>{">healthy@pg_basebackup"}));

	/* The chain of every node is consistent: each from is the previous to. */
	std::map<std::string, std::string> last;
	for (const rr_event &e : read_all(log))
	{
		if (e.node[0] == '\0')
			continue;
		EXPECT_EQ(last[e.node], e.from_state) << "seq " << e.seq;
		last[e.node] = e.to_state;
	}
}

TEST(EvaluatorEvents, RoleChangesAreWorkerEvents)
{
	HeapEventLog log(64);
	HeapTable table(8);
	EventWorld w(log, table);
	Round r;
	r.in_recovery = true;
	r.nodes = {node("a")};
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_STREQ(read_all(log)[0].reason, "worker pid 4242 started on a standby");
	uint64_t before = rr_event_log_last_seq(log);

	r.now += kSecond;
	r.in_recovery = false;
	r.walsenders = {walsender("a", 11, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	std::vector<rr_event> promoted = read_all(log, before);
	ASSERT_GE(promoted.size(), 1u);
	EXPECT_EQ(summary(promoted).front(), "standby>primary@");
	EXPECT_EQ(summary(promoted).back(), "unknown>healthy@a");

	r.now += kSecond;
	r.in_recovery = true;
	before = rr_event_log_last_seq(log);
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(summary(read_all(log, before)).front(), "primary>standby@");
}

TEST(EvaluatorEvents, ANewWorkerAdoptsThePublishedStatesAndTheRingSurvives)
{
	HeapEventLog log(64);
	HeapTable table(8);
	Round r;
	r.nodes = {node("a"), node("b")};
	r.walsenders = {walsender("a", 11, 1000), walsender("b", 12, 1000)};
	{
		EventWorld w(log, table);
		ASSERT_EQ(w.publish(r), RR_OK);
	}
	uint64_t before = rr_event_log_last_seq(log);
	ASSERT_EQ(before, 3u);

	/* The worker's restart: adopt, reset the table, evaluate. */
	EventWorld w(log, table);
	ASSERT_EQ(rr_evaluator_adopt(w.get(), table, nullptr), RR_OK);
	rr_table_reset(table);
	r.now += kSecond;
	r.nodes = {node("a")};
	r.walsenders = {walsender("a", 11, 1000)};
	ASSERT_EQ(w.publish(r), RR_OK);
	EXPECT_EQ(summary(read_all(log, before)),
	          (std::vector<std::string>{">worker_started@", "healthy>removed@b"}))
	    << "a is unchanged, so not reported again; b went away while no worker ran";
	EXPECT_EQ(read_all(log).size(), 5u) << "the reset of the table keeps the history";
	EXPECT_EQ(snapshot(table).find("a")->state_since, kT0) << "state_since carries over too";
}

/* --- a writer racing readers ----------------------------------------------- */

namespace
{

/* Every field of event seq is a function of seq, so any mix of two events is
 * visible: the whole reason, the node, the time and the states. */
rr_event event_for(uint64_t seq)
{
	rr_event e{};
	e.at = static_cast<rr_timestamp>(seq * 7);
	std::snprintf(e.node, sizeof(e.node), "node-%" PRIu64, seq);
	std::snprintf(e.from_state, sizeof(e.from_state), "f%" PRIu64, seq % 1000);
	std::snprintf(e.to_state, sizeof(e.to_state), "t%" PRIu64, seq % 1000);
	std::string digits = std::to_string(seq);
	for (size_t i = 0; i + 1 < sizeof(e.reason); ++i)
		e.reason[i] = digits[i % digits.size()];
	return e;
}

bool same_event(const rr_event &a, const rr_event &b)
{
	return a.seq == b.seq && std::memcmp(&a, &b, sizeof(rr_event)) == 0;
}

} // namespace

TEST(EventLogConcurrency, ReadersNeverSeeATornOrMisorderedEvent)
{
	/* A small ring, so that the writer overwrites the slots the readers are
	 * reading all the time. */
	constexpr uint32_t kCapacity = 16;
	HeapEventLog log(kCapacity);
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> appended{0};

	std::thread writer(
	    [&]
	    {
		    for (uint64_t seq = 1; !stop.load(std::memory_order_relaxed); ++seq)
		    {
			    rr_event e = event_for(seq);
			    e.seq = 0;
			    event_log_append(*log.get(), e);
			    appended.store(seq, std::memory_order_relaxed);
		    }
	    });

	struct Report
	{
		uint64_t reads = 0, events = 0, bad = 0;
		std::string first_problem;
	};
	auto reader = [&](Report &report)
	{
		std::vector<rr_event> out(kCapacity);
		uint64_t newest_seen = 0;
		while (!stop.load(std::memory_order_relaxed))
		{
			uint32_t n = 0;
			rr_error error{};
			/* Alternate between whole reads and reads of what is new. */
			uint64_t after = report.reads % 2 ? newest_seen : 0;
			if (rr_event_log_read(log, after, out.data(), kCapacity, &n, &error) != RR_OK)
			{
				if (report.bad++ == 0)
					report.first_problem = error.message;
				continue;
			}
			++report.reads;
			uint64_t previous = after;
			for (uint32_t i = 0; i < n; ++i)
			{
				rr_event expected = event_for(out[i].seq);
				expected.seq = out[i].seq;
				bool ok = out[i].seq > previous && same_event(out[i], expected);
				if (!ok && report.bad++ == 0)
					report.first_problem = "event seq " + std::to_string(out[i].seq) +
					                       " after " + std::to_string(previous) + ": node '" +
					                       std::string(out[i].node, strnlen(out[i].node, 64)) +
					                       "'";
				previous = out[i].seq;
			}
			report.events += n;
			/* A whole read may end below what an earlier read saw: the writer
			 * can lap a reader mid-read, and the lapped events are skipped. */
			if (n > 0)
				newest_seen = std::max(newest_seen, out[n - 1].seq);
		}
	};

	std::vector<Report> reports(3);
	std::vector<std::thread> readers;
	for (Report &report : reports)
		readers.emplace_back(reader, std::ref(report));
	auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
	while (std::chrono::steady_clock::now() < deadline)
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
	stop.store(true);
	writer.join();
	for (std::thread &t : readers)
		t.join();

	EXPECT_GT(appended.load(), 1000u);
	for (size_t i = 0; i < reports.size(); ++i)
	{
		EXPECT_EQ(reports[i].bad, 0u) << "reader " << i << ": " << reports[i].first_problem;
		EXPECT_GT(reports[i].reads, 100u) << "reader " << i << " barely ran";
		EXPECT_GT(reports[i].events, 100u) << "reader " << i << " saw almost nothing";
	}
	std::printf("appended %" PRIu64 "; events read %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
	            appended.load(), reports[0].events, reports[1].events, reports[2].events);
}
