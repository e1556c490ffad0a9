/*
 * event_log.cpp -- the ring of events and its JSON; the protocol is in
 * event_log.hpp.
 */
#include "event_log.hpp"

#include "text.hpp"

#include <cstdio>
#include <new>

namespace replroute
{

namespace
{

constexpr size_t kWord = sizeof(uint64_t);
constexpr size_t kEventWords = sizeof(rr_event) / kWord;
constexpr size_t kSlotWords = 1 + kEventWords; /* version, then the event */

uint64_t *slot_at(const rr_event_log &log, uint64_t seq) noexcept
{
	/* Only ever accessed atomically; see words_at in shared_table.cpp. */
	auto *base = reinterpret_cast<uint64_t *>(reinterpret_cast<unsigned char *>(
	                                              const_cast<rr_event_log *>(&log)) +
	                                          sizeof(rr_event_log));
	return base + static_cast<size_t>((seq - 1) % log.capacity) * kSlotWords;
}

std::atomic_ref<uint64_t> version_of(uint64_t *slot) noexcept
{
	return std::atomic_ref<uint64_t>(slot[0]);
}

void store_words(uint64_t *dst, const void *src, size_t n_words) noexcept
{
	const auto *bytes = static_cast<const unsigned char *>(src);
	for (size_t i = 0; i < n_words; ++i)
	{
		uint64_t word;
		std::memcpy(&word, bytes + i * kWord, kWord);
		std::atomic_ref<uint64_t>(dst[i]).store(word, std::memory_order_release);
	}
}

void load_words(void *dst, uint64_t *src, size_t n_words) noexcept
{
	auto *bytes = static_cast<unsigned char *>(dst);
	for (size_t i = 0; i < n_words; ++i)
	{
		uint64_t word = std::atomic_ref<uint64_t>(src[i]).load(std::memory_order_acquire);
		std::memcpy(bytes + i * kWord, &word, kWord);
	}
}

/* A single seq: true with out filled, or false with gone = the slot already
 * holds a later event; false with !gone means it stayed busy. */
bool read_one(const rr_event_log &log, uint64_t seq, rr_event &out, bool &gone) noexcept
{
	uint64_t *slot = slot_at(log, seq);
	const uint64_t want = 2 * seq;
	gone = false;
	for (unsigned attempt = 0; attempt < kReadAttempts; ++attempt)
	{
		uint64_t before = version_of(slot).load(std::memory_order_acquire);
		if (before > want)
		{
			gone = true;
			return false;
		}
		if (before == want)
		{
			load_words(&out, slot + 1, kEventWords);
			if (version_of(slot).load(std::memory_order_relaxed) == before)
				return true;
		}
		read_backoff(attempt);
	}
	return false;
}

class JsonWriter
{
public:
	JsonWriter(char *buffer, size_t size) noexcept : buffer_(buffer), size_(size) {}

	void raw(std::string_view text) noexcept
	{
		for (char c : text)
			put(c);
	}

	void string_or_null(std::string_view text) noexcept
	{
		if (text.empty())
		{
			raw("null");
			return;
		}
		put('"');
		for (unsigned char c : text)
		{
			switch (c)
			{
				case '"': raw("\\\""); break;
				case '\\': raw("\\\\"); break;
				case '\n': raw("\\n"); break;
				case '\r': raw("\\r"); break;
				case '\t': raw("\\t"); break;
				default:
					if (c < 0x20 || c == 0x7f)
					{
						char escaped[8];
						std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
						raw(escaped);
					}
					else
						put(static_cast<char>(c));
			}
		}
		put('"');
	}

	bool finish() noexcept
	{
		if (size_ == 0)
			return false;
		buffer_[used_ < size_ ? used_ : size_ - 1] = '\0';
		return used_ < size_;
	}

private:
	void put(char c) noexcept
	{
		if (used_ + 1 < size_)
			buffer_[used_] = c;
		++used_;
	}

	char *buffer_;
	size_t size_;
	size_t used_ = 0;
};

} // namespace

size_t event_log_size(uint32_t capacity) noexcept
{
	return sizeof(rr_event_log) + static_cast<size_t>(capacity) * kSlotWords * kWord;
}

rr_event_log *event_log_init(void *memory, uint32_t capacity) noexcept
{
	if (memory == nullptr || capacity == 0 ||
	    reinterpret_cast<uintptr_t>(memory) % alignof(rr_event_log) != 0)
		return nullptr;
	auto *log = new (memory) rr_event_log{};
	log->capacity = capacity;
	auto *words = reinterpret_cast<uint64_t *>(static_cast<unsigned char *>(memory) +
	                                           sizeof(rr_event_log));
	for (size_t i = 0; i < static_cast<size_t>(capacity) * kSlotWords; ++i)
		new (&words[i]) uint64_t(0);
	std::atomic_ref<uint64_t>(log->magic).store(kEventLogMagic, std::memory_order_release);
	return log;
}

bool event_log_is_formatted(const rr_event_log *log) noexcept
{
	return log != nullptr && std::atomic_ref<uint64_t>(const_cast<uint64_t &>(log->magic))
	                                 .load(std::memory_order_acquire) == kEventLogMagic;
}

uint64_t event_log_append(rr_event_log &log, rr_event event) noexcept
{
	uint64_t seq = log.last_seq.load(std::memory_order_relaxed) + 1;
	event.seq = seq;
	uint64_t *slot = slot_at(log, seq);
	version_of(slot).store(2 * seq - 1, std::memory_order_relaxed);
	store_words(slot + 1, &event, kEventWords);
	version_of(slot).store(2 * seq, std::memory_order_release);
	log.last_seq.store(seq, std::memory_order_release);
	return seq;
}

bool event_log_read(const rr_event_log &log, uint64_t after_seq, rr_event *events,
                    uint32_t max_events, uint32_t &n_events) noexcept
{
	n_events = 0;
	uint64_t last = log.last_seq.load(std::memory_order_acquire);
	uint64_t oldest = last > log.capacity ? last - log.capacity + 1 : 1;
	uint64_t seq = after_seq + 1 > oldest ? after_seq + 1 : oldest;
	for (; seq <= last && n_events < max_events; ++seq)
	{
		bool gone = false;
		if (read_one(log, seq, events[n_events], gone))
			++n_events;
		else if (!gone)
			return false;
	}
	return true;
}

bool event_json(const rr_event &event, char *buffer, size_t size) noexcept
{
	JsonWriter json(buffer, size);
	char number[32];
	std::snprintf(number, sizeof(number), "%llu", static_cast<unsigned long long>(event.seq));
	json.raw("{\"seq\":");
	json.raw(number);
	json.raw(",\"node\":");
	json.string_or_null(field_view(event.node));
	json.raw(",\"from\":");
	json.string_or_null(field_view(event.from_state));
	json.raw(",\"to\":");
	json.string_or_null(field_view(event.to_state));
	json.raw(",\"reason\":");
	json.string_or_null(field_view(event.reason));
	json.raw("}");
	return json.finish();
}

} // namespace replroute
