/*
 * shared_table.hpp -- the table the worker publishes and every backend reads.
 *
 * Layout (one block of PostgreSQL shared memory, mapped at the same address in
 * every process but holding no pointers, so it would survive a different one):
 *
 *   rr_shared_table   control block: magic, capacity, the sequence counter and
 *                     the round-robin counter, each on its own cache line
 *   header words      rr_table_header of the last publication
 *   pick words        PickIndex: how many candidates follow
 *   candidate words   capacity x Candidate: the routable entries only, what a
 *                     pick needs prepared (see below)
 *   entry words       capacity x rr_node_entry: everything, for the views
 *
 * The arrays start at offsets computed from capacity (a runtime value), which
 * is the flexible-array layout written out by hand.
 *
 * Candidates (layout 2).  A pick must cost the same with 1,024 registered
 * nodes as with 2 when only 2 are routable, so the writer prepares, with each
 * publication, the routable entries alone, ordered by known replay position
 * (newest first; ties by name), each with
 *   - cumulative_weight: the sum of the weights of candidates 0..i, so that a
 *     weighted pick among the first k is one scaled random number and a binary
 *     search;
 *   - lag_rank: its place in least-lag order (bytes, then time, unknown last,
 *     then name), and least_lag_upto: the candidate of lowest rank among 0..i;
 *   - entry_index: where its full entry is, for replroute_readers().
 * A request's min_lsn keeps a prefix of the candidates (a binary search; an
 * unknown position, 0, sorts last and never meets a min_lsn).  Per-call lag
 * bounds then filter that prefix, touching candidates only.
 *
 * Entries (layout 2): an entry's observed_at word is not written; readers
 * set it to the header's published_at, the time of the round that published
 * it.  So a publication rewrites only the entries that changed (the writer
 * knows which: table_publish's hints); the others' words stay as they were,
 * inside the same odd/even window, and a reader racing it retries as always.
 *
 * Reset keeps the rows (so the views never go
 * blank when a worker restarts) but withdraws every verdict -- each row
 * becomes unknown and unroutable, the candidates are emptied and the
 * publication time is cleared, so readers see RR_CAUSE_NO_DATA.
 *
 * Protocol: a sequence lock (seqlock).  One writer, the worker; any number of
 * readers, which never block it and never take a lock.
 *
 *   writer                              reader
 *   s = seq (odd if a writer died       loop:
 *       mid-write; it is reused)          s1 = seq            (acquire)
 *   seq = s | 1           (relaxed)       if s1 odd: back off, retry
 *   data words            (release)       data words          (acquire)
 *   seq = (s | 1) + 1     (release)       s2 = seq            (relaxed)
 *                                         if s1 != s2: back off, retry
 *
 * Every data word is a uint64_t accessed only through std::atomic_ref, so a
 * reader racing the writer reads some mix of old and new words -- never a
 * torn word and never a data race in the C++ memory model (TSan agrees).
 * The mix is discarded because:
 *   - a reader whose s1 came from the writer's final release store sees every
 *     data word of that publication (acquire/release on seq);
 *   - a reader that loads any word of a later publication synchronises with
 *     that release store, which comes after the writer's odd store to seq, so
 *     its s2 load (after its acquire data loads, which later loads cannot pass)
 *     sees the odd value or a later one, and s1 != s2.
 * This is Boehm's seqlock ("Can seqlocks get along with programming language
 * memory models?", 2012) with the fences folded into the data accesses:
 * release stores and acquire loads are plain moves on x86-64 and cost nothing,
 * and GCC's ThreadSanitizer refuses stand-alone fences.
 *
 * Readers retry a bounded number of times (spin with a pause, then yield);
 * a reader that gives up treats the table as unusable (stale).  The
 * round-robin counter is independent of the seqlock: readers fetch_add it.
 *
 * Entries are trivially copyable, 8-byte aligned, a multiple of 8 bytes long
 * (static_asserts below), so they copy word for word.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

namespace replroute
{

/* A routable entry as a pick needs it; see "Candidates" above.  The words
 * a pick tests come first, the name (copied only for the chosen one) last. */
struct Candidate
{
	rr_lsn known_replay_lsn;
	int64_t lag_bytes;
	int64_t lag_us;
	uint64_t cumulative_weight;
	int32_t weight;
	uint32_t lag_rank;
	uint32_t entry_index;
	uint32_t least_lag_upto;
	char name[RR_NAME_LEN];
};

struct PickIndex
{
	uint64_t n_candidates;
};

inline constexpr size_t kCandidateMetricWords = 6;

template <class T>
inline constexpr bool kWordCopyable = std::is_trivially_copyable_v<T> && alignof(T) == 8 &&
                                      sizeof(T) % sizeof(uint64_t) == 0;

static_assert(kWordCopyable<Candidate>);
static_assert(kWordCopyable<PickIndex>);
static_assert(offsetof(Candidate, name) == kCandidateMetricWords * sizeof(uint64_t));
static_assert(kWordCopyable<rr_node_entry>);
static_assert(kWordCopyable<rr_table_header>);
static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "the shared table needs address-free 64-bit atomics");

/* Least-lag order: lag in bytes, then in time (unknown after every known
 * value), then name. */
bool less_lagging(int64_t lag_bytes_a, int64_t lag_us_a, const char *name_a, int64_t lag_bytes_b,
                  int64_t lag_us_b, const char *name_b) noexcept;

inline constexpr uint64_t kTableMagic = 0x7265706c726f7502ULL; /* "replrou" + layout 2 */

/* Give up a read after this many attempts: first spins, then yields.  A
 * publication takes microseconds, so reaching the limit means the writer died
 * halfway (until the next worker resets the table) or cannot get a CPU. */
inline constexpr unsigned kReadSpins = 64;
inline constexpr unsigned kReadAttempts = kReadSpins + 100000;

} // namespace replroute

/* The control block at the start of the shared memory; the name is the
 * boundary's opaque type. */
struct rr_shared_table
{
	uint64_t magic;
	uint32_t capacity;
	uint32_t reserved_;
	uint64_t pad0_[6];
	/* Readers load it on every read and the writer stores it twice per round;
	 * keep it off the line that every pick_reader writes to. */
	std::atomic<uint64_t> sequence;
	uint64_t pad1_[7];
	std::atomic<uint64_t> round_robin;
	uint64_t pad2_[7];
};
static_assert(sizeof(rr_shared_table) == 192);
static_assert(alignof(rr_shared_table) == 8);

namespace replroute
{

size_t table_size(uint32_t capacity) noexcept;
/* nullptr when memory is NULL or not 8-byte aligned. */
rr_shared_table *table_init(void *memory, uint32_t capacity) noexcept;
bool table_is_formatted(const rr_shared_table *table) noexcept;

/* Writer side (the worker only).  table_publish prepares the candidates of
 * the routable entries; it allocates only beyond kInlineSort of them (and may
 * then throw std::bad_alloc, before it touched the table). */
inline constexpr size_t kInlineSort = 64;
/* An entry's observed_at is not stored: it is the publication's time, and
 * readers take it from the header (published_at).  So an entry that did not
 * change is not rewritten at all.  Hints from a caller that knows (the
 * evaluator, which remembers what it published last), each vouched for:
 *   changed: empty, or one flag per entry, 0 where the entry is the one the
 *            table holds at that index from the previous publication (but
 *            for observed_at);
 *   routable: nullptr, or the indexes of the routable entries, so that the
 *            candidates are found without reading every entry. */
void table_publish(rr_shared_table &table, const rr_table_header &header,
                   std::span<const rr_node_entry> entries, std::span<const uint8_t> changed = {},
                   const std::vector<uint32_t> *routable = nullptr);
/* Withdraws every verdict but keeps the rows (see "reset" above).  Rows a
 * writer left half-written (the sequence is odd: it died mid-publication)
 * are not trusted and dropped. */
void table_reset(rr_shared_table &table) noexcept;
/* The writer's own last header; no seqlock needed, nobody else writes. */
rr_table_header table_last_header(const rr_shared_table &table) noexcept;

/* Reader side: the accessors may be called only inside read_consistent()'s
 * body, whose results are meaningful only if it returns true. */
class TableReader
{
public:
	explicit TableReader(const rr_shared_table &table) noexcept : table_(table) {}

	/* Runs body() until it ran without a concurrent publication.  body must
	 * tolerate any mix of words (it may see garbage) and only remember what
	 * it found, which the caller uses once this returns true. */
	template <class Body>
	bool read_consistent(Body &&body) const;

	rr_table_header header() const noexcept;
	/* At most the capacity, whatever the words say. */
	uint32_t candidate_count() const noexcept
	{
		uint64_t n = word(kHeaderWords);
		return n < table_.capacity ? static_cast<uint32_t>(n) : table_.capacity;
	}
	/* Single words of candidate index (< capacity); inline, since a pick
	 * reads them in its loops. */
	rr_lsn candidate_lsn(uint32_t index) const noexcept
	{
		return word(candidate_word(index, offsetof(Candidate, known_replay_lsn)));
	}
	uint64_t candidate_cumulative_weight(uint32_t index) const noexcept
	{
		return word(candidate_word(index, offsetof(Candidate, cumulative_weight)));
	}
	uint32_t candidate_least_lag_upto(uint32_t index) const noexcept
	{
		Candidate c;
		put(c, offsetof(Candidate, entry_index),
		    word(candidate_word(index, offsetof(Candidate, entry_index))));
		return c.least_lag_upto;
	}
	/* The metric words (everything but the name); name is left untouched. */
	void candidate_metrics(uint32_t index, Candidate &out) const noexcept;
	/* Only lag_bytes and lag_us; only weight and lag_rank. */
	void candidate_lags(uint32_t index, Candidate &out) const noexcept
	{
		put(out, offsetof(Candidate, lag_bytes),
		    word(candidate_word(index, offsetof(Candidate, lag_bytes))));
		put(out, offsetof(Candidate, lag_us),
		    word(candidate_word(index, offsetof(Candidate, lag_us))));
	}
	void candidate_weight_rank(uint32_t index, Candidate &out) const noexcept
	{
		put(out, offsetof(Candidate, weight),
		    word(candidate_word(index, offsetof(Candidate, weight))));
	}
	void candidate_name(uint32_t index, char (&name)[RR_NAME_LEN]) const noexcept;
	void entry(uint32_t index, rr_node_entry &out) const noexcept;

	/* Word offsets from the end of the control block (shared_table.cpp). */
	static constexpr size_t kHeaderWords = sizeof(rr_table_header) / sizeof(uint64_t);
	static constexpr size_t kPickWords = sizeof(PickIndex) / sizeof(uint64_t);
	static constexpr size_t kCandidateWords = sizeof(Candidate) / sizeof(uint64_t);

private:
	static size_t candidate_word(uint32_t index, size_t byte_offset) noexcept
	{
		return kHeaderWords + kPickWords + static_cast<size_t>(index) * kCandidateWords +
		       byte_offset / sizeof(uint64_t);
	}
	uint64_t word(size_t offset) const noexcept
	{
		/* Only ever accessed atomically; atomic_ref<const T> is not C++20. */
		auto *words = reinterpret_cast<uint64_t *>(const_cast<unsigned char *>(
		    reinterpret_cast<const unsigned char *>(&table_) + sizeof(rr_shared_table)));
		return std::atomic_ref<uint64_t>(words[offset]).load(std::memory_order_acquire);
	}
	/* A word into the candidate at an 8-byte aligned offset: the field there
	 * and, for 4-byte fields, the one that shares its word. */
	static void put(Candidate &candidate, size_t byte_offset, uint64_t value) noexcept
	{
		std::memcpy(reinterpret_cast<unsigned char *>(&candidate) + byte_offset, &value,
		            sizeof value);
	}

	const rr_shared_table &table_;
};

void read_backoff(unsigned attempt) noexcept;

template <class Body>
bool TableReader::read_consistent(Body &&body) const
{
	for (unsigned attempt = 0; attempt < kReadAttempts; ++attempt)
	{
		uint64_t before = table_.sequence.load(std::memory_order_acquire);
		if ((before & 1) == 0)
		{
			body();
			if (table_.sequence.load(std::memory_order_relaxed) == before)
				return true;
		}
		read_backoff(attempt);
	}
	return false;
}

} // namespace replroute
