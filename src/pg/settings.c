/*
 * settings.c -- every replroute.* setting: its variable, its definition
 * (names, ranges, units, check hooks) and the bounds the worker derives from
 * them (rr_current_thresholds).
 *
 * _PG_init calls rr_define_settings() while the library is preloaded; every
 * other file only reads the variables (settings.h).  Nothing here touches
 * shared memory or the worker, so this file depends on no other shim.
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "libpq-fe.h"

#include "settings.h"

char	   *rr_guc_database = NULL;
int			rr_guc_max_nodes = 32;
int			rr_guc_poll_interval_ms = 50;
int			rr_guc_stale_after_ms = 2000;
int			rr_guc_max_lag_bytes = 16 * 1024 * 1024;
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

static bool check_stall_timeout(int *newval, void **extra, GucSource source);
static bool check_probe_conninfo(char **newval, void **extra, GucSource source);

void
rr_define_settings(void)
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
							"A round reads the walsenders and slots from shared memory: "
							"lag and a vanished walsender are judged within one interval.  "
							"A broken probe connection (a crashed standby) and registry "
							"changes wake the worker at once.",
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
							"Measured from this server's flushed WAL position.  A bare "
							"number is bytes (units such as '16MB' work too), at most "
							"2147483647 (2GB - 1); -1 switches the bound off.",
							&rr_guc_max_lag_bytes,
							16 * 1024 * 1024,
							-1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
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

rr_thresholds
rr_current_thresholds(void)
{
	rr_thresholds thresholds;

	thresholds.max_lag_bytes = rr_guc_max_lag_bytes < 0 ? RR_NO_LIMIT
		: (int64) rr_guc_max_lag_bytes;
	thresholds.max_replay_lag_us = rr_guc_max_replay_lag_ms < 0 ? RR_NO_LIMIT
		: (int64) rr_guc_max_replay_lag_ms * 1000;
	thresholds.lag_leave_fraction = rr_guc_lag_leave_fraction;
	thresholds.recovery_hold_us = (int64) rr_guc_recovery_hold_ms * 1000;
	thresholds.stall_timeout_us = rr_guc_stall_timeout_ms < 0 ? RR_NO_LIMIT
		: (int64) rr_guc_stall_timeout_ms * 1000;
	return thresholds;
}
