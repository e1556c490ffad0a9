/*
 * shared_table.hpp -- the table the worker publishes and every backend reads.
 *
 * Layout (one block of PostgreSQL shared memory, mapped at the same address in
 * every process but holding no pointers, so it would survive a different one):
 *
 *   rr_shared_table   control block: magic, capacity, the sequence counter and
 *                     the round-robin counter, each on its own cache line
 *   header words      rr_table_header of the last publication
 *   route words       capacity x RouteRecord: what pick_reader needs, compact
 *   entry words       capacity x rr_node_entry: everything, for the views
 *
 * The arrays start at offsets computed from capacity (a runtime value), which
 * is the flexible-array layout written out by hand.
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

namespace replroute
{

/* What a backend needs to qualify and choose a node: pick_reader copies only
 * these 12 words per node, not the ~800 bytes of an rr_node_entry.  The four
 * words it tests come first, so a node that does not qualify costs 4 loads. */
struct RouteRecord
{
	int64_t lag_bytes;
	int64_t lag_us;
	rr_lsn known_replay_lsn;
	int32_t weight;
	uint32_t routable; /* 0 or 1; not bool, so the metrics words are plain integers */
	char name[RR_NAME_LEN];
};

inline constexpr size_t kRouteMetricWords = 4;

template <class T>
inline constexpr bool kWordCopyable = std::is_trivially_copyable_v<T> && alignof(T) == 8 &&
                                      sizeof(T) % sizeof(uint64_t) == 0;

static_assert(kWordCopyable<RouteRecord>);
static_assert(offsetof(RouteRecord, name) == kRouteMetricWords * sizeof(uint64_t));
static_assert(kWordCopyable<rr_node_entry>);
static_assert(kWordCopyable<rr_table_header>);
static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "the shared table needs address-free 64-bit atomics");

RouteRecord route_record_of(const rr_node_entry &entry) noexcept;

inline constexpr uint64_t kTableMagic = 0x7265706c726f7501ULL; /* "replrou" + layout 1 */

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

/* Writer side (the worker only). */
void table_publish(rr_shared_table &table, const rr_table_header &header,
                   std::span<const rr_node_entry> entries) noexcept;
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
	/* The four metric words; name is left untouched. */
	void route_metrics(uint32_t index, RouteRecord &out) const noexcept;
	void route_name(uint32_t index, RouteRecord &out) const noexcept;
	void entry(uint32_t index, rr_node_entry &out) const noexcept;

private:
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
