/*
 * event_log.hpp -- the ring of state changes the worker appends to and every
 * backend reads (replroute_events, and the worker's own NOTIFY).
 *
 * Layout (one block of shared memory, no pointers):
 *
 *   rr_event_log   control block: magic, capacity, last_seq on its own line
 *   slots          capacity x (version word + rr_event words)
 *
 * Event seq s lives in slot (s - 1) % capacity.  The ring is formatted once,
 * at postmaster start, and is independent of the shared table: the worker
 * resets the table when it starts but never touches the ring, so the history
 * (and the seq counter) survives a worker restart.  A server restart
 * re-creates shared memory, and with it an empty ring.
 *
 * Protocol: a seqlock per slot, as in shared_table.hpp (read its comment for
 * why the orders below are enough), with the slot's version doubling as the
 * seq it holds.  One writer, the worker; readers never block it.
 *
 *   writer, appending s                 reader, wanting s (s <= last_seq)
 *   version = 2s - 1       (relaxed)    loop:
 *   event words            (release)      v1 = version           (acquire)
 *   version = 2s           (release)      v1 > 2s: overwritten, skip s
 *   last_seq = s           (release)      v1 != 2s: being written, retry
 *                                         event words            (acquire)
 *                                         v2 = version           (relaxed)
 *                                         v1 != v2: retry
 *
 * Readers load last_seq (acquire) first, so every seq up to it is complete or
 * overwritten by a later one; an odd version below 2s cannot stay (its writer
 * finished s before publishing last_seq), and one at 2s - 1 belongs to a
 * writer that died mid-append of a seq no reader asks for: the next writer
 * appends that same seq again.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

#include <atomic>
#include <cstdint>
#include <string_view>

#include "shared_table.hpp"

namespace replroute
{

static_assert(kWordCopyable<rr_event>);

inline constexpr uint64_t kEventLogMagic = 0x7265706c65766e01ULL; /* "replevn" + layout 1 */

size_t event_log_size(uint32_t capacity) noexcept;
rr_event_log *event_log_init(void *memory, uint32_t capacity) noexcept;
bool event_log_is_formatted(const rr_event_log *log) noexcept;

/* Writer side: assigns event.seq (the one it returns). */
uint64_t event_log_append(rr_event_log &log, rr_event event) noexcept;

/* Reader side; false when a slot stayed busy (a writer that cannot get a CPU). */
bool event_log_read(const rr_event_log &log, uint64_t after_seq, rr_event *events,
                    uint32_t max_events, uint32_t &n_events) noexcept;

/* rr_event_json's body; false when size is too small. */
bool event_json(const rr_event &event, char *buffer, size_t size) noexcept;

} // namespace replroute

struct rr_event_log
{
	uint64_t magic;
	uint32_t capacity;
	uint32_t reserved_;
	uint64_t pad0_[6];
	std::atomic<uint64_t> last_seq;
	uint64_t pad1_[7];
};
static_assert(sizeof(rr_event_log) == 128);
