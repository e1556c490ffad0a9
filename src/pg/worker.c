/*
 * worker.c -- the background worker that observes the standbys and lets the
 * core publish its verdicts.
 *
 * One round:
 *   1. if the registry changed (registry_changes moved: a registry
 *      transaction committed, or replroute_refresh() asked), or it was last
 *      read more than REGISTRY_RECHECK_MS ago, or this server was promoted:
 *      re-read the registry table, in a transaction of its own (observe.c);
 *      the copy is kept between rounds.  On a standby changes arrive by
 *      replay and no trigger fires there, so only the periodic re-read sees
 *      them;
 *   2. read the walsenders and slots from shared memory (observe.c), then
 *      this server's flushed WAL position (after the walsenders, so that it
 *      is never behind what they report) and whether it is in recovery --
 *      no transaction, no catalog access;
 *   3. hand all of it, with the probes' last conclusions, to
 *      rr_evaluate_and_publish(), which also appends the round's state
 *      changes to the event log;
 *   4. only if the round appended events: NOTIFY replroute for each, in a
 *      transaction, so that listeners hear of it at commit, after the table
 *      shows it.  A standby cannot NOTIFY (no xid in recovery): there the
 *      events are only logged.
 * A round with nothing new to read and nothing to notify starts no
 * transaction.
 *
 * Between rounds the worker waits (wait_until) on one WaitEventSet: its
 * latch, postmaster death and the probes' sockets (probe.c adds them), until
 * the next round (replroute.poll_interval after the last one started) or the
 * next probe deadline.  A backend sets the latch when the registry changes or
 * replroute_refresh() is called: a round follows at once.  A probe whose
 * conclusion changes (its connection broke, it timed out, it answered again)
 * also starts a round at once: what is known is judged in the same wake-up.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/slot.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "replroute_pg.h"

/* A capacity warning at most this often: it repeats every round otherwise. */
#define CAPACITY_WARNING_INTERVAL_US (60 * USECS_PER_SEC)

/*
 * The registry is re-read at least this often even when no change was
 * announced: a safety net for changes that fire no trigger (TRUNCATE, a
 * restored dump, replay on a standby, CREATE or DROP EXTENSION).
 */
#define REGISTRY_RECHECK_MS 5000

/* What the worker keeps between rounds; lives in TopMemoryContext. */
typedef struct WorkerState
{
	rr_evaluator *evaluator;
	MemoryContext registry_context;	/* holds nodes[] */

	/* the registry as last read */
	rr_node_config *nodes;
	size_t		n_nodes;
	bool		registry_available;
	bool		registry_read;	/* read at least once */
	uint64		registry_seen;	/* registry_changes before that read */
	TimestampTz registry_read_at;
	bool		registry_in_recovery;	/* RecoveryInProgress() at that read */
	uint64		registry_version;	/* one more at every read: nodes[] unchanged
									 * while it stands (rr_round_input) */
	bool		probes_resync;	/* settings reloaded: probes follow them */

	/* observation buffers, sized once */
	rr_walsender_obs *walsenders;	/* max_wal_senders */
	rr_slot_obs *slots;			/* max_replication_slots */
	rr_probe_obs *probes;		/* replroute.max_nodes */

	/* the wait */
	WaitEventSet *wait_set;
	WaitEvent  *occurred;
	int			occurred_size;

	TimestampTz last_capacity_warning;
	TimestampTz last_queue_warning;	/* NOTIFY skipped: queue too full */
	uint64		last_notified;	/* seq of the newest event sent by NOTIFY */
} WorkerState;

/* Above this share of the notification queue the worker stops notifying. */
#define NOTIFY_QUEUE_USAGE_LIMIT 0.5

/* Events read from the ring per step while notifying. */
#define NOTIFY_BATCH 32

static void worker_on_exit(int code, Datum arg);
static void run_round(WorkerState *state);
static void read_registry(WorkerState *state, bool in_recovery, uint64 changes);
static void notify_round_events(WorkerState *state);
static uint64 notify_events(WorkerState *state);
static bool wait_until(WorkerState *state, TimestampTz deadline);

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
	bool		round_due = true;
	TimestampTz next_round = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(rr_guc_database, NULL, 0);

	state = MemoryContextAllocZero(TopMemoryContext, sizeof(WorkerState));
	state->registry_context = AllocSetContextCreate(TopMemoryContext,
													"replroute registry",
													ALLOCSET_DEFAULT_SIZES);
	state->walsenders = MemoryContextAllocZero(TopMemoryContext,
											   sizeof(rr_walsender_obs) * Max(max_wal_senders, 1));
	state->slots = MemoryContextAllocZero(TopMemoryContext,
										  sizeof(rr_slot_obs) * Max(max_replication_slots, 1));
	state->probes = MemoryContextAllocZero(TopMemoryContext,
										   sizeof(rr_probe_obs) * Max(rr_guc_max_nodes, 1));
	state->occurred_size = rr_guc_max_nodes + 2;
	state->occurred = MemoryContextAllocZero(TopMemoryContext,
											 sizeof(WaitEvent) * state->occurred_size);

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
	 * Rounds keep their own pace (every replroute.poll_interval, at once when
	 * a backend sets the latch or a probe's conclusion changes); between them
	 * the probes are driven by their sockets and deadlines in the same wait.
	 */
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
		if (rr_probes_drive(GetCurrentTimestamp()))
		{
			round_due = true;
			continue;
		}

		deadline = next_round;
		probe_deadline = rr_probes_next_deadline();
		if (probe_deadline < deadline)
			deadline = probe_deadline;
		if (wait_until(state, deadline))
		{
			ResetLatch(MyLatch);
			round_due = true;
		}

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			state->probes_resync = true;
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

/*
 * Waits until the deadline, the latch or a probe socket; marks the ready
 * probes.  True when the latch was set (a backend asked for a round).
 */
static bool
wait_until(WorkerState *state, TimestampTz deadline)
{
	TimestampTz now = GetCurrentTimestamp();
	long		timeout_ms = 0;
	int			n;
	bool		latch = false;

	if (deadline > now)
		timeout_ms = (long) Min((deadline - now + 999) / 1000, (int64) INT_MAX);

	if (state->wait_set == NULL || rr_probes_sockets_changed())
	{
		if (state->wait_set != NULL)
			FreeWaitEventSet(state->wait_set);
		state->wait_set = rr_create_wait_event_set(rr_probes_count() + 2);
		AddWaitEventToSet(state->wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(state->wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		rr_probes_add_sockets(state->wait_set);
	}

	n = WaitEventSetWait(state->wait_set, timeout_ms, state->occurred,
						 state->occurred_size, PG_WAIT_EXTENSION);
	for (int i = 0; i < n; i++)
	{
		if (state->occurred[i].events & WL_LATCH_SET)
			latch = true;
		else if (state->occurred[i].user_data != NULL)
			rr_probes_mark_ready(state->occurred[i].user_data);
	}
	return latch;
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

/*
 * Re-reads the registry into state->nodes, in a transaction of its own, and
 * brings the probes in line with it.  changes is the registry_changes count
 * read before the transaction took its snapshot: every change it announced is
 * visible to that snapshot.
 */
static void
read_registry(WorkerState *state, bool in_recovery, uint64 changes)
{
	rr_node_config *rows;
	size_t		n;
	bool		available;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "replroute worker: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "replroute: reading the registry");

	MemoryContextReset(state->registry_context);
	state->nodes = NULL;
	state->n_nodes = 0;
	n = rr_observe_registry(state->registry_context, &rows, &available);

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	state->nodes = rows;
	state->n_nodes = n;
	state->registry_available = available;
	state->registry_read = true;
	state->registry_seen = changes;
	state->registry_read_at = GetCurrentTimestamp();
	state->registry_in_recovery = in_recovery;
	state->registry_version++;

	/*
	 * Registry changes reach the probes here.  A standby's worker routes
	 * nothing, so it probes nothing: each standby carries one probe
	 * connection, the primary's.
	 */
	if (in_recovery)
		rr_probes_sync(NULL, 0);
	else
		rr_probes_sync(state->nodes, state->n_nodes);
}

static void
run_round(WorkerState *state)
{
	rr_round_input input;
	rr_thresholds thresholds = rr_current_thresholds();
	rr_error	error;
	rr_status	status;
	uint64		round;
	uint64		changes;
	TimestampTz now;

	memset(&input, 0, sizeof(input));
	memset(&error, 0, sizeof(error));

	/* Counted before anything is read: a refresh() that saw the old count is
	 * guaranteed that this round's observation started after it. */
	round = pg_atomic_add_fetch_u64(&rr_shared->rounds_started, 1);
	input.started_at = GetCurrentTimestamp();

	input.in_recovery = RecoveryInProgress();
	/* Read before the registry's snapshot: a change counted here is in it. */
	changes = pg_atomic_read_u64(&rr_shared->registry_changes);
	if (!state->registry_read ||
		changes != state->registry_seen ||
		input.in_recovery != state->registry_in_recovery ||
		input.started_at - state->registry_read_at >= REGISTRY_RECHECK_MS * (int64) 1000)
		read_registry(state, input.in_recovery, changes);
	else if (state->probes_resync && !input.in_recovery)
		rr_probes_sync(state->nodes, state->n_nodes);	/* replroute.probe* reloaded */
	state->probes_resync = false;

	input.nodes = state->nodes;
	input.n_nodes = state->n_nodes;
	input.registry_available = state->registry_available;
	input.registry_version = state->registry_version;

	input.n_walsenders = rr_observe_walsenders(state->walsenders, (size_t) max_wal_senders);
	input.walsenders = state->walsenders;
	input.n_slots = rr_observe_slots(state->slots, (size_t) max_replication_slots);
	input.slots = state->slots;

	if (rr_guc_probe && !input.in_recovery && input.n_nodes > 0)
	{
		rr_probes_observe(input.n_nodes, state->probes, GetCurrentTimestamp());
		input.probes = state->probes;
	}

	input.primary_flush_lsn = input.in_recovery ? 0 : rr_flush_lsn();
	input.worker_pid = MyProcPid;
	input.now = GetCurrentTimestamp();

	status = rr_evaluate_and_publish(state->evaluator, &input, &thresholds,
									 rr_shared->table, &error);

	notify_round_events(state);

	if (status == RR_OK || status == RR_ERR_CAPACITY)
	{
		pg_atomic_write_u64(&rr_shared->rounds_published, round);
		ConditionVariableBroadcast(&rr_shared->round_published);
	}

	if (status == RR_ERR_CAPACITY)
	{
		now = GetCurrentTimestamp();
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

	/*
	 * The whole round (observation, evaluation, publication, notification);
	 * replroute_worker_status().last_round_duration is the observation only.
	 * test/bench/run reads this line.
	 */
	if (message_level_is_interesting(DEBUG1))
		elog(DEBUG1, "replroute round " UINT64_FORMAT ": %zu nodes, %zu walsenders, "
			 "%zu slots, full round " INT64_FORMAT " us",
			 round, input.n_nodes, input.n_walsenders, input.n_slots,
			 (int64) (GetCurrentTimestamp() - input.started_at));
}

/*
 * NOTIFYs the events the round appended, in a transaction of its own; a
 * round that appended none starts none.
 */
static void
notify_round_events(WorkerState *state)
{
	uint64		last = rr_event_log_last_seq(rr_shared->events);
	uint64		notified;

	if (last == state->last_notified)
		return;
	if (RecoveryInProgress())
	{
		/* No NOTIFY in recovery; not kept for later either (see below). */
		state->last_notified = last;
		return;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "replroute: notifying events");
	notified = notify_events(state);
	CommitTransactionCommand();
	state->last_notified = notified;
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
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
