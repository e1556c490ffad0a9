/*
 * observe.c -- what the worker reads each round: the walsenders and the
 * physical replication slots, straight from shared memory, and (only when it
 * changed) the registry table.
 *
 * Walsenders: WalSndCtl->walsnds[0 .. max_wal_senders), each entry copied
 * under its own spinlock (walsnd->mutex), the way pg_stat_get_wal_senders()
 * does; an entry with pid 0 is free.  sync_state follows that function's
 * rules (SyncRepGetCandidateStandbys, asked only when some walsender has a
 * synchronous priority at all).  application_name and client_addr are not in
 * WalSnd: they are the walsender's backend status, as pg_stat_replication
 * joins them, and they do not change during a walsender's life.  So they are
 * looked up once per new pid (one copy of the backend status table for all
 * the round's new pids) and kept per walsender slot; a walsender whose status
 * is not found yet is left out, as the view's join leaves it out.
 *
 * Slots: ReplicationSlotCtl->replication_slots[0 .. max_replication_slots)
 * under ReplicationSlotControlLock (shared), each slot's fields copied under
 * its mutex, wal_status from GetWALAvailability() with the same corrections
 * as pg_get_replication_slots() (an invalidated slot is lost; a removed
 * segment with a live walsender is still unreserved).
 *
 * The registry: one SPI read of replroute_node, in the caller's transaction.
 * Its plan names the extension's schema, so it is re-prepared whenever the
 * extension is (re)created.
 *
 * Every version-specific access (field names, renamed functions) is a
 * wrapper of compat.h.
 */
#include "postgres.h"

#include <sys/socket.h>
#include <netdb.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "common/ip.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/slot.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "replroute_pg.h"

/* What the backend status said about the walsender in one WalSnd slot. */
typedef struct WalsenderIdentity
{
	pid_t		pid;			/* 0: nothing known for this slot */
	char		application_name[RR_NAME_LEN];
	char		client_addr[RR_ADDR_LEN];
} WalsenderIdentity;

static WalsenderIdentity *identities;	/* max_wal_senders entries */

/* Per-round scratch, max_wal_senders entries each, allocated once. */
static int *priorities;			/* per output row: its sync priority */
static int *slot_of;			/* per output row: its WalSnd slot */
static pid_t *new_pids;			/* pids whose identity is looked up */
static int *new_slots;			/* and their WalSnd slots */

/* The registry's prepared read, and the extension it was made for. */
static SPIPlanPtr registry_plan;
static Oid	registry_extension = InvalidOid;
static bool logged_waiting;

/* Forget every walsender's identity (tests, and a worker that restarts). */
void
rr_observe_forget_walsenders(void)
{
	if (identities != NULL)
		memset(identities, 0, sizeof(WalsenderIdentity) * max_wal_senders);
}

/* client_addr as host(pg_stat_get_activity().client_addr) shows it. */
static void
format_client_addr(const SockAddr *addr, char *dst, size_t size)
{
	SockAddr	zero;
	char		host[NI_MAXHOST];
	char		port[NI_MAXSERV];

	dst[0] = '\0';
	memset(&zero, 0, sizeof(zero));
	if (memcmp(addr, &zero, sizeof(zero)) == 0)
		return;
	if (addr->addr.ss_family != AF_INET && addr->addr.ss_family != AF_INET6)
		return;					/* a unix socket: NULL */
	host[0] = '\0';
	port[0] = '\0';
	if (pg_getnameinfo_all(&addr->addr, addr->salen, host, sizeof(host),
						   port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	clean_ipv6_addr(addr->addr.ss_family, host);
	strlcpy(dst, host, size);
}

/*
 * Fills the identity of every slot in want[] (pids not known yet) from one
 * copy of the backend status table; a pid not found stays unknown (0).
 */
static void
lookup_identities(const pid_t *want, const int *slots, int n_want)
{
	int			n_backends;
	MemoryContext outer = CurrentMemoryContext;

	n_backends = pgstat_fetch_stat_numbackends();
	for (int b = 1; b <= n_backends; b++)
	{
		PgBackendStatus *status = rr_local_backend_status(b);

		if (status == NULL)
			continue;
		for (int i = 0; i < n_want; i++)
		{
			WalsenderIdentity *identity = &identities[slots[i]];

			if (status->st_procpid != want[i])
				continue;
			identity->pid = want[i];
			strlcpy(identity->application_name,
					status->st_appname ? status->st_appname : "",
					sizeof(identity->application_name));
			format_client_addr(&status->st_clientaddr, identity->client_addr,
							   sizeof(identity->client_addr));
		}
	}
	/* The copy is ours to drop: the worker has no transaction end that would. */
	pgstat_clear_backend_activity_snapshot();
	MemoryContextSwitchTo(outer);
}

static rr_walsender_state
walsender_state(WalSndState state)
{
	switch (state)
	{
		case WALSNDSTATE_STARTUP:
			return RR_WS_STARTUP;
		case WALSNDSTATE_BACKUP:
			return RR_WS_BACKUP;
		case WALSNDSTATE_CATCHUP:
			return RR_WS_CATCHUP;
		case WALSNDSTATE_STREAMING:
			return RR_WS_STREAMING;
		case WALSNDSTATE_STOPPING:
			return RR_WS_STOPPING;
	}
	return RR_WS_NONE;
}

/*
 * Copies up to max walsenders into out; returns how many.  Also those whose
 * identity is not known yet are left out (the view's inner join).
 */
size_t
rr_observe_walsenders(rr_walsender_obs *out, size_t max)
{
	size_t		n = 0;
	int			n_new = 0;
	bool		any_priority = false;

	if (identities == NULL)
	{
		Size		count = Max(max_wal_senders, 1);

		identities = MemoryContextAllocZero(TopMemoryContext,
											sizeof(WalsenderIdentity) * count);
		priorities = MemoryContextAlloc(TopMemoryContext, sizeof(int) * count);
		slot_of = MemoryContextAlloc(TopMemoryContext, sizeof(int) * count);
		new_pids = MemoryContextAlloc(TopMemoryContext, sizeof(pid_t) * count);
		new_slots = MemoryContextAlloc(TopMemoryContext, sizeof(int) * count);
	}

	for (int i = 0; i < max_wal_senders && n < max; i++)
	{
		WalSnd	   *walsnd = &WalSndCtl->walsnds[i];
		rr_walsender_obs *row = &out[n];
		WalSndState state;
		int			priority;
		XLogRecPtr	sent,
					write,
					flush,
					apply;
		TimeOffset	write_lag,
					flush_lag,
					apply_lag;
		TimestampTz reply;
		pid_t		pid;

		SpinLockAcquire(&walsnd->mutex);
		pid = walsnd->pid;
		if (pid == 0)
		{
			SpinLockRelease(&walsnd->mutex);
			continue;
		}
		state = walsnd->state;
		sent = walsnd->sentPtr;
		write = walsnd->write;
		flush = walsnd->flush;
		apply = walsnd->apply;
		write_lag = walsnd->writeLag;
		flush_lag = walsnd->flushLag;
		apply_lag = walsnd->applyLag;
		priority = walsnd->sync_standby_priority;
		reply = walsnd->replyTime;
		SpinLockRelease(&walsnd->mutex);

		memset(row, 0, sizeof(*row));
		row->pid = (int32) pid;
		row->state = walsender_state(state);
		row->sent_lsn = (rr_lsn) sent;
		row->write_lsn = (rr_lsn) write;
		row->flush_lsn = (rr_lsn) flush;
		row->replay_lsn = (rr_lsn) apply;
		row->write_lag_us = write_lag < 0 ? RR_NO_DURATION : (int64) write_lag;
		row->flush_lag_us = flush_lag < 0 ? RR_NO_DURATION : (int64) flush_lag;
		row->replay_lag_us = apply_lag < 0 ? RR_NO_DURATION : (int64) apply_lag;
		row->reply_time = reply == 0 ? RR_NO_TIME : (rr_timestamp) reply;
		/* A standby that never reports a flush position is asynchronous. */
		priorities[n] = XLogRecPtrIsInvalid(flush) ? 0 : priority;
		any_priority |= priorities[n] != 0;
		slot_of[n] = i;
		if (identities[i].pid != pid)
		{
			identities[i].pid = 0;
			new_pids[n_new] = pid;
			new_slots[n_new] = i;
			n_new++;
		}
		n++;
	}

	if (n_new > 0)
		lookup_identities(new_pids, new_slots, n_new);

	/* sync_state, as pg_stat_get_wal_senders() derives it. */
	if (any_priority)
	{
		SyncRepStandbyData *sync_standbys;
		int			n_sync = SyncRepGetCandidateStandbys(&sync_standbys);

		for (size_t k = 0; k < n; k++)
		{
			bool		is_sync = false;

			if (priorities[k] == 0)
			{
				strlcpy(out[k].sync_state, "async", sizeof(out[k].sync_state));
				continue;
			}
			for (int j = 0; j < n_sync; j++)
				if (sync_standbys[j].walsnd_index == slot_of[k] &&
					sync_standbys[j].pid == out[k].pid)
				{
					is_sync = true;
					break;
				}
			if (!is_sync)
				strlcpy(out[k].sync_state, "potential", sizeof(out[k].sync_state));
			else if (SyncRepConfig != NULL &&
					 SyncRepConfig->syncrep_method == SYNC_REP_PRIORITY)
				strlcpy(out[k].sync_state, "sync", sizeof(out[k].sync_state));
			else
				strlcpy(out[k].sync_state, "quorum", sizeof(out[k].sync_state));
		}
		pfree(sync_standbys);
	}
	else
		for (size_t k = 0; k < n; k++)
			strlcpy(out[k].sync_state, "async", sizeof(out[k].sync_state));

	/* Identities; drop the walsenders the backend status does not show. */
	{
		size_t		kept = 0;

		for (size_t k = 0; k < n; k++)
		{
			const WalsenderIdentity *identity = &identities[slot_of[k]];

			if (identity->pid != (pid_t) out[k].pid)
				continue;
			if (kept != k)
				out[kept] = out[k];
			strlcpy(out[kept].application_name, identity->application_name,
					sizeof(out[kept].application_name));
			strlcpy(out[kept].client_addr, identity->client_addr,
					sizeof(out[kept].client_addr));
			kept++;
		}
		n = kept;
	}
	return n;
}

/* wal_status of a slot, with pg_get_replication_slots()'s corrections. */
static rr_wal_status
slot_wal_status(ReplicationSlot *slot, XLogRecPtr restart_lsn, bool invalidated)
{
	WALAvailability availability;

	if (invalidated)
		availability = WALAVAIL_REMOVED;
	else
		availability = GetWALAvailability(restart_lsn);

	switch (availability)
	{
		case WALAVAIL_INVALID_LSN:
			return RR_WAL_NONE;
		case WALAVAIL_RESERVED:
			return RR_WAL_RESERVED;
		case WALAVAIL_EXTENDED:
			return RR_WAL_EXTENDED;
		case WALAVAIL_UNRESERVED:
			return RR_WAL_UNRESERVED;
		case WALAVAIL_REMOVED:
			/* The walsender may have moved on to a segment still there. */
			if (!XLogRecPtrIsInvalid(restart_lsn))
			{
				pid_t		pid;

				SpinLockAcquire(&slot->mutex);
				pid = slot->active_pid;
				SpinLockRelease(&slot->mutex);
				if (pid != 0)
					return RR_WAL_UNRESERVED;
			}
			return RR_WAL_LOST;
	}
	return RR_WAL_NONE;
}

/* Copies up to max physical slots into out; returns how many. */
size_t
rr_observe_slots(rr_slot_obs *out, size_t max)
{
	size_t		n = 0;

	if (ReplicationSlotCtl == NULL || max_replication_slots == 0)
		return 0;

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (int i = 0; i < max_replication_slots && n < max; i++)
	{
		ReplicationSlot *slot = &ReplicationSlotCtl->replication_slots[i];
		rr_slot_obs *row = &out[n];
		Oid			database;
		pid_t		active_pid;
		XLogRecPtr	restart_lsn;
		bool		invalidated;

		if (!slot->in_use)
			continue;

		SpinLockAcquire(&slot->mutex);
		database = slot->data.database;
		active_pid = slot->active_pid;
		restart_lsn = slot->data.restart_lsn;
		invalidated = rr_slot_invalidated(slot);
		memset(row, 0, sizeof(*row));
		strlcpy(row->slot_name, NameStr(slot->data.name), sizeof(row->slot_name));
		SpinLockRelease(&slot->mutex);

		if (database != InvalidOid)
			continue;			/* logical */
		row->active = active_pid != 0;
		row->active_pid = (int32) active_pid;
		row->restart_lsn = (rr_lsn) restart_lsn;
		row->wal_status = slot_wal_status(slot, restart_lsn, invalidated);
		n++;
	}
	LWLockRelease(ReplicationSlotControlLock);
	return n;
}

/* ---------------------------------------------------------------------------
 * The registry (in the caller's transaction, SPI connected)
 * ------------------------------------------------------------------------- */

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

/*
 * Reads the registry into rows allocated in context (not the current one:
 * SPI switches to its own, which SPI_finish frees); *available is false when
 * the extension does not exist (no rows then).
 */
size_t
rr_observe_registry(MemoryContext context, rr_node_config **out, bool *available)
{
	rr_node_config *rows;
	TupleDesc	desc;
	Oid			extension;
	Oid			schema;
	int			rc;

	*out = NULL;
	*available = false;

	if (!find_extension(&extension, &schema))
	{
		if (registry_plan != NULL)
		{
			SPI_freeplan(registry_plan);
			registry_plan = NULL;
			registry_extension = InvalidOid;
		}
		if (!logged_waiting)
		{
			ereport(LOG,
					(errmsg("replroute worker: extension \"replroute\" does not exist in "
							"database \"%s\"; waiting for CREATE EXTENSION replroute",
							rr_guc_database)));
			logged_waiting = true;
		}
		return 0;
	}
	logged_waiting = false;

	if (registry_plan != NULL && registry_extension != extension)
	{
		SPI_freeplan(registry_plan);
		registry_plan = NULL;
	}
	if (registry_plan == NULL)
	{
		char	   *schema_name = get_namespace_name(schema);
		char	   *query;

		if (schema_name == NULL)
			return 0;
		query = psprintf("SELECT name, host, port, weight, application_name, drained"
						 "  FROM %s.replroute_node ORDER BY name",
						 quote_identifier(schema_name));
		registry_plan = prepare_kept(query);
		registry_extension = extension;
	}
	rc = SPI_execute_plan(registry_plan, NULL, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "replroute worker: reading the registry failed: %s",
			 SPI_result_code_string(rc));

	rows = MemoryContextAllocZero(context, sizeof(rr_node_config) * Max(SPI_processed, 1));
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
