/*
 * replroute.c -- module entry: _PG_init, shared memory, and the small
 * helpers every other shim file uses (preload check, error translation,
 * waking the worker).  The settings are settings.c's.
 *
 * Shared memory holds three structs, each requested in shmem_request_hook and
 * initialised once in shmem_startup_hook under AddinShmemInitLock:
 *   "replroute worker"  RrWorkerShared (replroute_pg.h), the worker's identity
 *                       and round counters;
 *   "replroute table"   the core's table, rr_table_size(capacity) bytes, with
 *                       capacity = replroute.max_nodes + max_wal_senders (every
 *                       registered node plus every walsender that matches none);
 *   "replroute events"  the core's event ring, replroute.event_log_size events.
 * The table's and the ring's reader/writer protocols are the core's (seqlocks);
 * the shims only hand them memory.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "replroute_pg.h"
#include "listener_pg.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

RrWorkerShared *rr_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void rr_shmem_request(void);
static void rr_shmem_startup(void);
static uint32 table_capacity(void);
static Size rr_shmem_size(void);

void
_PG_init(void)
{
	/* Needs no shared memory: also where the library is loaded on demand. */
	rr_commit_lsn_init();

	/*
	 * Everything here needs the preload: PGC_POSTMASTER variables may only be
	 * defined then (later is FATAL), and shared memory and the worker exist
	 * only if requested at postmaster start.  Loaded later (CREATE EXTENSION
	 * without the preload), the library stays inert and every function says
	 * how to preload it.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	/* Before rr_define_settings(): it reserves the prefix, which drops
	 * placeholders. */
	rr_listener_init();
	rr_define_settings();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rr_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rr_shmem_startup;

	rr_registry_xact_callback_init();
	rr_register_worker();
}

static uint32
table_capacity(void)
{
	return (uint32) rr_guc_max_nodes + (uint32) max_wal_senders;
}

static Size
rr_shmem_size(void)
{
	/* ShmemInitStruct cache-line aligns every struct it hands out. */
	Size		size = CACHELINEALIGN(sizeof(RrWorkerShared));

	size = add_size(size, CACHELINEALIGN(rr_table_size(table_capacity())));
	return add_size(size, CACHELINEALIGN(rr_event_log_size((uint32) rr_guc_event_log_size)));
}

static void
rr_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(rr_shmem_size());
}

static void
rr_shmem_startup(void)
{
	bool		found;
	uint32		capacity = table_capacity();
	RrWorkerShared *shared;
	void	   *memory;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	shared = ShmemInitStruct("replroute worker", sizeof(RrWorkerShared), &found);
	if (!found)
	{
		SpinLockInit(&shared->mutex);
		shared->pid = 0;
		shared->proc_number = RR_INVALID_PROC_NUMBER;
		pg_atomic_init_u64(&shared->rounds_started, 0);
		pg_atomic_init_u64(&shared->rounds_published, 0);
		pg_atomic_init_u64(&shared->registry_changes, 0);
		ConditionVariableInit(&shared->round_published);
		shared->capacity = capacity;
		shared->table = NULL;
		shared->events = NULL;
	}

	memory = ShmemInitStruct("replroute table", rr_table_size(capacity), &found);
	if (!found)
	{
		shared->table = rr_table_init(memory, capacity);
		if (shared->table == NULL)
		{
			LWLockRelease(AddinShmemInitLock);
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("replroute could not initialise its shared table")));
		}
	}

	memory = ShmemInitStruct("replroute events",
							 rr_event_log_size((uint32) rr_guc_event_log_size), &found);
	if (!found)
	{
		shared->events = rr_event_log_init(memory, (uint32) rr_guc_event_log_size);
		if (shared->events == NULL)
		{
			LWLockRelease(AddinShmemInitLock);
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("replroute could not initialise its event log")));
		}
	}

	LWLockRelease(AddinShmemInitLock);

	rr_shared = shared;
}

/*
 * Every SQL function starts here: without the preload there is neither shared
 * memory nor a worker, and the user must learn how to fix that.
 */
void
rr_require_preload(void)
{
	if (rr_shared == NULL || rr_shared->table == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replroute must be loaded via shared_preload_libraries"),
				 errhint("Set shared_preload_libraries = 'replroute' in postgresql.conf "
						 "and restart the server.")));
}

/*
 * The worker reads the registry of one database only; a node registered
 * anywhere else would silently never be routed to.
 */
void
rr_require_registry_database(void)
{
	char	   *current = get_database_name(MyDatabaseId);

	if (current == NULL || strcmp(current, rr_guc_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the replroute registry is in database \"%s\", not in \"%s\"",
						rr_guc_database, current ? current : "?"),
				 errhint("Connect to database \"%s\", or set replroute.database and restart.",
						 rr_guc_database)));
}

/*
 * Turns a core status into an ERROR.  Only C frames raise: the core returned
 * normally and holds nothing that a longjmp would skip.
 */
void
rr_report_core_error(const rr_error *error, const char *what)
{
	int			sqlstate;

	switch (error->status)
	{
		case RR_ERR_NULL:
			sqlstate = ERRCODE_NULL_VALUE_NOT_ALLOWED;
			break;
		case RR_ERR_INVALID:
		case RR_ERR_TOO_LONG:
			sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
			break;
		case RR_ERR_CAPACITY:
			sqlstate = ERRCODE_CONFIGURATION_LIMIT_EXCEEDED;
			break;
		case RR_ERR_NOT_READY:
			sqlstate = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
			break;
		default:
			sqlstate = ERRCODE_INTERNAL_ERROR;
			break;
	}

	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("%s", what),
			 error->message[0] ? errdetail("%s", error->message) : 0));
	pg_unreachable();
}

/* Makes the worker start a round now instead of at the end of its interval. */
void
rr_wake_worker(void)
{
	rr_proc_number number;

	if (rr_shared == NULL)
		return;

	SpinLockAcquire(&rr_shared->mutex);
	number = rr_shared->proc_number;
	SpinLockRelease(&rr_shared->mutex);

	if (number != RR_INVALID_PROC_NUMBER)
		SetLatch(rr_proc_latch(number));
}
