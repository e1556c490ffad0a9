/*
 * replroute_pg.h -- what the shim files share with each other.
 *
 * replroute.c owns the shared memory; settings.c the GUCs (settings.h);
 * worker.c the background worker, observe.c what it reads each round,
 * probe.c its client connections; functions.c and registry.c the
 * SQL-callable functions.
 * Nothing here decides anything: decisions are the core's
 * (include/replroute/replroute.h).
 */
#ifndef REPLROUTE_PG_H
#define REPLROUTE_PG_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "replroute/replroute.h"
#include "settings.h"

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
 *
 * registry_changes is bumped (after the commit is visible) by every
 * transaction that changed the registry table, and by replroute_refresh();
 * the worker re-reads the registry when it differs from the value it saw at
 * its last read.  Only ever incremented, so a change is never missed: the
 * worker reads the counter before it takes the snapshot of its read.
 */
typedef struct RrWorkerShared
{
	slock_t		mutex;
	pid_t		pid;			/* 0: no worker running */
	rr_proc_number proc_number;
	pg_atomic_uint64 rounds_started;
	pg_atomic_uint64 rounds_published;
	ConditionVariable round_published;
	pg_atomic_uint64 registry_changes;
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
extern bool rr_probes_drive(TimestampTz now);
extern TimestampTz rr_probes_next_deadline(void);
extern int	rr_probes_count(void);
extern bool rr_probes_sockets_changed(void);
extern void rr_probes_add_sockets(WaitEventSet *set);
extern void rr_probes_mark_ready(void *user_data);
extern void rr_probes_close_all(void);

/* observe.c: the walsenders and slots, from shared memory; the registry */
extern size_t rr_observe_walsenders(rr_walsender_obs *out, size_t max);
extern size_t rr_observe_slots(rr_slot_obs *out, size_t max);
extern void rr_observe_forget_walsenders(void);
extern size_t rr_observe_registry(MemoryContext context, rr_node_config **out,
								  bool *available);

/* registry.c */
extern void rr_registry_xact_callback_init(void);
extern void rr_registry_changed(void);

/* commit_lsn.c: replroute.commit_lsn, defined wherever the library loads */
extern void rr_commit_lsn_init(void);

#endif /* REPLROUTE_PG_H */
