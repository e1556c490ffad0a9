/*
 * shared_table.cpp -- layout and seqlock of the shared table; the protocol is
 * described in shared_table.hpp.
 */
#include "shared_table.hpp"

#include "text.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <limits>
#include <new>
#include <thread>

namespace replroute
{

namespace
{

constexpr size_t kWord = sizeof(uint64_t);
constexpr size_t kHeaderWords = sizeof(rr_table_header) / kWord;
constexpr size_t kPickWords = sizeof(PickIndex) / kWord;
constexpr size_t kCandidateWords = sizeof(Candidate) / kWord;
static_assert(kHeaderWords == TableReader::kHeaderWords && kPickWords == TableReader::kPickWords &&
              kCandidateWords == TableReader::kCandidateWords);
static_assert(offsetof(Candidate, lag_us) == offsetof(Candidate, lag_bytes) + kWord);
static_assert(offsetof(Candidate, lag_rank) == offsetof(Candidate, weight) + 4);
static_assert(offsetof(Candidate, least_lag_upto) == offsetof(Candidate, entry_index) + 4);
constexpr size_t kPublishedAtWord = offsetof(rr_table_header, published_at) / kWord;
static_assert(offsetof(rr_table_header, published_at) % kWord == 0);
constexpr size_t kEntryWords = sizeof(rr_node_entry) / kWord;

uint64_t *words_at(rr_shared_table &table, size_t word_offset) noexcept
{
	return reinterpret_cast<uint64_t *>(reinterpret_cast<unsigned char *>(&table) +
	                                    sizeof(rr_shared_table)) +
	       word_offset;
}

/* The words exist only in shared memory and are only ever atomically
 * accessed; atomic_ref<const T> is not C++20, hence the const_cast. */
uint64_t *words_at(const rr_shared_table &table, size_t word_offset) noexcept
{
	return words_at(const_cast<rr_shared_table &>(table), word_offset);
}

size_t header_offset() noexcept
{
	return 0;
}

size_t pick_offset() noexcept
{
	return kHeaderWords;
}

size_t candidate_offset(uint32_t index) noexcept
{
	return kHeaderWords + kPickWords + static_cast<size_t>(index) * kCandidateWords;
}

size_t entry_offset(const rr_shared_table &table, uint32_t index) noexcept
{
	return kHeaderWords + kPickWords + static_cast<size_t>(table.capacity) * kCandidateWords +
	       static_cast<size_t>(index) * kEntryWords;
}

size_t total_words(uint32_t capacity) noexcept
{
	return kHeaderWords + kPickWords +
	       static_cast<size_t>(capacity) * (kCandidateWords + kEntryWords);
}

void store_words(uint64_t *dst, const void *src, size_t n_words) noexcept
{
	const unsigned char *bytes = static_cast<const unsigned char *>(src);
	for (size_t i = 0; i < n_words; ++i)
	{
		uint64_t word;
		std::memcpy(&word, bytes + i * kWord, kWord);
		std::atomic_ref<uint64_t>(dst[i]).store(word, std::memory_order_release);
	}
}

void load_words(void *dst, uint64_t *src, size_t n_words) noexcept
{
	unsigned char *bytes = static_cast<unsigned char *>(dst);
	for (size_t i = 0; i < n_words; ++i)
	{
		uint64_t word = std::atomic_ref<uint64_t>(src[i]).load(std::memory_order_acquire);
		std::memcpy(bytes + i * kWord, &word, kWord);
	}
}

/* Odd while a publication is under way.  If the previous writer died between
 * its two stores, the counter is already odd and is reused as is. */
uint64_t begin_write(rr_shared_table &table) noexcept
{
	uint64_t odd = table.sequence.load(std::memory_order_relaxed) | 1;
	table.sequence.store(odd, std::memory_order_relaxed);
	return odd;
}

void end_write(rr_shared_table &table, uint64_t odd) noexcept
{
	table.sequence.store(odd + 1, std::memory_order_release);
}

rr_table_header empty_header(uint64_t rounds, uint32_t capacity) noexcept
{
	rr_table_header header{};
	header.rounds = rounds;
	header.worker_pid = 0;
	header.round_started_at = RR_NO_TIME;
	header.published_at = RR_NO_TIME;
	header.round_duration_us = RR_NO_DURATION;
	header.primary_flush_lsn = 0;
	header.n_entries = 0;
	header.capacity = capacity;
	return header;
}

/* What a row says between a worker's start and its first publication. */
constexpr char kResetReason[] = "no verdict yet: the replroute worker restarted and has not "
                                "published its first round";

/* Unknown lag sorts after every known lag. */
int64_t lag_key(int64_t lag) noexcept
{
	return lag < 0 ? std::numeric_limits<int64_t>::max() : lag;
}

} // namespace

bool less_lagging(int64_t lag_bytes_a, int64_t lag_us_a, const char *name_a, int64_t lag_bytes_b,
                  int64_t lag_us_b, const char *name_b) noexcept
{
	if (lag_key(lag_bytes_a) != lag_key(lag_bytes_b))
		return lag_key(lag_bytes_a) < lag_key(lag_bytes_b);
	if (lag_key(lag_us_a) != lag_key(lag_us_b))
		return lag_key(lag_us_a) < lag_key(lag_us_b);
	return std::strncmp(name_a, name_b, RR_NAME_LEN) < 0;
}

namespace
{

using IndexVector = boost::container::small_vector<uint32_t, kInlineSort>;

/* Newest known replay position first; ties by name, then by index, so the
 * order (and with it round robin's) is stable while positions do not move. */
bool before_in_candidate_order(const rr_node_entry &a, uint32_t ia, const rr_node_entry &b,
                               uint32_t ib) noexcept
{
	if (a.known_replay_lsn != b.known_replay_lsn)
		return a.known_replay_lsn > b.known_replay_lsn;
	int by_name = std::strncmp(a.name, b.name, RR_NAME_LEN);
	if (by_name != 0)
		return by_name < 0;
	return ia < ib;
}

/* The candidates of entries, in order, into the table's candidate words. */
uint32_t store_candidates(rr_shared_table &table, std::span<const rr_node_entry> entries,
                          const IndexVector &order, const IndexVector &rank)
{
	uint64_t cumulative = 0;
	uint32_t best = 0;
	for (uint32_t c = 0; c < order.size(); ++c)
	{
		const rr_node_entry &entry = entries[order[c]];
		Candidate candidate{};
		candidate.known_replay_lsn = entry.known_replay_lsn;
		candidate.lag_bytes = entry.lag_bytes;
		candidate.lag_us = entry.lag_us;
		candidate.weight = entry.weight;
		cumulative += entry.weight > 0 ? static_cast<uint64_t>(entry.weight) : 0;
		candidate.cumulative_weight = cumulative;
		candidate.lag_rank = rank[c];
		if (rank[c] < rank[best])
			best = c;
		candidate.least_lag_upto = best;
		candidate.entry_index = order[c];
		copy_field(candidate.name, entry.name);
		store_words(words_at(table, candidate_offset(c)), &candidate, kCandidateWords);
	}
	return static_cast<uint32_t>(order.size());
}

} // namespace

size_t table_size(uint32_t capacity) noexcept
{
	return sizeof(rr_shared_table) + total_words(capacity) * kWord;
}

rr_shared_table *table_init(void *memory, uint32_t capacity) noexcept
{
	if (memory == nullptr || reinterpret_cast<uintptr_t>(memory) % alignof(rr_shared_table) != 0)
		return nullptr;
	rr_shared_table *table = new (memory) rr_shared_table{};
	table->capacity = capacity;
	size_t n_words = total_words(capacity);
	uint64_t *words = words_at(*table, 0);
	for (size_t i = 0; i < n_words; ++i)
		new (&words[i]) uint64_t(0);
	rr_table_header header = empty_header(0, capacity);
	store_words(words_at(*table, header_offset()), &header, kHeaderWords);
	/* Last, so that a process that checks the magic sees a formatted table. */
	std::atomic_ref<uint64_t>(table->magic).store(kTableMagic, std::memory_order_release);
	return table;
}

bool table_is_formatted(const rr_shared_table *table) noexcept
{
	return table != nullptr && std::atomic_ref<uint64_t>(const_cast<uint64_t &>(table->magic))
	                                   .load(std::memory_order_acquire) == kTableMagic;
}

void table_publish(rr_shared_table &table, const rr_table_header &header,
                   std::span<const rr_node_entry> entries, std::span<const uint8_t> changed,
                   const std::vector<uint32_t> *routable)
{
	uint32_t n =
	    entries.size() < table.capacity ? static_cast<uint32_t>(entries.size()) : table.capacity;
	rr_table_header stored = header;
	stored.n_entries = n;
	stored.capacity = table.capacity;

	/* Prepared before the write begins: sorting may allocate, and readers
	 * should wait for stores only. */
	IndexVector order, by_lag, rank;
	if (routable != nullptr)
	{
		for (uint32_t i : *routable)
			if (i < n)
				order.push_back(i);
	}
	else
		for (uint32_t i = 0; i < n; ++i)
			if (entries[i].routable)
				order.push_back(i);
	std::sort(order.begin(), order.end(),
	          [&](uint32_t a, uint32_t b)
	          { return before_in_candidate_order(entries[a], a, entries[b], b); });
	by_lag.resize(order.size());
	rank.resize(order.size());
	for (uint32_t c = 0; c < order.size(); ++c)
		by_lag[c] = c;
	std::sort(
	    by_lag.begin(), by_lag.end(),
	    [&](uint32_t a, uint32_t b)
	    {
		    const rr_node_entry &ea = entries[order[a]], &eb = entries[order[b]];
		    if (less_lagging(ea.lag_bytes, ea.lag_us, ea.name, eb.lag_bytes, eb.lag_us, eb.name))
			    return true;
		    if (less_lagging(eb.lag_bytes, eb.lag_us, eb.name, ea.lag_bytes, ea.lag_us, ea.name))
			    return false;
		    return a < b;
	    });
	for (uint32_t r = 0; r < by_lag.size(); ++r)
		rank[by_lag[r]] = r;

	uint64_t odd = begin_write(table);
	store_words(words_at(table, header_offset()), &stored, kHeaderWords);
	PickIndex pick{};
	pick.n_candidates = store_candidates(table, entries, order, rank);
	store_words(words_at(table, pick_offset()), &pick, kPickWords);
	for (uint32_t i = 0; i < n; ++i)
	{
		if (i >= changed.size() || changed[i] != 0)
			store_words(words_at(table, entry_offset(table, i)), &entries[i], kEntryWords);
	}
	end_write(table, odd);
}

void table_reset(rr_shared_table &table) noexcept
{
	rr_table_header last = table_last_header(table);
	rr_table_header header = empty_header(last.rounds, table.capacity);
	bool torn = (table.sequence.load(std::memory_order_relaxed) & 1) != 0;
	uint32_t n = torn ? 0 : std::min(last.n_entries, table.capacity);
	header.n_entries = n;

	/* The writer reads its own words: no seqlock needed, nobody else writes. */
	uint64_t odd = begin_write(table);
	store_words(words_at(table, header_offset()), &header, kHeaderWords);
	PickIndex pick{};
	store_words(words_at(table, pick_offset()), &pick, kPickWords);
	for (uint32_t i = 0; i < n; ++i)
	{
		rr_node_entry entry;
		load_words(&entry, words_at(table, entry_offset(table, i)), kEntryWords);
		entry.state = RR_STATE_UNKNOWN;
		entry.routable = false;
		entry.state_since = RR_NO_TIME;
		copy_text(entry.reason, sizeof entry.reason, kResetReason, sizeof kResetReason);
		store_words(words_at(table, entry_offset(table, i)), &entry, kEntryWords);
	}
	end_write(table, odd);
}

rr_table_header table_last_header(const rr_shared_table &table) noexcept
{
	rr_table_header header;
	load_words(&header, words_at(table, header_offset()), kHeaderWords);
	return header;
}

rr_table_header TableReader::header() const noexcept
{
	rr_table_header header;
	load_words(&header, words_at(table_, header_offset()), kHeaderWords);
	return header;
}

void TableReader::candidate_metrics(uint32_t index, Candidate &out) const noexcept
{
	load_words(&out, words_at(table_, candidate_offset(index)), kCandidateMetricWords);
}

void TableReader::candidate_name(uint32_t index, char (&name)[RR_NAME_LEN]) const noexcept
{
	load_words(name, words_at(table_, candidate_offset(index)) + kCandidateMetricWords,
	           kCandidateWords - kCandidateMetricWords);
}

void TableReader::entry(uint32_t index, rr_node_entry &out) const noexcept
{
	load_words(&out, words_at(table_, entry_offset(table_, index)), kEntryWords);
	out.observed_at = static_cast<rr_timestamp>(
	    std::atomic_ref<uint64_t>(*(words_at(table_, header_offset()) + kPublishedAtWord))
	        .load(std::memory_order_acquire));
}

void read_backoff(unsigned attempt) noexcept
{
	if (attempt < kReadSpins)
	{
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#elif defined(__aarch64__)
		asm volatile("yield");
#endif
	}
	else
		std::this_thread::yield();
}

} // namespace replroute
