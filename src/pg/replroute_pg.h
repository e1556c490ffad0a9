/*
 * replroute_pg.h -- what the shim files share with each other.
 *
 * replroute.c owns the GUC variables and the shared memory; worker.c the
 * background worker; functions.c and registry.c the SQL-callable functions.
 * Nothing here decides anything: decisions are the core's
 * (include/replroute/replroute.h).
 */
#ifndef REPLROUTE_PG_H
#define REPLROUTE_PG_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "replroute/replroute.h"

/* replroute.fallback: what pick_reader does when no standby qualifies. */
typedef enum RrFallback
{
	RR_FALLBACK_NONE = 0,	/* return NULL */
	RR_FALLBACK_PRIMARY,	/* return replroute.primary_name */
	RR_FALLBACK_ERROR		/* raise an error saying why */
} RrFallback;

/* GUCs (replroute.c) */
extern char *rr_guc_database;
extern int	rr_guc_max_nodes;
extern int	rr_guc_poll_interval_ms;
extern int	rr_guc_stale_after_ms;
extern int	rr_guc_max_lag_kb;
extern int	rr_guc_max_replay_lag_ms;
extern double rr_guc_lag_leave_fraction;
extern int	rr_guc_recovery_hold_ms;
extern int	rr_guc_stall_timeout_ms;
extern int	rr_guc_policy;
extern int	rr_guc_fallback;
extern char *rr_guc_primary_name;
extern int	rr_guc_event_log_size;
extern bool rr_guc_probe;
extern int	rr_guc_probe_interval_ms;
extern int	rr_guc_probe_timeout_ms;
extern char *rr_guc_probe_conninfo;

/*
 * Shared state of the worker, next to the core's table.
 *
 * pid and proc_number are written by the worker when it starts and clears on
 * exit, under mutex; backends read them under mutex to SetLatch() the worker.
 * A stale proc_number only wakes some other process spuriously, which latches
 * tolerate.
 *
 * rounds_started is incremented by the worker before a round reads anything,
 * rounds_published set to that round's number once the core has published it;
 * both only grow (also across worker restarts, as long as shared memory
 * lives).  replroute_refresh() waits on round_published for a round that
 * started after it was called.
 */
typedef struct RrWorkerShared
{
	slock_t		mutex;
	pid_t		pid;			/* 0: no worker running */
	rr_proc_number proc_number;
	pg_atomic_uint64 rounds_started;
	pg_atomic_uint64 rounds_published;
	ConditionVariable round_published;
	uint32		capacity;		/* entries of the table */
	rr_shared_table *table;		/* same address in every process */
	rr_event_log *events;		/* the core's event ring, likewise */
} RrWorkerShared;

/* NULL unless the library was preloaded (and shared memory is attached). */
extern RrWorkerShared *rr_shared;

/* replroute.c */
extern void rr_require_preload(void);
extern void rr_require_registry_database(void);
extern void rr_report_core_error(const rr_error *error, const char *what) pg_attribute_noreturn();
extern void rr_wake_worker(void);
extern rr_thresholds rr_current_thresholds(void);

/* worker.c */
extern void rr_register_worker(void);
extern PGDLLEXPORT void replroute_worker_main(Datum main_arg);

/* probe.c: the worker's client connections to the standbys */
extern void rr_probes_init(void);
extern void rr_probes_sync(const rr_node_config *nodes, size_t n_nodes);
extern void rr_probes_observe(size_t n_nodes, rr_probe_obs *out, TimestampTz now);
extern void rr_probes_drive(TimestampTz now);
extern TimestampTz rr_probes_next_deadline(void);
extern bool rr_probes_wait(TimestampTz deadline);
extern void rr_probes_close_all(void);

/* registry.c */
extern void rr_registry_xact_callback_init(void);

/* commit_lsn.c: replroute.commit_lsn, defined wherever the library loads */
extern void rr_commit_lsn_init(void);

#endif /* REPLROUTE_PG_H */
