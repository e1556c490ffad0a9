/*
 * worker.c -- the background worker that observes the standbys and lets the
 * core publish its verdicts.
 *
 * One round, in its own transaction and memory context:
 *   1. read pg_stat_replication, the physical rows of pg_replication_slots and,
 *      if the extension exists in replroute.database, the registry table;
 *   2. read this server's flushed WAL position (after the walsenders, so that
 *      it is never behind what they report) and whether it is in recovery;
 *   3. hand all of it to rr_evaluate_and_publish(), which also appends the
 *      round's state changes to the event log;
 *   4. NOTIFY replroute for each new event, in the same transaction, so that
 *      listeners hear of it at commit, after the table shows it.  A standby
 *      cannot NOTIFY (no xid in recovery): there the events are only logged.
 * Between rounds it waits for replroute.poll_interval on its latch and on the
 * sockets of the probes (probe.c), which it drives in between; backends set
 * the latch when the registry changes or replroute_refresh() is called.
 *
 * The queries are SPI plans prepared once and kept.  The registry plan names
 * the extension's schema, so it is re-prepared whenever the extension is
 * (re)created; the extension is looked up every round so that a CREATE
 * EXTENSION after the worker started is picked up without a restart.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "replroute_pg.h"

/* A capacity warning at most this often: it repeats every round otherwise. */
#define CAPACITY_WARNING_INTERVAL_US (60 * USECS_PER_SEC)

static const char *const walsender_query =
"SELECT pid, state, application_name, pg_catalog.host(client_addr), sync_state,"
"       sent_lsn, write_lsn, flush_lsn, replay_lsn,"
"       write_lag, flush_lag, replay_lag, reply_time"
"  FROM pg_catalog.pg_stat_replication";

static const char *const slot_query =
"SELECT slot_name, active, active_pid, wal_status, restart_lsn"
"  FROM pg_catalog.pg_replication_slots"
" WHERE slot_type = 'physical'";

/* What the worker keeps between rounds; lives in TopMemoryContext. */
typedef struct WorkerState
{
	rr_evaluator *evaluator;
	MemoryContext round_context;
	SPIPlanPtr	walsender_plan;
	SPIPlanPtr	slot_plan;
	SPIPlanPtr	registry_plan;
	Oid			registry_extension;	/* extension the registry plan was made for */
	bool		logged_waiting;		/* "waiting for CREATE EXTENSION" said once */
	TimestampTz last_capacity_warning;
	TimestampTz last_queue_warning;	/* NOTIFY skipped: queue too full */
	uint64		last_notified;		/* seq of the newest event sent by NOTIFY */
} WorkerState;

/* Above this share of the notification queue the worker stops notifying. */
#define NOTIFY_QUEUE_USAGE_LIMIT 0.5

/* Events read from the ring per step while notifying. */
#define NOTIFY_BATCH 32

static void worker_on_exit(int code, Datum arg);
static void run_round(WorkerState *state);
static uint64 notify_events(WorkerState *state);
static size_t read_walsenders(WorkerState *state, rr_walsender_obs **out);
static size_t read_slots(WorkerState *state, rr_slot_obs **out);
static size_t read_registry(WorkerState *state, rr_node_config **out, bool *available);
static bool find_extension(Oid *extension, Oid *schema);
static SPIPlanPtr prepare_kept(const char *query);

void
rr_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* Consistent state: on a hot standby it runs too, publishes "this is a
	 * standby", and is already there when the server is promoted. */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	/* Short, so that a killed worker is back before its data goes stale. */
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "replroute");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "replroute_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "replroute worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "replroute worker");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;

	RegisterBackgroundWorker(&worker);
}

void
replroute_worker_main(Datum main_arg)
{
	WorkerState *state;
	rr_error	error;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(rr_guc_database, NULL, 0);

	state = MemoryContextAllocZero(TopMemoryContext, sizeof(WorkerState));
	state->round_context = AllocSetContextCreate(TopMemoryContext,
												 "replroute round",
												 ALLOCSET_DEFAULT_SIZES);
	state->registry_extension = InvalidOid;
	state->last_capacity_warning = 0;

	memset(&error, 0, sizeof(error));
	state->evaluator = rr_evaluator_create(&error);
	if (state->evaluator == NULL)
		rr_report_core_error(&error, "replroute worker could not create its evaluator");

	/*
	 * Take over the previous incarnation's states as memory, so that the event
	 * log continues from them, then forget its verdicts: a restarted worker
	 * must not serve them.  The event log itself is left alone.
	 */
	if (rr_evaluator_adopt(state->evaluator, rr_shared->table, &error) != RR_OK)
		ereport(LOG,
				(errmsg("replroute worker could not take over the published states; "
						"every node will show as appearing"),
				 errdetail("%s", error.message)));
	rr_table_reset(rr_shared->table);
	rr_evaluator_set_event_log(state->evaluator, rr_shared->events);
	/* Earlier events were notified (or not) by the previous incarnation. */
	state->last_notified = rr_event_log_last_seq(rr_shared->events);

	SpinLockAcquire(&rr_shared->mutex);
	rr_shared->pid = MyProcPid;
	rr_shared->proc_number = rr_my_proc_number();
	SpinLockRelease(&rr_shared->mutex);
	before_shmem_exit(worker_on_exit, PointerGetDatum(state));

	ereport(LOG,
			(errmsg("replroute worker started in database \"%s\"", rr_guc_database)));

	rr_probes_init();

	/*
	 * Rounds keep their own pace (every replroute.poll_interval, or at once
	 * when a backend sets the latch); between them the probes are driven by
	 * their sockets and deadlines in the same wait.
	 */
	{
		bool		round_due = true;
		TimestampTz next_round = 0;

		for (;;)
		{
			TimestampTz deadline;
			TimestampTz probe_deadline;

			if (round_due)
			{
				TimestampTz started = GetCurrentTimestamp();

				run_round(state);
				next_round = TimestampTzPlusMilliseconds(started, rr_guc_poll_interval_ms);
				round_due = false;
			}
			rr_probes_drive(GetCurrentTimestamp());

			deadline = next_round;
			probe_deadline = rr_probes_next_deadline();
			if (probe_deadline < deadline)
				deadline = probe_deadline;
			if (rr_probes_wait(deadline))
			{
				ResetLatch(MyLatch);
				round_due = true;
			}

			CHECK_FOR_INTERRUPTS();

			if (ConfigReloadPending)
			{
				ConfigReloadPending = false;
				ProcessConfigFile(PGC_SIGHUP);
				if (rr_guc_stale_after_ms <= rr_guc_poll_interval_ms)
					ereport(WARNING,
							(errmsg("replroute.stale_after (%d ms) is not larger than "
									"replroute.poll_interval (%d ms): published data will "
									"often be stale and nothing will be routed",
									rr_guc_stale_after_ms, rr_guc_poll_interval_ms)));
				round_due = true;
			}
			if (GetCurrentTimestamp() >= next_round)
				round_due = true;
		}
	}
}

static void
worker_on_exit(int code, Datum arg)
{
	WorkerState *state = (WorkerState *) DatumGetPointer(arg);

	SpinLockAcquire(&rr_shared->mutex);
	if (rr_shared->pid == MyProcPid)
	{
		rr_shared->pid = 0;
		rr_shared->proc_number = RR_INVALID_PROC_NUMBER;
	}
	SpinLockRelease(&rr_shared->mutex);

	rr_probes_close_all();

	if (state->evaluator != NULL)
	{
		rr_evaluator_destroy(state->evaluator);
		state->evaluator = NULL;
	}
}

static void
run_round(WorkerState *state)
{
	rr_round_input input;
	rr_thresholds thresholds = rr_current_thresholds();
	rr_error	error;
	rr_status	status;
	rr_walsender_obs *walsenders;
	rr_slot_obs *slots;
	rr_node_config *nodes;
	uint64		round;
	uint64		notified;
	MemoryContext outer;

	memset(&input, 0, sizeof(input));
	memset(&error, 0, sizeof(error));

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "replroute: observing standbys");

	/* Counted before anything is read: a refresh() that saw the old count is
	 * guaranteed that this round's observation started after it. */
	round = pg_atomic_add_fetch_u64(&rr_shared->rounds_started, 1);
	input.started_at = GetCurrentTimestamp();

	/* SPI results live in the transaction; the copies in the round context. */
	outer = MemoryContextSwitchTo(state->round_context);

	input.n_walsenders = read_walsenders(state, &walsenders);
	input.walsenders = walsenders;
	input.n_slots = read_slots(state, &slots);
	input.slots = slots;
	input.n_nodes = read_registry(state, &nodes, &input.registry_available);
	input.nodes = nodes;

	/*
	 * Registry changes reach the probes here; their last conclusions go into
	 * this round's verdict.  A standby's worker routes nothing, so it probes
	 * nothing: each standby carries one probe connection, the primary's.
	 */
	input.in_recovery = RecoveryInProgress();
	if (input.in_recovery)
		rr_probes_sync(NULL, 0);
	else
		rr_probes_sync(nodes, input.n_nodes);
	if (rr_guc_probe && !input.in_recovery && input.n_nodes > 0)
	{
		rr_probe_obs *probes = palloc0(sizeof(rr_probe_obs) * input.n_nodes);

		rr_probes_observe(input.n_nodes, probes, GetCurrentTimestamp());
		input.probes = probes;
	}

	input.primary_flush_lsn = input.in_recovery ? 0 : rr_flush_lsn();
	input.worker_pid = MyProcPid;
	input.now = GetCurrentTimestamp();

	status = rr_evaluate_and_publish(state->evaluator, &input, &thresholds,
									 rr_shared->table, &error);

	notified = notify_events(state);

	MemoryContextSwitchTo(outer);
	MemoryContextReset(state->round_context);

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	state->last_notified = notified;
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (status == RR_OK || status == RR_ERR_CAPACITY)
	{
		pg_atomic_write_u64(&rr_shared->rounds_published, round);
		ConditionVariableBroadcast(&rr_shared->round_published);
	}

	if (status == RR_ERR_CAPACITY)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (state->last_capacity_warning == 0 ||
			now - state->last_capacity_warning >= CAPACITY_WARNING_INTERVAL_US)
		{
			state->last_capacity_warning = now;
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("replroute table is full: some walsenders are not shown"),
					 error.message[0] ? errdetail("%s", error.message) : 0,
					 errhint("Raise replroute.max_nodes or max_wal_senders (restart needed).")));
		}
	}
	else if (status != RR_OK)
		rr_report_core_error(&error, "replroute worker could not publish a round");

	elog(DEBUG1, "replroute round " UINT64_FORMAT ": %zu nodes, %zu walsenders, "
		 "%zu slots, " INT64_FORMAT " us",
		 round, input.n_nodes, input.n_walsenders, input.n_slots,
		 (int64) (GetCurrentTimestamp() - input.started_at));
}

/*
 * Queues a NOTIFY for every event after state->last_notified; returns the seq
 * to remember once the transaction has committed.  Events appended while the
 * worker is in recovery are skipped, not kept for later: a promotion would
 * otherwise deliver a burst of old news.
 */
static uint64
notify_events(WorkerState *state)
{
	uint64		last = state->last_notified;
	rr_event	events[NOTIFY_BATCH];
	char		payload[RR_EVENT_JSON_LEN];
	rr_error	error;

	if (RecoveryInProgress())
		return rr_event_log_last_seq(rr_shared->events);

	/*
	 * A listening session that stops reading (idle in transaction) fills the
	 * cluster's notification queue, and a full queue fails the COMMIT of this
	 * round: the worker would die and restart every round, resetting the
	 * table each time.  Past half full, the events stay in the log but are not
	 * notified; say so now and then.
	 */
	if (DatumGetFloat8(DirectFunctionCall1(pg_notification_queue_usage, (Datum) 0))
		> NOTIFY_QUEUE_USAGE_LIMIT)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (state->last_queue_warning == 0 ||
			now - state->last_queue_warning >= CAPACITY_WARNING_INTERVAL_US)
		{
			state->last_queue_warning = now;
			ereport(WARNING,
					(errmsg("replroute is not sending NOTIFY: the notification queue is more than half full"),
					 errdetail("Events are still recorded in replroute_events."),
					 errhint("Find the listening session that does not consume its notifications, e.g. one idle in transaction.")));
		}
		return rr_event_log_last_seq(rr_shared->events);
	}

	for (;;)
	{
		uint32		n = 0;

		memset(&error, 0, sizeof(error));
		if (rr_event_log_read(rr_shared->events, last, events, NOTIFY_BATCH, &n,
							  &error) != RR_OK)
			rr_report_core_error(&error, "replroute worker could not read its event log");
		for (uint32 i = 0; i < n; i++)
		{
			if (rr_event_json(&events[i], payload, sizeof(payload), &error) != RR_OK)
				rr_report_core_error(&error, "replroute worker could not format an event");
			Async_Notify("replroute", payload);
			last = events[i].seq;
		}
		if (n < NOTIFY_BATCH)
			return last;
	}
}

/* Bounded copy of a text (or NULL) column; "" for NULL. */
static void
copy_text(HeapTuple tuple, TupleDesc desc, int column, char *dst, size_t size)
{
	bool		isnull;
	Datum		value = SPI_getbinval(tuple, desc, column, &isnull);

	if (isnull)
		dst[0] = '\0';
	else
		text_to_cstring_buffer(DatumGetTextPP(value), dst, size);
}

static rr_lsn
get_lsn(HeapTuple tuple, TupleDesc desc, int column)
{
	bool		isnull;
	Datum		value = SPI_getbinval(tuple, desc, column, &isnull);

	return isnull ? 0 : (rr_lsn) DatumGetLSN(value);
}

/* The lag columns are intervals of seconds; days and months do not occur. */
static int64
get_interval_usec(HeapTuple tuple, TupleDesc desc, int column)
{
	bool		isnull;
	Datum		value = SPI_getbinval(tuple, desc, column, &isnull);
	Interval   *interval;

	if (isnull)
		return RR_NO_DURATION;
	interval = DatumGetIntervalP(value);
	return interval->time + (int64) interval->day * USECS_PER_DAY
		+ (int64) interval->month * DAYS_PER_MONTH * USECS_PER_DAY;
}

static int32
get_int32(HeapTuple tuple, TupleDesc desc, int column)
{
	bool		isnull;
	Datum		value = SPI_getbinval(tuple, desc, column, &isnull);

	return isnull ? 0 : DatumGetInt32(value);
}

static bool
get_bool(HeapTuple tuple, TupleDesc desc, int column)
{
	bool		isnull;
	Datum		value = SPI_getbinval(tuple, desc, column, &isnull);

	return isnull ? false : DatumGetBool(value);
}

static void
execute_read(SPIPlanPtr plan, const char *what)
{
	int			rc = SPI_execute_plan(plan, NULL, NULL, true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "replroute worker: reading %s failed: %s",
			 what, SPI_result_code_string(rc));
}

static size_t
read_walsenders(WorkerState *state, rr_walsender_obs **out)
{
	rr_walsender_obs *rows;
	TupleDesc	desc;
	char		text[RR_NAME_LEN];

	if (state->walsender_plan == NULL)
		state->walsender_plan = prepare_kept(walsender_query);
	execute_read(state->walsender_plan, "pg_stat_replication");

	rows = palloc0(sizeof(rr_walsender_obs) * Max(SPI_processed, 1));
	desc = SPI_tuptable->tupdesc;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		rr_walsender_obs *row = &rows[i];
		bool		isnull;
		Datum		reply;

		row->pid = get_int32(tuple, desc, 1);
		copy_text(tuple, desc, 2, text, sizeof(text));
		row->state = rr_parse_walsender_state(text[0] ? text : NULL);
		copy_text(tuple, desc, 3, row->application_name, sizeof(row->application_name));
		copy_text(tuple, desc, 4, row->client_addr, sizeof(row->client_addr));
		copy_text(tuple, desc, 5, row->sync_state, sizeof(row->sync_state));
		row->sent_lsn = get_lsn(tuple, desc, 6);
		row->write_lsn = get_lsn(tuple, desc, 7);
		row->flush_lsn = get_lsn(tuple, desc, 8);
		row->replay_lsn = get_lsn(tuple, desc, 9);
		row->write_lag_us = get_interval_usec(tuple, desc, 10);
		row->flush_lag_us = get_interval_usec(tuple, desc, 11);
		row->replay_lag_us = get_interval_usec(tuple, desc, 12);
		reply = SPI_getbinval(tuple, desc, 13, &isnull);
		row->reply_time = isnull ? RR_NO_TIME : (rr_timestamp) DatumGetTimestampTz(reply);
	}
	*out = rows;
	return (size_t) SPI_processed;
}

static size_t
read_slots(WorkerState *state, rr_slot_obs **out)
{
	rr_slot_obs *rows;
	TupleDesc	desc;
	char		text[32];

	if (state->slot_plan == NULL)
		state->slot_plan = prepare_kept(slot_query);
	execute_read(state->slot_plan, "pg_replication_slots");

	rows = palloc0(sizeof(rr_slot_obs) * Max(SPI_processed, 1));
	desc = SPI_tuptable->tupdesc;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		rr_slot_obs *row = &rows[i];
		bool		isnull;
		Datum		name = SPI_getbinval(tuple, desc, 1, &isnull);

		if (!isnull)
			strlcpy(row->slot_name, NameStr(*DatumGetName(name)), sizeof(row->slot_name));
		row->active = get_bool(tuple, desc, 2);
		row->active_pid = get_int32(tuple, desc, 3);
		copy_text(tuple, desc, 4, text, sizeof(text));
		row->wal_status = rr_parse_wal_status(text[0] ? text : NULL);
		row->restart_lsn = get_lsn(tuple, desc, 5);
	}
	*out = rows;
	return (size_t) SPI_processed;
}

static size_t
read_registry(WorkerState *state, rr_node_config **out, bool *available)
{
	rr_node_config *rows;
	TupleDesc	desc;
	Oid			extension;
	Oid			schema;

	*out = NULL;
	*available = false;

	if (!find_extension(&extension, &schema))
	{
		if (state->registry_plan != NULL)
		{
			SPI_freeplan(state->registry_plan);
			state->registry_plan = NULL;
			state->registry_extension = InvalidOid;
		}
		if (!state->logged_waiting)
		{
			ereport(LOG,
					(errmsg("replroute worker: extension \"replroute\" does not exist in "
							"database \"%s\"; waiting for CREATE EXTENSION replroute",
							rr_guc_database)));
			state->logged_waiting = true;
		}
		return 0;
	}
	state->logged_waiting = false;

	if (state->registry_plan != NULL && state->registry_extension != extension)
	{
		SPI_freeplan(state->registry_plan);
		state->registry_plan = NULL;
	}
	if (state->registry_plan == NULL)
	{
		char	   *schema_name = get_namespace_name(schema);
		char	   *query;

		if (schema_name == NULL)
			return 0;
		query = psprintf("SELECT name, host, port, weight, application_name, drained"
						 "  FROM %s.replroute_node ORDER BY name",
						 quote_identifier(schema_name));
		state->registry_plan = prepare_kept(query);
		state->registry_extension = extension;
	}
	execute_read(state->registry_plan, "the registry");

	rows = palloc0(sizeof(rr_node_config) * Max(SPI_processed, 1));
	desc = SPI_tuptable->tupdesc;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		rr_node_config *row = &rows[i];

		copy_text(tuple, desc, 1, row->name, sizeof(row->name));
		copy_text(tuple, desc, 2, row->host, sizeof(row->host));
		row->port = get_int32(tuple, desc, 3);
		row->weight = get_int32(tuple, desc, 4);
		copy_text(tuple, desc, 5, row->application_name, sizeof(row->application_name));
		if (row->application_name[0] == '\0')
			strlcpy(row->application_name, row->name, sizeof(row->application_name));
		row->drained = get_bool(tuple, desc, 6);
	}
	*available = true;
	*out = rows;
	return (size_t) SPI_processed;
}

/*
 * The extension's OID and schema in one index probe (PostgreSQL 15 exports
 * get_extension_oid but not get_extension_schema).
 */
static bool
find_extension(Oid *extension, Oid *schema)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("replroute"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_extension form = (Form_pg_extension) GETSTRUCT(tuple);

		*extension = form->oid;
		*schema = form->extnamespace;
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

static SPIPlanPtr
prepare_kept(const char *query)
{
	SPIPlanPtr	plan = SPI_prepare(query, 0, NULL);

	if (plan == NULL)
		elog(ERROR, "replroute worker: SPI_prepare failed for \"%s\": %s",
			 query, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "replroute worker: SPI_keepplan failed");
	return plan;
}
