/*
 * replroute.c -- module entry: _PG_init, GUCs, shared memory, and the small
 * helpers every other shim file uses (preload check, error translation,
 * waking the worker).
 *
 * Shared memory holds two structs, each requested in shmem_request_hook and
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

#include "libpq-fe.h"

#include "replroute_pg.h"
#include "listener_pg.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

char	   *rr_guc_database = NULL;
int			rr_guc_max_nodes = 32;
int			rr_guc_poll_interval_ms = 50;
int			rr_guc_stale_after_ms = 2000;
int			rr_guc_max_lag_kb = 16 * 1024;
int			rr_guc_max_replay_lag_ms = 1000;
double		rr_guc_lag_leave_fraction = 0.5;
int			rr_guc_recovery_hold_ms = 1000;
int			rr_guc_stall_timeout_ms = 2000;
int			rr_guc_policy = RR_POLICY_WEIGHTED;
int			rr_guc_fallback = RR_FALLBACK_NONE;
char	   *rr_guc_primary_name = NULL;
int			rr_guc_event_log_size = 1000;
bool		rr_guc_probe = true;
int			rr_guc_probe_interval_ms = 250;
int			rr_guc_probe_timeout_ms = 1000;
char	   *rr_guc_probe_conninfo = NULL;

RrWorkerShared *rr_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static const struct config_enum_entry policy_options[] = {
	{"weighted", RR_POLICY_WEIGHTED, false},
	{"round_robin", RR_POLICY_ROUND_ROBIN, false},
	{"least_lag", RR_POLICY_LEAST_LAG, false},
	{NULL, 0, false}
};

static const struct config_enum_entry fallback_options[] = {
	{"none", RR_FALLBACK_NONE, false},
	{"primary", RR_FALLBACK_PRIMARY, false},
	{"error", RR_FALLBACK_ERROR, false},
	{NULL, 0, false}
};

static void define_gucs(void);
static bool check_stall_timeout(int *newval, void **extra, GucSource source);
static bool check_probe_conninfo(char **newval, void **extra, GucSource source);
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

	/* Before define_gucs(): it reserves the prefix, which drops placeholders. */
	rr_listener_init();
	define_gucs();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rr_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rr_shmem_startup;

	rr_registry_xact_callback_init();
	rr_register_worker();
}

static void
define_gucs(void)
{
	DefineCustomStringVariable("replroute.database",
							   "Database whose replroute_node table the worker reads.",
							   "The registry functions work only in this database; "
							   "create the extension there.",
							   &rr_guc_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("replroute.max_nodes",
							"Maximum number of registered standbys.",
							"Sizes the shared table at server start, together with "
							"max_wal_senders for walsenders that match no node.",
							&rr_guc_max_nodes,
							32,
							1, RR_MAX_NODES_LIMIT,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("replroute.poll_interval",
							"Time between two observations of the standbys.",
							"A standby whose walsender vanished stops being routed to "
							"within about one interval.  Registry changes wake the "
							"worker at once.",
							&rr_guc_poll_interval_ms,
							50,
							1, 60 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("replroute.stale_after",
							"Age after which the published health data is not trusted.",
							"Older data routes nothing (the fallback applies), so a "
							"stuck worker never keeps reads on a standby that has "
							"since failed.  Must be larger than replroute.poll_interval.",
							&rr_guc_stale_after_ms,
							2000,
							1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("replroute.max_lag_bytes",
							"WAL a standby may have left to replay and still be routed to.",
							"Measured from this server's flushed WAL position; "
							"-1 switches the bound off.",
							&rr_guc_max_lag_kb,
							16 * 1024,
							-1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("replroute.max_replay_lag",
							"Replay delay a standby may have and still be routed to.",
							"-1 switches the bound off.",
							&rr_guc_max_replay_lag_ms,
							1000,
							-1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	/*
	 * One fraction for both bounds rather than two explicit leave settings: it
	 * can never put a leave bound above its enter bound, and it follows the
	 * enter bounds when an operator changes them.  0.5 means a node that went
	 * past 16MB comes back at 8MB: far enough below the bound that a lag
	 * hovering around it does not flap, close enough that a standby that
	 * caught up is not kept out for long.
	 */
	DefineCustomRealVariable("replroute.lag_leave_fraction",
							 "Fraction of each lag bound a lagging standby must get back to.",
							 "A standby enters lagging above replroute.max_lag_bytes or "
							 "replroute.max_replay_lag and leaves it only at or below this "
							 "fraction of them, so a lag near a bound does not flap.  "
							 "1 switches the hysteresis off.",
							 &rr_guc_lag_leave_fraction,
							 0.5,
							 0.0, 1.0,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("replroute.recovery_hold",
							"Time a standby back from a fault must stay healthy before it is routed to.",
							"Until then its state is recovering.  Applies only to a standby "
							"that was routable before it went bad; 0 switches the hold off.",
							&rr_guc_recovery_hold_ms,
							1000,
							0, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	/*
	 * A standby replies at once when it writes WAL, and every
	 * wal_receiver_status_interval (10s) when idle; the worker judges only
	 * while WAL is pending, so an idle standby is never stalled.  2s stays
	 * clear of a slow fsync on a busy disk, which delays replies too.
	 */
	DefineCustomIntVariable("replroute.stall_timeout",
							"Time a standby may leave pending WAL unanswered before it is stalled.",
							"Judged only while the primary has WAL the standby has not "
							"confirmed writing: then no reply for longer makes it stalled "
							"and not routable.  -1 switches the check off.",
							&rr_guc_stall_timeout_ms,
							2000,
							-1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							check_stall_timeout, NULL, NULL);

	DefineCustomEnumVariable("replroute.policy",
							 "How replroute_pick_reader() chooses among routable standbys.",
							 "weighted: random, in proportion to weight; round_robin; "
							 "least_lag: the one with the least replay lag.",
							 &rr_guc_policy,
							 RR_POLICY_WEIGHTED,
							 policy_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("replroute.fallback",
							 "What replroute_pick_reader() does when no standby qualifies.",
							 "none: return NULL; primary: return replroute.primary_name; "
							 "error: raise an error that says why.",
							 &rr_guc_fallback,
							 RR_FALLBACK_NONE,
							 fallback_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("replroute.primary_name",
							   "Name replroute_pick_reader() returns for the primary.",
							   "Used when replroute.fallback = primary.",
							   &rr_guc_primary_name,
							   "primary",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("replroute.event_log_size",
							"Number of state changes kept in replroute_events.",
							"The oldest events are overwritten first.  The log lives in "
							"shared memory: it survives worker restarts, not server "
							"restarts.",
							&rr_guc_event_log_size,
							1000,
							RR_EVENT_LOG_MIN, RR_EVENT_LOG_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("replroute.probe",
							 "Probe every registered standby over a client connection.",
							 "Detects a hung standby (whose walsender lingers until "
							 "wal_sender_timeout) and a standby that is not in recovery. "
							 "Switch off where the primary cannot reach the standbys' "
							 "client port; nodes are then judged on walsender data alone.",
							 &rr_guc_probe,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("replroute.probe_interval",
							"Time between two probe queries to the same standby.",
							"Each probe is one trivial query on one persistent connection.",
							&rr_guc_probe_interval_ms,
							250,
							10, 60 * 60 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("replroute.probe_timeout",
							"Time a probe connection or query may take before the standby is unreachable.",
							"The connection is then dropped and re-established with a "
							"backoff that starts at replroute.probe_interval and grows to 5 s.",
							&rr_guc_probe_timeout_ms,
							1000,
							10, 10 * 60 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("replroute.probe_conninfo",
							   "Connection options of the probes (user, dbname, sslmode, passfile, ...).",
							   "Host and port come from the registry and may not be set here; "
							   "a password may not be set here either: use a password file.",
							   &rr_guc_probe_conninfo,
							   "dbname=postgres",
							   PGC_SIGHUP,
							   0,
							   check_probe_conninfo, NULL, NULL);

	MarkGUCPrefixReserved("replroute");
}

/* 0 would call every standby stalled the moment WAL is in flight. */
static bool
check_stall_timeout(int *newval, void **extra, GucSource source)
{
	if (*newval == 0)
	{
		GUC_check_errdetail("Use -1 to switch the stall check off, or a positive time.");
		return false;
	}
	return true;
}

/*
 * The value is never echoed: GUC's default complaint prints it, and a
 * rejected value is exactly the one that may hold a password.
 */
static bool
check_probe_conninfo(char **newval, void **extra, GucSource source)
{
	PQconninfoOption *options;
	char	   *parse_error = NULL;

	if (*newval == NULL)
		return true;
	options = PQconninfoParse(*newval, &parse_error);
	if (options == NULL)
	{
		if (parse_error != NULL)
			PQfreemem(parse_error);
		GUC_check_errmsg("replroute.probe_conninfo is not a valid connection string");
		GUC_check_errdetail("Write keyword=value pairs, such as 'dbname=postgres user=monitor'.");
		return false;
	}
	for (PQconninfoOption *option = options; option->keyword != NULL; option++)
	{
		if (option->val == NULL)
			continue;
		if (strcmp(option->keyword, "password") == 0)
		{
			PQconninfoFree(options);
			GUC_check_errmsg("replroute.probe_conninfo must not contain a password");
			GUC_check_errhint("Use a password file (passfile=...) or an authentication "
							  "method without a password for the probe's user.");
			return false;
		}
		if (strcmp(option->keyword, "host") == 0 ||
			strcmp(option->keyword, "hostaddr") == 0 ||
			strcmp(option->keyword, "port") == 0)
		{
			GUC_check_errmsg("replroute.probe_conninfo must not set \"%s\"", option->keyword);
			GUC_check_errdetail("Every probe connects to the host and port its node was registered with.");
			PQconninfoFree(options);
			return false;
		}
	}
	PQconninfoFree(options);
	return true;
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

rr_thresholds
rr_current_thresholds(void)
{
	rr_thresholds thresholds;

	thresholds.max_lag_bytes = rr_guc_max_lag_kb < 0 ? RR_NO_LIMIT
		: (int64) rr_guc_max_lag_kb * 1024;
	thresholds.max_replay_lag_us = rr_guc_max_replay_lag_ms < 0 ? RR_NO_LIMIT
		: (int64) rr_guc_max_replay_lag_ms * 1000;
	thresholds.lag_leave_fraction = rr_guc_lag_leave_fraction;
	thresholds.recovery_hold_us = (int64) rr_guc_recovery_hold_ms * 1000;
	thresholds.stall_timeout_us = rr_guc_stall_timeout_ms < 0 ? RR_NO_LIMIT
		: (int64) rr_guc_stall_timeout_ms * 1000;
	return thresholds;
}
