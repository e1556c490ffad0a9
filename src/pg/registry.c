/*
 * registry.c -- the functions that change the registry table
 * (replroute_add_node, _remove_node, _set_weight, _drain, _undrain) and the
 * trigger that wakes the worker when the table changes.
 *
 * Every function validates its arguments through the core before it touches
 * the table, so bad input gets an error with a precise SQLSTATE and changes
 * nothing; the table's CHECK constraints mirror the same rules for direct DML.
 * They run as the caller (no SECURITY DEFINER): the caller's privileges on
 * replroute_node decide, which is what makes replroute_admin meaningful.
 *
 * Waking the worker happens at commit, not when the row is written: a round
 * that ran before the commit could not see the change.  The worker reads the
 * registry table only when told so (the counter rr_registry_changed() bumps)
 * or, as a safety net, every few seconds; so the commit must tell it.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "replroute_pg.h"

PG_FUNCTION_INFO_V1(replroute_add_node);
PG_FUNCTION_INFO_V1(replroute_remove_node);
PG_FUNCTION_INFO_V1(replroute_set_weight);
PG_FUNCTION_INFO_V1(replroute_drain);
PG_FUNCTION_INFO_V1(replroute_undrain);
PG_FUNCTION_INFO_V1(replroute_node_changed);

static bool wake_at_commit = false;

static void
registry_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (wake_at_commit)
				rr_registry_changed();
			wake_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

/*
 * Tells the worker that its copy of the registry is out of date: the counter
 * first, then the latch, so that the round the latch starts sees the count.
 * Called after the change is visible to new snapshots (at commit) or when a
 * caller asks for a full round (replroute_refresh).
 */
void
rr_registry_changed(void)
{
	if (rr_shared == NULL)
		return;
	pg_atomic_fetch_add_u64(&rr_shared->registry_changes, 1);
	rr_wake_worker();
}

void
rr_registry_xact_callback_init(void)
{
	RegisterXactCallback(registry_xact_callback, NULL);
}

/* Statement-level trigger on replroute_node; also catches direct DML. */
Datum
replroute_node_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("replroute_node_changed() must be called as a trigger")));

	/* Without the preload there is no worker to wake; a restore must work. */
	if (rr_shared != NULL)
		wake_at_commit = true;

	PG_RETURN_POINTER(NULL);
}

/* ---------------------------------------------------------------------------
 * Argument checks
 * ------------------------------------------------------------------------- */

static void
require_not_null(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", argname)));
}

static void
check(rr_status status, const rr_error *error, const char *what)
{
	if (status != RR_OK)
		rr_report_core_error(error, what);
}

/* The node name, validated; every registry function takes one first. */
static char *
node_name_arg(FunctionCallInfo fcinfo)
{
	char	   *name;
	rr_error	error;

	require_not_null(fcinfo, 0, "name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	memset(&error, 0, sizeof(error));
	check(rr_validate_node_name(name, &error), &error, "invalid node name");
	return name;
}

static int32
weight_arg(FunctionCallInfo fcinfo, int argno)
{
	int32		weight = PG_GETARG_INT32(argno);
	rr_error	error;

	memset(&error, 0, sizeof(error));
	check(rr_validate_weight(weight, &error), &error, "invalid weight");
	return weight;
}

/* ---------------------------------------------------------------------------
 * Table access
 * ------------------------------------------------------------------------- */

/* replroute_node, schema-qualified: the schema is the calling function's,
 * which is the extension's (the extension is not relocatable). */
static char *
registry_table(FunctionCallInfo fcinfo)
{
	char	   *schema = get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid));

	if (schema == NULL)
		elog(ERROR, "replroute: schema of function %u not found", fcinfo->flinfo->fn_oid);
	return psprintf("%s.replroute_node", quote_identifier(schema));
}

static void
registry_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "replroute: SPI_connect failed");
}

static void
spi_run(const char *query, int nargs, Oid *types, Datum *values, int expected)
{
	int			rc = SPI_execute_with_args(query, nargs, types, values, NULL, false, 0);

	if (rc != expected)
		elog(ERROR, "replroute: \"%s\" failed: %s", query, SPI_result_code_string(rc));
}

/* Runs an UPDATE of one node; 42704 when the node is not registered. */
static void
update_node(FunctionCallInfo fcinfo, const char *name, const char *set_clause,
			int nargs, Oid *types, Datum *values)
{
	char	   *query;

	registry_connect();
	query = psprintf("UPDATE %s SET %s WHERE name = $1",
					 registry_table(fcinfo), set_clause);
	spi_run(query, nargs, types, values, SPI_OK_UPDATE);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("replroute node \"%s\" does not exist", name)));
	SPI_finish();
}

/* ---------------------------------------------------------------------------
 * SQL-callable functions
 * ------------------------------------------------------------------------- */

Datum
replroute_add_node(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *host;
	int32		port;
	int32		weight;
	char	   *application_name;
	char	   *table;
	char	   *query;
	rr_error	error;
	Oid			types[5] = {TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID};
	Datum		values[5];
	int64		count;
	SPIPlanPtr	plan;
	int			rc;
	bool		duplicate;
	bool		isnull;

	rr_require_preload();
	rr_require_registry_database();

	/* Every NULL first: the caller learns of all required arguments at once
	 * rather than after fixing each domain error. */
	require_not_null(fcinfo, 0, "name");
	require_not_null(fcinfo, 1, "host");
	require_not_null(fcinfo, 2, "port");
	require_not_null(fcinfo, 3, "weight");

	memset(&error, 0, sizeof(error));
	name = node_name_arg(fcinfo);
	host = text_to_cstring(PG_GETARG_TEXT_PP(1));
	check(rr_validate_host(host, &error), &error, "invalid host");
	port = PG_GETARG_INT32(2);
	check(rr_validate_port(port, &error), &error, "invalid port");
	weight = weight_arg(fcinfo, 3);
	/* NULL means: the walsender shows up under the node's name. */
	application_name = PG_ARGISNULL(4) ? name : text_to_cstring(PG_GETARG_TEXT_PP(4));
	check(rr_validate_application_name(application_name, &error), &error,
		  "invalid application_name");

	table = registry_table(fcinfo);
	registry_connect();

	/* Self-conflicting, so two concurrent adds cannot both pass the count. */
	spi_run(psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", table),
			0, NULL, NULL, SPI_OK_UTILITY);

	/*
	 * Counted under the latest snapshot, not the transaction's: under
	 * REPEATABLE READ the transaction snapshot may predate adds that
	 * committed before the lock was granted, and the count would let the
	 * registry grow past max_nodes (as RI checks do, for the same reason).
	 */
	values[0] = CStringGetTextDatum(name);
	query = psprintf("SELECT count(*), coalesce(bool_or(name = $1), false) FROM %s", table);
	plan = SPI_prepare(query, 1, types);
	if (plan == NULL)
		elog(ERROR, "replroute: \"%s\" failed: %s", query, SPI_result_code_string(SPI_result));
	rc = SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(), InvalidSnapshot,
							  true, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "replroute: \"%s\" failed: %s", query, SPI_result_code_string(rc));
	count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	duplicate = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

	if (duplicate)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("replroute node \"%s\" already exists", name)));
	if (count >= rr_guc_max_nodes)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot register more than %d replroute nodes", rr_guc_max_nodes),
				 errhint("Remove a node, or raise replroute.max_nodes and restart the server.")));

	values[1] = CStringGetTextDatum(host);
	values[2] = Int32GetDatum(port);
	values[3] = Int32GetDatum(weight);
	values[4] = CStringGetTextDatum(application_name);
	query = psprintf("INSERT INTO %s (name, host, port, weight, application_name)"
					 " VALUES ($1, $2, $3, $4, $5)", table);
	spi_run(query, 5, types, values, SPI_OK_INSERT);

	SPI_finish();
	PG_RETURN_VOID();
}

Datum
replroute_remove_node(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		removed;

	rr_require_preload();
	rr_require_registry_database();
	name = node_name_arg(fcinfo);

	registry_connect();
	values[0] = CStringGetTextDatum(name);
	spi_run(psprintf("DELETE FROM %s WHERE name = $1", registry_table(fcinfo)),
			1, types, values, SPI_OK_DELETE);
	removed = SPI_processed > 0;
	SPI_finish();

	PG_RETURN_BOOL(removed);
}

Datum
replroute_set_weight(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];

	rr_require_preload();
	rr_require_registry_database();
	require_not_null(fcinfo, 0, "name");
	require_not_null(fcinfo, 1, "weight");
	name = node_name_arg(fcinfo);
	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(weight_arg(fcinfo, 1));

	update_node(fcinfo, name, "weight = $2", 2, types, values);
	PG_RETURN_VOID();
}

static Datum
set_drained(FunctionCallInfo fcinfo, bool drained)
{
	char	   *name;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	rr_require_preload();
	rr_require_registry_database();
	name = node_name_arg(fcinfo);
	values[0] = CStringGetTextDatum(name);

	update_node(fcinfo, name, drained ? "drained = true" : "drained = false",
				1, types, values);
	PG_RETURN_VOID();
}

Datum
replroute_drain(PG_FUNCTION_ARGS)
{
	return set_drained(fcinfo, true);
}

Datum
replroute_undrain(PG_FUNCTION_ARGS)
{
	return set_drained(fcinfo, false);
}
