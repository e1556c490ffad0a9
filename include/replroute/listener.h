/*
 * listener.h -- the boundary between the listener worker (src/pg/listener.c)
 * and the core's answers to HAProxy's agent check and to HTTP requests
 * (src/core/listen_*.cpp).
 *
 * The shim owns the sockets: it accepts, reads a request into a bounded
 * buffer, asks rr_listen_scan() whether the request is complete, takes a
 * snapshot of the shared table (rr_table_snapshot) and asks rr_listen_reply()
 * for the bytes to send back.  Everything a reply says is decided here, from
 * the snapshot only: the listener needs no database connection and nothing it
 * is asked can change anything.
 */
#ifndef REPLROUTE_LISTENER_H
#define REPLROUTE_LISTENER_H

#include "replroute/replroute.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rr_listen_protocol
{
	RR_LISTEN_AGENT = 0, /* HAProxy agent check: one line in, one line out */
	RR_LISTEN_HTTP,      /* HTTP/1.0 and 1.1, one GET or HEAD per connection */
	RR_LISTEN_PROTOCOL_COUNT_
} rr_listen_protocol;

/* The most a request may hold, terminator included; more is refused. */
#define RR_AGENT_REQUEST_MAX 128
#define RR_HTTP_REQUEST_MAX 8192

typedef enum rr_listen_scan_result
{
	RR_SCAN_INCOMPLETE = 0, /* read more */
	RR_SCAN_COMPLETE,       /* the request ends within the buffer */
	RR_SCAN_TOO_LONG        /* the buffer is full and the request has not ended */
} rr_listen_scan_result;

/* Has the request in buffer[0, length) ended?  (Agent: a newline; HTTP: the
 * empty line after the headers.) */
rr_listen_scan_result rr_listen_scan(rr_listen_protocol protocol, const char *buffer,
                                     size_t length) RR_NOEXCEPT;

/* Why a reply is built. */
typedef enum rr_listen_event
{
	RR_EVENT_REQUEST = 0, /* a complete request (or the peer closed after sending some) */
	RR_EVENT_TOO_LONG,    /* longer than the protocol's maximum */
	RR_EVENT_TIMEOUT,     /* no complete request before the connection's deadline */
	RR_EVENT_BUSY         /* refused: every connection slot is taken */
} rr_listen_event;

/* What the listener counts of itself, per protocol (for /metrics). */
typedef struct rr_listen_stats
{
	uint64_t accepted[RR_LISTEN_PROTOCOL_COUNT_];
	uint64_t refused[RR_LISTEN_PROTOCOL_COUNT_];  /* every slot taken */
	uint64_t answered[RR_LISTEN_PROTOCOL_COUNT_]; /* a reply to a well-formed request */
	uint64_t rejected[RR_LISTEN_PROTOCOL_COUNT_]; /* malformed or oversized */
	uint64_t timed_out[RR_LISTEN_PROTOCOL_COUNT_];
	uint32_t open_connections;
	uint32_t max_connections;
	bool listening[RR_LISTEN_PROTOCOL_COUNT_];
} rr_listen_stats;

/* Everything a reply may look at: a consistent snapshot of the table. */
typedef struct rr_listen_view
{
	const rr_table_header *header;
	const rr_node_entry *entries;
	uint32_t n_entries;
	rr_timestamp now;          /* the same clock as the table's times */
	int64_t stale_after_us;    /* replroute.stale_after */
	bool worker_running;       /* the observing worker's pid is set */
	const rr_listen_stats *stats;
} rr_listen_view;

/* The bytes to send for event (request: what was read, may be partial for
 * RR_EVENT_TIMEOUT); *reply is allocated with malloc and freed with
 * rr_listen_free(); *rejected (may be NULL) tells whether the request was
 * malformed.  Never fails on hostile input (that gets an error reply); fails
 * only for NULL arguments or out of memory. */
rr_status rr_listen_reply(rr_listen_protocol protocol, rr_listen_event event, const char *request,
                          size_t length, const rr_listen_view *view, char **reply,
                          size_t *reply_length, bool *rejected, rr_error *error) RR_NOEXCEPT;
void rr_listen_free(char *reply) RR_NOEXCEPT;

/* The percentage an agent reply gives a routable node of weight `weight`,
 * for a server line with `weight 100`: the weight itself while every
 * registered weight is at most 256 (HAProxy's cap), otherwise scaled so that
 * max_weight maps to 256; never below 1. */
int32_t rr_agent_weight_percent(int32_t weight, int32_t max_weight) RR_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* REPLROUTE_LISTENER_H */
