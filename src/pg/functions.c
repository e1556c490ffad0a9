/*
 * functions.c -- SQL-callable functions that read the shared table:
 * routing (replroute_pick_reader, replroute_readers), monitoring
 * (replroute_node_status behind the replroute_nodes view,
 * replroute_worker_status), the event log (replroute_event_log behind the
 * replroute_events view) and replroute_refresh.
 *
 * The routing functions are on the hot path of every read an application
 * routes: no SPI, no catalog access, no lock; the core reads the table
 * lock-free.  Arguments are converted here, decisions are the core's.
 */
#include "postgres.h"

#include "common/int.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "replroute_pg.h"
#include "replroute/replay_wait.h"

PG_FUNCTION_INFO_V1(replroute_pick_reader);
PG_FUNCTION_INFO_V1(replroute_readers);
PG_FUNCTION_INFO_V1(replroute_node_status);
PG_FUNCTION_INFO_V1(replroute_worker_status);
PG_FUNCTION_INFO_V1(replroute_refresh);
PG_FUNCTION_INFO_V1(replroute_event_log);

/* How long replroute_refresh() sleeps before it checks the worker again: it
 * is woken by the worker's broadcast, this only bounds a missed wakeup. */
#define REFRESH_RECHECK_MS 100

#define READERS_COLUMNS 7
#define NODE_STATUS_COLUMNS 29
#define WORKER_STATUS_COLUMNS 6
#define EVENT_LOG_COLUMNS 6

/* ---------------------------------------------------------------------------
 * Conversions
 * ------------------------------------------------------------------------- */

/* The core's saturating conversion (months as 30 days, as EXTRACT does). */
static int64
interval_usec(const Interval *interval)
{
	return rr_interval_usec(interval->time, interval->day, interval->month);
}

static Datum
usec_to_interval(int64 usec)
{
	Interval   *interval = palloc0(sizeof(Interval));

	interval->time = usec;
	return IntervalPGetDatum(interval);
}

/*
 * The per-call bounds shared by pick_reader and readers; NULL means no bound
 * beyond the configured ones.
 */
static void
build_request(FunctionCallInfo fcinfo, rr_pick_request *request)
{
	memset(request, 0, sizeof(*request));
	request->now = GetCurrentTimestamp();
	request->stale_after_us = (int64) rr_guc_stale_after_ms * 1000;
	request->policy = (rr_policy) rr_guc_policy;
	request->max_lag_bytes = RR_NO_LIMIT;
	request->max_lag_us = RR_NO_LIMIT;
	request->min_lsn = 0;

	if (!PG_ARGISNULL(0))
	{
		int64		bytes = PG_GETARG_INT64(0);

		if (bytes < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_lag_bytes must not be negative")));
		request->max_lag_bytes = bytes;
	}
	if (!PG_ARGISNULL(1))
	{
		int64		usec = interval_usec(PG_GETARG_INTERVAL_P(1));

		if (usec < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_lag must not be negative")));
		request->max_lag_us = usec;
	}
	if (!PG_ARGISNULL(2))
		request->min_lsn = (rr_lsn) PG_GETARG_LSN(2);
}

static const char *
cause_text(rr_unroutable_cause cause, int64 data_age_us)
{
	switch (cause)
	{
		case RR_CAUSE_NO_DATA:
			return pstrdup("the replroute worker has not published any data yet");
		case RR_CAUSE_STALE:
			return psprintf("the replroute worker's data is %.1f s old, older than "
							"replroute.stale_after (%d ms)",
							data_age_us / 1000000.0, rr_guc_stale_after_ms);
		case RR_CAUSE_NOT_PRIMARY:
			return pstrdup("this server is a standby");
		case RR_CAUSE_NO_CANDIDATE:
			return pstrdup("no healthy standby within the bounds");
		default:
			return pstrdup("unknown cause");
	}
}

/* ---------------------------------------------------------------------------
 * Routing
 * ------------------------------------------------------------------------- */

Datum
replroute_pick_reader(PG_FUNCTION_ARGS)
{
	rr_pick_request request;
	rr_pick_result result;
	rr_error	error;

	rr_require_preload();
	build_request(fcinfo, &request);
	if (request.policy == RR_POLICY_WEIGHTED)
		request.random = pg_prng_uint64(&pg_global_prng_state);

	memset(&result, 0, sizeof(result));
	memset(&error, 0, sizeof(error));
	if (rr_pick_reader(rr_shared->table, &request, &result, &error) != RR_OK)
		rr_report_core_error(&error, "replroute could not pick a reader");

	if (result.found)
		PG_RETURN_TEXT_P(cstring_to_text(result.name));

	switch ((RrFallback) rr_guc_fallback)
	{
		case RR_FALLBACK_PRIMARY:
			PG_RETURN_TEXT_P(cstring_to_text(rr_guc_primary_name));
		case RR_FALLBACK_ERROR:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no standby to read from: %s",
							cause_text(result.cause, result.data_age_us)),
					 errhint("replroute.fallback = error; the view replroute_nodes "
							 "says why each standby is not routable.")));
			break;
		case RR_FALLBACK_NONE:
			break;
	}
	PG_RETURN_NULL();
}

Datum
replroute_readers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	rr_pick_request request;
	rr_table_header header;
	rr_node_entry *entries;
	uint32		n_entries = 0;
	rr_unroutable_cause cause = RR_CAUSE_NONE;
	rr_error	error;

	rr_require_preload();
	build_request(fcinfo, &request);
	InitMaterializedSRF(fcinfo, 0);

	memset(&error, 0, sizeof(error));
	if (rr_table_header_snapshot(rr_shared->table, &header, &error) != RR_OK)
		rr_report_core_error(&error, "replroute could not read its shared table");

	entries = palloc(sizeof(rr_node_entry) * Max(header.capacity, 1));
	if (rr_list_readers(rr_shared->table, &request, entries, header.capacity,
						&n_entries, &cause, &error) != RR_OK)
		rr_report_core_error(&error, "replroute could not list readers");

	for (uint32 i = 0; i < n_entries; i++)
	{
		const rr_node_entry *entry = &entries[i];
		Datum		values[READERS_COLUMNS];
		bool		nulls[READERS_COLUMNS];

		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(entry->name);
		values[1] = CStringGetTextDatum(entry->host);
		values[2] = Int32GetDatum(entry->port);
		values[3] = Int32GetDatum(entry->weight);
		values[4] = Int64GetDatum(entry->lag_bytes);
		nulls[4] = entry->lag_bytes < 0;
		values[5] = usec_to_interval(entry->lag_us);
		nulls[5] = entry->lag_us < 0;
		values[6] = LSNGetDatum(entry->known_replay_lsn);
		nulls[6] = entry->known_replay_lsn == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---------------------------------------------------------------------------
 * Monitoring
 * ------------------------------------------------------------------------- */

static void
put_text(Datum *values, bool *nulls, int column, const char *text)
{
	if (text == NULL || text[0] == '\0')
		nulls[column] = true;
	else
		values[column] = CStringGetTextDatum(text);
}

static void
put_lsn(Datum *values, bool *nulls, int column, rr_lsn lsn)
{
	if (lsn == 0)
		nulls[column] = true;
	else
		values[column] = LSNGetDatum(lsn);
}

static void
put_duration(Datum *values, bool *nulls, int column, int64 usec)
{
	if (usec < 0)
		nulls[column] = true;
	else
		values[column] = usec_to_interval(usec);
}

static void
put_time(Datum *values, bool *nulls, int column, rr_timestamp time)
{
	if (time == RR_NO_TIME)
		nulls[column] = true;
	else
		values[column] = TimestampTzGetDatum((TimestampTz) time);
}

Datum
replroute_node_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	rr_table_header header;
	rr_node_entry *entries;
	uint32		n_entries = 0;
	rr_error	error;
	rr_timestamp now;
	int64		age_us;
	char	   *stale_reason = NULL;

	rr_require_preload();
	InitMaterializedSRF(fcinfo, 0);

	memset(&error, 0, sizeof(error));
	if (rr_table_header_snapshot(rr_shared->table, &header, &error) != RR_OK)
		rr_report_core_error(&error, "replroute could not read its shared table");
	entries = palloc(sizeof(rr_node_entry) * Max(header.capacity, 1));
	if (rr_table_snapshot(rr_shared->table, &header, entries, header.capacity,
						  &n_entries, &error) != RR_OK)
		rr_report_core_error(&error, "replroute could not read its shared table");

	/* Same rule as routing: data past stale_after says nothing about now. */
	now = GetCurrentTimestamp();
	if (rr_table_freshness(&header, now, (int64) rr_guc_stale_after_ms * 1000,
						   &age_us) == RR_CAUSE_STALE)
		stale_reason = psprintf("worker data is %.1f s old (replroute.stale_after = %d ms)",
								age_us / 1000000.0, rr_guc_stale_after_ms);

	for (uint32 i = 0; i < n_entries; i++)
	{
		const rr_node_entry *entry = &entries[i];
		Datum		values[NODE_STATUS_COLUMNS];
		bool		nulls[NODE_STATUS_COLUMNS];
		bool		has_walsender = entry->walsender_pid != 0;
		bool		has_slot = entry->slot_name[0] != '\0';

		memset(values, 0, sizeof(values));
		memset(nulls, 0, sizeof(nulls));

		values[0] = CStringGetTextDatum(entry->name);
		put_text(values, nulls, 1, entry->registered ? entry->host : NULL);
		values[2] = Int32GetDatum(entry->port);
		nulls[2] = !entry->registered;
		put_text(values, nulls, 3, entry->application_name);
		values[4] = Int32GetDatum(entry->weight);
		nulls[4] = !entry->registered;
		values[5] = BoolGetDatum(entry->drained);
		nulls[5] = !entry->registered;
		if (stale_reason != NULL)
		{
			values[6] = CStringGetTextDatum(rr_state_name(RR_STATE_UNKNOWN));
			values[7] = CStringGetTextDatum(stale_reason);
			values[8] = BoolGetDatum(false);
		}
		else
		{
			values[6] = CStringGetTextDatum(rr_state_name(entry->state));
			put_text(values, nulls, 7, entry->reason);
			values[8] = BoolGetDatum(entry->routable);
		}
		if (has_walsender && entry->client_addr[0] != '\0')
			values[9] = DirectFunctionCall1(inet_in, CStringGetDatum(entry->client_addr));
		else
			nulls[9] = true;
		put_text(values, nulls, 10,
				 has_walsender ? rr_walsender_state_name(entry->walsender_state) : NULL);
		put_text(values, nulls, 11, has_walsender ? entry->sync_state : NULL);
		put_lsn(values, nulls, 12, has_walsender ? entry->sent_lsn : 0);
		put_lsn(values, nulls, 13, has_walsender ? entry->write_lsn : 0);
		put_lsn(values, nulls, 14, has_walsender ? entry->flush_lsn : 0);
		put_lsn(values, nulls, 15, has_walsender ? entry->replay_lsn : 0);
		values[16] = Int64GetDatum(entry->lag_bytes);
		nulls[16] = entry->lag_bytes < 0;
		put_duration(values, nulls, 17, has_walsender ? entry->write_lag_us : -1);
		put_duration(values, nulls, 18, has_walsender ? entry->flush_lag_us : -1);
		put_duration(values, nulls, 19, has_walsender ? entry->replay_lag_us : -1);
		put_time(values, nulls, 20, has_walsender ? entry->reply_time : RR_NO_TIME);
		put_text(values, nulls, 21, has_slot ? entry->slot_name : NULL);
		values[22] = BoolGetDatum(entry->slot_active);
		nulls[22] = !has_slot;
		put_text(values, nulls, 23,
				 has_slot && entry->wal_status != RR_WAL_NONE
				 ? rr_wal_status_name(entry->wal_status) : NULL);
		put_time(values, nulls, 24, entry->state_since);
		put_time(values, nulls, 25, entry->observed_at);
		put_text(values, nulls, 26,
				 entry->registered ? rr_probe_state_name(entry->probe_state) : NULL);
		put_lsn(values, nulls, 27, entry->probe_replay_lsn);
		put_time(values, nulls, 28, entry->registered ? entry->probe_at : RR_NO_TIME);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static pid_t
live_worker_pid(void)
{
	pid_t		pid;

	SpinLockAcquire(&rr_shared->mutex);
	pid = rr_shared->pid;
	SpinLockRelease(&rr_shared->mutex);
	return pid;
}

Datum
replroute_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	rr_table_header header;
	rr_error	error;
	Datum		values[WORKER_STATUS_COLUMNS];
	bool		nulls[WORKER_STATUS_COLUMNS];
	pid_t		pid;
	bool		published;

	rr_require_preload();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "replroute_worker_status: return type must be a row type");
	desc = BlessTupleDesc(desc);

	memset(&error, 0, sizeof(error));
	if (rr_table_header_snapshot(rr_shared->table, &header, &error) != RR_OK)
		rr_report_core_error(&error, "replroute could not read its shared table");

	memset(values, 0, sizeof(values));
	memset(nulls, 0, sizeof(nulls));
	pid = live_worker_pid();
	published = header.published_at != RR_NO_TIME;

	values[0] = Int32GetDatum((int32) pid);
	nulls[0] = pid == 0;
	values[1] = Int64GetDatum((int64) header.rounds);
	put_time(values, nulls, 2, header.round_started_at);
	put_duration(values, nulls, 3, published ? header.round_duration_us : -1);
	put_duration(values, nulls, 4,
				 published ? Max(GetCurrentTimestamp() - header.published_at, 0) : -1);
	values[5] = BoolGetDatum(header.in_recovery);
	nulls[5] = !published;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * Waits until the worker has published a round that started after this call,
 * so that tests and scripts see the effect of what they did before without
 * sleeping blindly.  false when the timeout passes first (no worker, or it
 * cannot publish).
 */
Datum
replroute_refresh(PG_FUNCTION_ARGS)
{
	int64		timeout_us;
	TimestampTz deadline;
	uint64		target;
	bool		done = false;
	bool		asked = false;

	rr_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timeout must not be NULL")));
	timeout_us = interval_usec(PG_GETARG_INTERVAL_P(0));
	if (timeout_us < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));

	/* A round already running may have read before our caller's last change:
	 * wait for the one after it.  That round re-reads the registry too (the
	 * caller may have changed it in ways no trigger reports, such as CREATE
	 * EXTENSION). */
	target = pg_atomic_read_u64(&rr_shared->rounds_started) + 1;
	deadline = GetCurrentTimestamp();
	if (pg_add_s64_overflow(deadline, timeout_us, &deadline))
		deadline = DT_NOEND;

	ConditionVariablePrepareToSleep(&rr_shared->round_published);
	for (;;)
	{
		long		remaining_ms;

		if (pg_atomic_read_u64(&rr_shared->rounds_published) >= target)
		{
			done = true;
			break;
		}
		remaining_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining_ms <= 0)
			break;

		/* Asked once, woken again each time: the worker may have restarted
		 * meanwhile.  (Only once there is time to wait: a round takes
		 * microseconds, and a zero timeout must not see one that it caused.) */
		if (!asked)
		{
			rr_registry_changed();
			asked = true;
		}
		else if (pg_atomic_read_u64(&rr_shared->rounds_started) < target)
			rr_wake_worker();
		(void) ConditionVariableTimedSleep(&rr_shared->round_published,
										   Min(remaining_ms, REFRESH_RECHECK_MS),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();

	PG_RETURN_BOOL(done);
}

/*
 * Every event still in the ring, oldest first.  The ring is read in one pass
 * into local memory (at most replroute.event_log_size events).
 */
Datum
replroute_event_log(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	rr_event   *events;
	uint32		n_events = 0;
	rr_error	error;

	rr_require_preload();
	InitMaterializedSRF(fcinfo, 0);

	memset(&error, 0, sizeof(error));
	events = palloc(sizeof(rr_event) * (Size) rr_guc_event_log_size);
	if (rr_event_log_read(rr_shared->events, 0, events, (uint32) rr_guc_event_log_size,
						  &n_events, &error) != RR_OK)
		rr_report_core_error(&error, "replroute could not read its event log");

	for (uint32 i = 0; i < n_events; i++)
	{
		const rr_event *event = &events[i];
		Datum		values[EVENT_LOG_COLUMNS];
		bool		nulls[EVENT_LOG_COLUMNS];

		memset(values, 0, sizeof(values));
		memset(nulls, 0, sizeof(nulls));
		values[0] = Int64GetDatum((int64) event->seq);
		values[1] = TimestampTzGetDatum((TimestampTz) event->at);
		/* "" (a worker event's node, an appearing node's from_state) is NULL */
		put_text(values, nulls, 2, event->node);
		put_text(values, nulls, 3, event->from_state);
		put_text(values, nulls, 4, event->to_state);
		put_text(values, nulls, 5, event->reason);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
