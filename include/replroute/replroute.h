/*
 * replroute.h -- the boundary between the C shims (src/pg) and the C++ core
 * (src/core).
 *
 * Everything here is plain C: fixed-size structs, enums, status codes.  The
 * shims include it next to postgres.h; the core includes it without.  Every
 * function is noexcept on the C++ side and reports failure through rr_status
 * plus an rr_error message, which the shim turns into ereport().  Nothing in
 * the core raises a PostgreSQL error and no C++ exception crosses this line.
 *
 * Times are microseconds in the TimestampTz epoch (the core never looks at the
 * epoch, only at differences).  LSNs are XLogRecPtr values.
 */
#ifndef REPLROUTE_REPLROUTE_H
#define REPLROUTE_REPLROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define RR_NOEXCEPT noexcept
extern "C" {
#else
#define RR_NOEXCEPT
#endif

/* Sizes include the terminating NUL. */
#define RR_NAME_LEN 64        /* NAMEDATALEN: node, application and slot names */
#define RR_HOST_LEN 256       /* host name, address or socket directory */
#define RR_ADDR_LEN 64        /* client_addr as text */
#define RR_SYNC_STATE_LEN 16  /* async, potential, sync, quorum */
#define RR_REASON_LEN 160     /* human-readable reason for a state */
#define RR_ERROR_LEN 256

#define RR_MAX_NODES_LIMIT 1024 /* upper bound of replroute.max_nodes */
#define RR_MAX_WEIGHT 1000000

typedef uint64_t rr_lsn;       /* 0 = invalid / unknown */
typedef int64_t rr_timestamp;  /* RR_NO_TIME = unknown */
#define RR_NO_TIME INT64_MIN
#define RR_NO_DURATION ((int64_t) -1) /* a duration or size that is unknown */
#define RR_NO_LIMIT ((int64_t) -1)    /* a bound that is switched off */

typedef enum rr_status
{
	RR_OK = 0,
	RR_ERR_NULL,         /* a required argument is NULL */
	RR_ERR_INVALID,      /* an argument is out of its domain */
	RR_ERR_TOO_LONG,     /* a string is longer than its field */
	RR_ERR_CAPACITY,     /* more entries than the table holds */
	RR_ERR_NOT_READY,    /* the shared table has never been published */
	RR_ERR_INTERNAL      /* an exception or broken invariant in the core */
} rr_status;

typedef struct rr_error
{
	rr_status status;
	char message[RR_ERROR_LEN];
} rr_error;

/* Health of one node; rr_state_name() gives the SQL-visible words. */
typedef enum rr_node_state
{
	RR_STATE_UNKNOWN = 0,      /* no data, stale data, or this server is a standby */
	RR_STATE_HEALTHY,          /* streaming and within every bound: routable */
	RR_STATE_LAGGING,          /* streaming but past a lag bound */
	RR_STATE_CATCHUP,          /* walsender in startup/catchup/backup */
	RR_STATE_DISCONNECTED,     /* no walsender for its application_name */
	RR_STATE_STALLED,          /* walsender present, no reply while WAL is pending */
	RR_STATE_UNREACHABLE,      /* client-side probe failed or timed out */
	RR_STATE_NOT_IN_RECOVERY,  /* the probe's answer: pg_is_in_recovery() is false */
	RR_STATE_SLOT_LOST,        /* its replication slot has wal_status = lost */
	RR_STATE_DRAINED,          /* taken out by an operator */
	RR_STATE_UNREGISTERED,     /* a walsender that matches no registered node */
	RR_STATE_RECOVERING,       /* healthy again, but not yet for replroute.recovery_hold */
	RR_STATE_COUNT_
} rr_node_state;

typedef enum rr_walsender_state
{
	RR_WS_NONE = 0, /* no walsender */
	RR_WS_STARTUP,
	RR_WS_CATCHUP,
	RR_WS_STREAMING,
	RR_WS_BACKUP,
	RR_WS_STOPPING,
	RR_WS_COUNT_
} rr_walsender_state;

typedef enum rr_wal_status
{
	RR_WAL_NONE = 0, /* no slot, or wal_status is NULL */
	RR_WAL_RESERVED,
	RR_WAL_EXTENDED,
	RR_WAL_UNRESERVED,
	RR_WAL_LOST,
	RR_WAL_COUNT_
} rr_wal_status;

typedef enum rr_policy
{
	RR_POLICY_WEIGHTED = 0,
	RR_POLICY_ROUND_ROBIN,
	RR_POLICY_LEAST_LAG
} rr_policy;

/* Names shown in SQL; never NULL (an out-of-range value gives "invalid"). */
const char *rr_state_name(rr_node_state state) RR_NOEXCEPT;
const char *rr_walsender_state_name(rr_walsender_state state) RR_NOEXCEPT;
const char *rr_wal_status_name(rr_wal_status status) RR_NOEXCEPT;
/* Parse the text of pg_stat_replication.state / pg_replication_slots.wal_status;
 * NULL or unknown text gives RR_WS_NONE / RR_WAL_NONE. */
rr_walsender_state rr_parse_walsender_state(const char *text) RR_NOEXCEPT;
rr_wal_status rr_parse_wal_status(const char *text) RR_NOEXCEPT;

/* ---------------------------------------------------------------------------
 * Client-side probes: one per registered node, driven by the worker.
 *
 * The core holds each target's state machine; the shim (src/pg/probe.c) holds
 * the libpq connection and does what rr_probe_poll() asks, reporting back
 * with the rr_probe_on_* events.  Times are the worker's clock.
 * ------------------------------------------------------------------------- */
typedef enum rr_probe_state
{
	RR_PROBE_OFF = 0,        /* probes switched off (replroute.probe = off) */
	RR_PROBE_IDLE,           /* no connection yet */
	RR_PROBE_CONNECTING,     /* connection being established, deadline running */
	RR_PROBE_QUERYING,       /* query sent, deadline running */
	RR_PROBE_OK,             /* connected, waiting for the next interval */
	RR_PROBE_BACKOFF,        /* dropped after a failure, waiting to reconnect */
	RR_PROBE_STATE_COUNT_
} rr_probe_state;

/* The last conclusion a probe reached. */
typedef enum rr_probe_outcome
{
	RR_PROBE_PENDING = 0,    /* nothing concluded yet (or probes off) */
	RR_PROBE_ANSWERED,       /* the last exchange was answered */
	RR_PROBE_FAILED          /* the last connection or query failed or timed out */
} rr_probe_outcome;

typedef enum rr_probe_action
{
	RR_PROBE_DO_NOTHING = 0,
	RR_PROBE_DO_CONNECT,     /* start a connection (PQconnectStartParams) */
	RR_PROBE_DO_SEND,        /* send the probe query */
	RR_PROBE_DO_DROP         /* close the connection (the machine recorded why) */
} rr_probe_action;

typedef struct rr_probe_settings
{
	int64_t interval_us;     /* replroute.probe_interval */
	int64_t timeout_us;      /* replroute.probe_timeout */
} rr_probe_settings;

/* What a round's health evaluation learns from a node's probe. */
typedef struct rr_probe_obs
{
	rr_probe_state state;
	rr_probe_outcome outcome;
	bool in_recovery;         /* valid when outcome == RR_PROBE_ANSWERED */
	rr_lsn replay_lsn;        /* last answer's pg_last_wal_replay_lsn(); 0 if NULL */
	bool replay_lsn_fresh;    /* answered recently enough to vouch for replay_lsn */
	rr_timestamp answered_at; /* RR_NO_TIME: never answered */
	/* Nonzero: names the text of reason -- two observations with the same
	 * nonzero serial carry the same text, so a reader that kept one need not
	 * compare the texts.  rr_probe_observe() sets it; 0: unknown. */
	uint64_t reason_serial;
	char reason[RR_REASON_LEN]; /* why it failed, when outcome == RR_PROBE_FAILED */
} rr_probe_obs;

typedef struct rr_probe_target rr_probe_target;

rr_probe_target *rr_probe_create(rr_error *error) RR_NOEXCEPT;
void rr_probe_destroy(rr_probe_target *target) RR_NOEXCEPT;
/* What the shim must do now; a deadline that passed yields RR_PROBE_DO_DROP. */
rr_probe_action rr_probe_poll(rr_probe_target *target, rr_timestamp now,
                              const rr_probe_settings *settings) RR_NOEXCEPT;
/* When rr_probe_poll() next has something to do; RR_NO_TIME: at once. */
rr_timestamp rr_probe_next_deadline(const rr_probe_target *target,
                                    const rr_probe_settings *settings) RR_NOEXCEPT;
void rr_probe_on_connected(rr_probe_target *target, rr_timestamp now) RR_NOEXCEPT;
void rr_probe_on_answer(rr_probe_target *target, rr_timestamp now, bool in_recovery,
                        rr_lsn replay_lsn) RR_NOEXCEPT;
/* A failure libpq reported (message: its text, only the first line is kept);
 * the shim closes the connection itself. */
void rr_probe_on_failure(rr_probe_target *target, rr_timestamp now,
                         const char *message) RR_NOEXCEPT;
void rr_probe_observe(const rr_probe_target *target, rr_timestamp now,
                      const rr_probe_settings *settings, rr_probe_obs *obs) RR_NOEXCEPT;
const char *rr_probe_state_name(rr_probe_state state) RR_NOEXCEPT;

/* ---------------------------------------------------------------------------
 * Inputs of one worker round
 * ------------------------------------------------------------------------- */

/* A row of the registry table. */
typedef struct rr_node_config
{
	char name[RR_NAME_LEN];
	char host[RR_HOST_LEN];
	int32_t port;
	int32_t weight;
	char application_name[RR_NAME_LEN]; /* already defaulted to name */
	bool drained;
} rr_node_config;

/* A row of pg_stat_replication. */
typedef struct rr_walsender_obs
{
	int32_t pid;
	rr_walsender_state state;
	char application_name[RR_NAME_LEN];
	char client_addr[RR_ADDR_LEN]; /* "" when NULL (unix socket) */
	char sync_state[RR_SYNC_STATE_LEN];
	rr_lsn sent_lsn, write_lsn, flush_lsn, replay_lsn; /* 0 when NULL */
	int64_t write_lag_us, flush_lag_us, replay_lag_us; /* RR_NO_DURATION when NULL */
	rr_timestamp reply_time;                           /* RR_NO_TIME when NULL */
} rr_walsender_obs;

/* A physical row of pg_replication_slots. */
typedef struct rr_slot_obs
{
	char slot_name[RR_NAME_LEN];
	bool active;
	int32_t active_pid; /* 0 when NULL */
	rr_wal_status wal_status;
	rr_lsn restart_lsn;
} rr_slot_obs;

typedef struct rr_round_input
{
	rr_timestamp started_at;   /* when the round began reading */
	rr_timestamp now;          /* when the observation was complete */
	int32_t worker_pid;
	bool in_recovery;          /* this server is itself a standby */
	bool registry_available;   /* the extension exists in replroute.database */
	rr_lsn primary_flush_lsn;  /* this server's flushed WAL end; 0 on a standby */
	const rr_node_config *nodes;
	size_t n_nodes;
	const rr_walsender_obs *walsenders;
	size_t n_walsenders;
	const rr_slot_obs *slots;
	size_t n_slots;
	/* One per node, in the same order; NULL when probes are off. */
	const rr_probe_obs *probes;
	/* 0: unknown, the evaluator compares the registry rows with the previous
	 * round's.  Otherwise a number the caller changes whenever it re-reads
	 * the registry: the same nonzero value as the previous round vouches
	 * that nodes[0..n_nodes) are those rows unchanged, and spares the
	 * comparison (1,024 rows of ~400 bytes in every round). */
	uint64_t registry_version;
} rr_round_input;

/* Bounds the worker applies to every node; RR_NO_LIMIT switches one off.
 *   max_lag_bytes, max_replay_lag_us   enter `lagging` above these
 *   lag_leave_fraction (0..1)          a lagging node leaves `lagging` only at
 *                                      or below this fraction of each bound
 *   recovery_hold_us (0 = off)         a node back from a bad state stays
 *                                      `recovering` this long before routing
 *   stall_timeout_us                   no reply for this long while WAL is
 *                                      pending makes a walsender `stalled` */
typedef struct rr_thresholds
{
	int64_t max_lag_bytes;
	int64_t max_replay_lag_us;
	double lag_leave_fraction;
	int64_t recovery_hold_us;
	int64_t stall_timeout_us;
} rr_thresholds;

/* ---------------------------------------------------------------------------
 * What the worker publishes: one entry per registered node, then one per
 * walsender that matches no node (state RR_STATE_UNREGISTERED).
 * ------------------------------------------------------------------------- */
typedef struct rr_node_entry
{
	/* registry; for an unregistered walsender, name = application_name */
	char name[RR_NAME_LEN];
	char host[RR_HOST_LEN];
	int32_t port;
	int32_t weight;
	char application_name[RR_NAME_LEN];
	bool registered;
	bool drained;

	/* verdict */
	rr_node_state state;
	bool routable; /* state == healthy, weight > 0; staleness is judged by readers */
	char reason[RR_REASON_LEN];
	rr_timestamp state_since;  /* first round in which the node had this state */

	/* walsender (walsender_pid == 0: none) */
	int32_t walsender_pid;
	rr_walsender_state walsender_state;
	char client_addr[RR_ADDR_LEN];
	char sync_state[RR_SYNC_STATE_LEN];
	rr_lsn sent_lsn, write_lsn, flush_lsn, replay_lsn;
	int64_t write_lag_us, flush_lag_us, replay_lag_us; /* as reported, idle-aware */
	rr_timestamp reply_time;

	/* slot (slot_name[0] == '\0': none) */
	char slot_name[RR_NAME_LEN];
	bool slot_active;
	rr_wal_status wal_status;

	/* client-side probe (probe_state == RR_PROBE_OFF: none) */
	rr_probe_state probe_state;
	rr_lsn probe_replay_lsn;  /* last answer's replay position; 0 none */
	rr_timestamp probe_at;    /* last answer; RR_NO_TIME none */

	/* derived */
	rr_lsn known_replay_lsn; /* newest lower bound of the replay position (walsender
	                          * feedback, fresh probe answer); 0 unknown */
	int64_t lag_bytes;       /* primary flush LSN - replay LSN, idle-aware; RR_NO_DURATION unknown */
	int64_t lag_us;          /* effective replay lag used for routing; RR_NO_DURATION unknown */
	rr_timestamp observed_at;
} rr_node_entry;

/* Facts about the last published round. */
typedef struct rr_table_header
{
	uint64_t rounds;               /* rounds published since the table was created */
	int32_t worker_pid;
	bool in_recovery;
	bool registry_available;
	rr_timestamp round_started_at; /* RR_NO_TIME before the first round */
	rr_timestamp published_at;     /* RR_NO_TIME before the first round */
	int64_t round_duration_us;
	rr_lsn primary_flush_lsn;
	uint32_t n_entries;
	uint32_t capacity;
} rr_table_header;

/* ---------------------------------------------------------------------------
 * The shared table: one writer (the worker), many readers (backends),
 * lock-free for readers.  The memory is handed in by the shim (ShmemInitStruct).
 * ------------------------------------------------------------------------- */
typedef struct rr_shared_table rr_shared_table;

size_t rr_table_size(uint32_t capacity) RR_NOEXCEPT;
/* Formats the memory; called once, under AddinShmemInitLock. */
rr_shared_table *rr_table_init(void *memory, uint32_t capacity) RR_NOEXCEPT;
/* Withdraw every verdict published (the worker calls it when it starts, so
 * that a restarted worker never serves a previous incarnation's verdicts),
 * but keep the rows: until the next publication each row is state unknown,
 * not routable, with a reason that says so, state_since RR_NO_TIME, and the
 * header has no publication time (readers: RR_CAUSE_NO_DATA).  So the view
 * keeps one row per node across a restart instead of going blank.  Rows a
 * writer that died mid-publication may have half-written are dropped. */
void rr_table_reset(rr_shared_table *table) RR_NOEXCEPT;

/* Consistent copy of the header and of up to max_entries entries. */
rr_status rr_table_snapshot(const rr_shared_table *table, rr_table_header *header,
                            rr_node_entry *entries, uint32_t max_entries,
                            uint32_t *n_entries, rr_error *error) RR_NOEXCEPT;
/* Just the header (cheap). */
rr_status rr_table_header_snapshot(const rr_shared_table *table, rr_table_header *header,
                                   rr_error *error) RR_NOEXCEPT;

/* ---------------------------------------------------------------------------
 * The worker's evaluator: keeps per-node memory between rounds (state_since,
 * the primary's LSN history used to estimate time lag) and publishes.
 * ------------------------------------------------------------------------- */
typedef struct rr_evaluator rr_evaluator;

rr_evaluator *rr_evaluator_create(rr_error *error) RR_NOEXCEPT;
void rr_evaluator_destroy(rr_evaluator *evaluator) RR_NOEXCEPT;
/* Evaluate every node of the round and publish the result into table.
 * RR_ERR_CAPACITY when nodes + unregistered walsenders exceed the table:
 * the registered nodes are still published, the overflow is dropped. */
rr_status rr_evaluate_and_publish(rr_evaluator *evaluator, const rr_round_input *input,
                                  const rr_thresholds *thresholds, rr_shared_table *table,
                                  rr_error *error) RR_NOEXCEPT;

/* ---------------------------------------------------------------------------
 * The event log: a bounded ring of state changes in shared memory, sized by
 * replroute.event_log_size.  One writer (the worker's evaluator), lock-free
 * readers; it is not part of the table, so rr_table_reset() leaves it alone
 * and the history survives a worker restart (not a server restart).
 * ------------------------------------------------------------------------- */
#define RR_EVENT_STATE_LEN 24       /* a state word, or a worker event's word */
#define RR_EVENT_LOG_MIN 16         /* range of replroute.event_log_size */
#define RR_EVENT_LOG_MAX 100000
#define RR_EVENT_JSON_LEN 2048      /* rr_event_json() always fits in this */

/*
 * Node events (registered nodes only): node = the node's name; from_state ""
 * when the node appears (the first round that sees it registered), to_state
 * "removed" when it leaves the registry.
 * Worker events: node = "": to_state "worker_started" (from ""), and role
 * changes "standby" -> "primary" (promotion) or "primary" -> "standby".
 * "" is shown as SQL NULL.
 */
typedef struct rr_event
{
	uint64_t seq;          /* 1, 2, ...: assigned when appended, never reused */
	rr_timestamp at;       /* the round's observation time */
	char node[RR_NAME_LEN];
	char from_state[RR_EVENT_STATE_LEN];
	char to_state[RR_EVENT_STATE_LEN];
	char reason[RR_REASON_LEN];
} rr_event;

typedef struct rr_event_log rr_event_log;

size_t rr_event_log_size(uint32_t capacity) RR_NOEXCEPT;
/* Formats the memory (capacity >= 1); once, under AddinShmemInitLock. NULL
 * when memory is NULL or misaligned, or capacity is 0. */
rr_event_log *rr_event_log_init(void *memory, uint32_t capacity) RR_NOEXCEPT;
/* seq of the newest event, 0 when none was ever appended. */
uint64_t rr_event_log_last_seq(const rr_event_log *log) RR_NOEXCEPT;
/* Copies the events with seq > after_seq that are still in the ring, oldest
 * first, at most max_events of them (the oldest ones).  Events overwritten
 * while reading are skipped, so seqs only increase but may start later than
 * after_seq + 1. */
rr_status rr_event_log_read(const rr_event_log *log, uint64_t after_seq, rr_event *events,
                            uint32_t max_events, uint32_t *n_events, rr_error *error) RR_NOEXCEPT;
/* The NOTIFY payload: one line of JSON,
 * {"seq":N,"node":"s1"|null,"from":"healthy"|null,"to":"drained","reason":"..."}
 * (strings escaped per RFC 8259).  size >= RR_EVENT_JSON_LEN always fits. */
rr_status rr_event_json(const rr_event *event, char *buffer, size_t size,
                        rr_error *error) RR_NOEXCEPT;

/* The evaluator appends its events to log (NULL: it appends nowhere). */
void rr_evaluator_set_event_log(rr_evaluator *evaluator, rr_event_log *log) RR_NOEXCEPT;
/* A new worker's evaluator takes over the states its predecessor published
 * (call before rr_table_reset), so that a restart does not report every node
 * as appearing afresh, and changes during the gap show as from -> to. */
rr_status rr_evaluator_adopt(rr_evaluator *evaluator, const rr_shared_table *table,
                             rr_error *error) RR_NOEXCEPT;

/* ---------------------------------------------------------------------------
 * Routing: what backends do with the table.
 * ------------------------------------------------------------------------- */
typedef struct rr_pick_request
{
	rr_timestamp now;
	int64_t stale_after_us;  /* data older than this routes nothing */
	int64_t max_lag_bytes;   /* per-call bound, RR_NO_LIMIT = none */
	int64_t max_lag_us;      /* per-call bound, RR_NO_LIMIT = none */
	rr_lsn min_lsn;          /* read-your-writes bound, 0 = none */
	rr_policy policy;
	uint64_t random;         /* 64 uniformly random bits (weighted policy) */
} rr_pick_request;

typedef enum rr_unroutable_cause
{
	RR_CAUSE_NONE = 0,       /* a node was picked */
	RR_CAUSE_NO_DATA,        /* nothing was ever published */
	RR_CAUSE_STALE,          /* data older than stale_after */
	RR_CAUSE_NOT_PRIMARY,    /* this server is a standby */
	RR_CAUSE_NO_CANDIDATE    /* data fresh, but no node qualifies */
} rr_unroutable_cause;

typedef struct rr_pick_result
{
	bool found;
	rr_unroutable_cause cause;
	char name[RR_NAME_LEN];
	int64_t data_age_us; /* RR_NO_DURATION when nothing was published */
} rr_pick_result;

/* How readers judge a table as a whole, by its header: RR_CAUSE_NO_DATA before
 * the first publication, RR_CAUSE_STALE when now - published_at exceeds
 * stale_after_us, RR_CAUSE_NOT_PRIMARY when the publishing server was in
 * recovery, else RR_CAUSE_NONE.  *age_us (may be NULL) gets now - published_at,
 * RR_NO_DURATION before the first publication.  The same rule rr_pick_reader
 * and rr_list_readers apply, so the replroute_nodes view (which shows stale
 * data as state unknown) never disagrees with routing.  (Added by the shims.) */
rr_unroutable_cause rr_table_freshness(const rr_table_header *header, rr_timestamp now,
                                       int64_t stale_after_us, int64_t *age_us) RR_NOEXCEPT;

/* Does entry qualify under request (ignoring staleness, judged per table)? */
bool rr_entry_qualifies(const rr_node_entry *entry, const rr_pick_request *request) RR_NOEXCEPT;

rr_status rr_pick_reader(rr_shared_table *table, const rr_pick_request *request,
                         rr_pick_result *result, rr_error *error) RR_NOEXCEPT;

/* Every qualifying entry, in table order (for replroute_readers()). */
rr_status rr_list_readers(const rr_shared_table *table, const rr_pick_request *request,
                          rr_node_entry *entries, uint32_t max_entries, uint32_t *n_entries,
                          rr_unroutable_cause *cause, rr_error *error) RR_NOEXCEPT;

/* ---------------------------------------------------------------------------
 * Registry input validation (replroute_add_node and friends).
 * ------------------------------------------------------------------------- */
/* A node name: 1..63 bytes of [A-Za-z0-9_.-], starting with a letter or digit. */
rr_status rr_validate_node_name(const char *name, rr_error *error) RR_NOEXCEPT;
/* A host name, an IPv4 or IPv6 address, or an absolute socket directory path:
 * no spaces, quotes, '=', backslashes or control characters (so that it cannot
 * smuggle conninfo keywords); 1..255 bytes. */
rr_status rr_validate_host(const char *host, rr_error *error) RR_NOEXCEPT;
rr_status rr_validate_port(int32_t port, rr_error *error) RR_NOEXCEPT;
rr_status rr_validate_weight(int32_t weight, rr_error *error) RR_NOEXCEPT;
/* 1..63 bytes of printable ASCII without quotes or backslashes. */
rr_status rr_validate_application_name(const char *application_name, rr_error *error) RR_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* REPLROUTE_REPLROUTE_H */
