/*
 * commit_lsn.c -- the setting replroute.commit_lsn: where this session's
 * latest commit record ends, reported to the client at every change.
 *
 * A setting declared GUC_REPORT is sent to the client in a ParameterStatus
 * message whenever its value changes, just before ReadyForQuery.  So a client
 * that commits a write learns the WAL position of its commit with no query of
 * its own (libpq: PQparameterStatus(conn, "replroute.commit_lsn")), and can
 * ask a standby to wait until it has replayed that far
 * (replroute_wait_for_replay).
 *
 * The value is XactLastCommitEnd, taken in the XACT_EVENT_COMMIT callback of
 * every transaction that wrote a commit record:
 *  - one with a transaction id (RecordTransactionCommit writes a commit record
 *    exactly then);
 *  - COMMIT PREPARED, whose own transaction has no id but writes the prepared
 *    transaction's commit record (noticed by the ProcessUtility hook below).
 * Not for read-only transactions (XactLastCommitEnd also moves when a read
 * only transaction wrote WAL without an id, e.g. pruning a page: the
 * transaction id, not that variable, says whether a commit record exists),
 * not for rollbacks (no commit event), not for PREPARE TRANSACTION (the
 * prepare event, and no commit record).  Parallel workers never write a
 * commit record (XACT_EVENT_PARALLEL_COMMIT); their leader reports.  A COMMIT
 * inside a procedure is a commit of its own: each sets the value, and the
 * client sees the last one when the CALL returns.
 *
 * Defined wherever the library is loaded, preloaded or not: PGC_INTERNAL, so
 * no user can set it, and SHOW / current_setting() read it like any setting.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/guc.h"

#include "replroute_pg.h"

static char *commit_lsn_value = NULL;

/* COMMIT PREPARED ran in the current transaction. */
static bool commit_prepared_ran = false;

static ProcessUtility_hook_type prev_process_utility = NULL;

static void
report_commit(void)
{
	char		text[32];		/* "FFFFFFFF/FFFFFFFF" */

	if (XLogRecPtrIsInvalid(XactLastCommitEnd))
		return;
	snprintf(text, sizeof(text), "%X/%X", LSN_FORMAT_ARGS(XactLastCommitEnd));
	SetConfigOption("replroute.commit_lsn", text, PGC_INTERNAL, PGC_S_OVERRIDE);
}

static void
commit_lsn_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (commit_prepared_ran ||
				TransactionIdIsValid(GetTopTransactionIdIfAny()))
				report_commit();
			commit_prepared_ran = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			commit_prepared_ran = false;
			break;
		default:
			break;
	}
}

static void
commit_lsn_process_utility(PlannedStmt *pstmt, const char *queryString,
						   bool readOnlyTree, ProcessUtilityContext context,
						   ParamListInfo params, QueryEnvironment *queryEnv,
						   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	/* Only after it succeeded: a failed one raised and wrote no commit. */
	if (IsA(parsetree, TransactionStmt) &&
		((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED)
		commit_prepared_ran = true;
}

void
rr_commit_lsn_init(void)
{
	DefineCustomStringVariable("replroute.commit_lsn",
							   "End of the commit record of this session's latest writing transaction.",
							   "Reported to the client at every change (ParameterStatus); "
							   "empty until the session commits a write.  Pass it to "
							   "replroute_wait_for_replay() on a standby to read your writes there.",
							   &commit_lsn_value,
							   "",
							   PGC_INTERNAL,
							   GUC_REPORT | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);

	RegisterXactCallback(commit_lsn_xact_callback, NULL);

	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = commit_lsn_process_utility;
}
