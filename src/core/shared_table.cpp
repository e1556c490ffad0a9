/*
 * shared_table.cpp -- layout and seqlock of the shared table; the protocol is
 * described in shared_table.hpp.
 */
#include "shared_table.hpp"

#include "text.hpp"

#include <new>
#include <thread>

namespace replroute
{

namespace
{

constexpr size_t kWord = sizeof(uint64_t);
constexpr size_t kHeaderWords = sizeof(rr_table_header) / kWord;
constexpr size_t kRouteWords = sizeof(RouteRecord) / kWord;
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

size_t route_offset(uint32_t index) noexcept
{
	return kHeaderWords + static_cast<size_t>(index) * kRouteWords;
}

size_t entry_offset(const rr_shared_table &table, uint32_t index) noexcept
{
	return kHeaderWords + static_cast<size_t>(table.capacity) * kRouteWords +
	       static_cast<size_t>(index) * kEntryWords;
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

} // namespace

RouteRecord route_record_of(const rr_node_entry &entry) noexcept
{
	RouteRecord record{};
	record.lag_bytes = entry.lag_bytes;
	record.lag_us = entry.lag_us;
	record.known_replay_lsn = entry.known_replay_lsn;
	record.weight = entry.weight;
	record.routable = entry.routable ? 1 : 0;
	copy_field(record.name, entry.name);
	return record;
}

size_t table_size(uint32_t capacity) noexcept
{
	return sizeof(rr_shared_table) + kHeaderWords * kWord +
	       static_cast<size_t>(capacity) * (kRouteWords + kEntryWords) * kWord;
}

rr_shared_table *table_init(void *memory, uint32_t capacity) noexcept
{
	if (memory == nullptr || reinterpret_cast<uintptr_t>(memory) % alignof(rr_shared_table) != 0)
		return nullptr;
	rr_shared_table *table = new (memory) rr_shared_table{};
	table->capacity = capacity;
	size_t n_words = kHeaderWords + static_cast<size_t>(capacity) * (kRouteWords + kEntryWords);
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
                   std::span<const rr_node_entry> entries) noexcept
{
	uint32_t n =
	    entries.size() < table.capacity ? static_cast<uint32_t>(entries.size()) : table.capacity;
	rr_table_header stored = header;
	stored.n_entries = n;
	stored.capacity = table.capacity;

	uint64_t odd = begin_write(table);
	store_words(words_at(table, header_offset()), &stored, kHeaderWords);
	for (uint32_t i = 0; i < n; ++i)
	{
		RouteRecord record = route_record_of(entries[i]);
		store_words(words_at(table, route_offset(i)), &record, kRouteWords);
		store_words(words_at(table, entry_offset(table, i)), &entries[i], kEntryWords);
	}
	end_write(table, odd);
}

void table_reset(rr_shared_table &table) noexcept
{
	rr_table_header header = empty_header(table_last_header(table).rounds, table.capacity);
	table_publish(table, header, {});
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

void TableReader::route_metrics(uint32_t index, RouteRecord &out) const noexcept
{
	load_words(&out, words_at(table_, route_offset(index)), kRouteMetricWords);
}

void TableReader::route_name(uint32_t index, RouteRecord &out) const noexcept
{
	load_words(out.name, words_at(table_, route_offset(index)) + kRouteMetricWords,
	           kRouteWords - kRouteMetricWords);
}

void TableReader::entry(uint32_t index, rr_node_entry &out) const noexcept
{
	load_words(&out, words_at(table_, entry_offset(table_, index)), kEntryWords);
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
