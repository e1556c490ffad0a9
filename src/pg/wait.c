/*
 * wait.c -- replroute_wait_for_replay(lsn, timeout): on a standby, wait until
 * replay has reached lsn (true) or the timeout has passed (false); on a
 * primary, true at once.
 *
 * A plain function: no shared memory of ours, so it works on a standby that
 * does not preload the library.  The core (replroute/replay_wait.h) checks the
 * arguments, keeps the deadline and chooses each sleep; this file reads the
 * server's state and sleeps.
 *
 * The sleeps are pg_usleep() (WaitLatch counts in milliseconds, far too
 * coarse here); a signal cuts one short, and CHECK_FOR_INTERRUPTS() after
 * each makes a cancel or statement_timeout end the wait within one sleep.
 *
 * The calling statement holds a snapshot while it waits, so it can delay the
 * replay of a cleanup record that conflicts with it, by at most its timeout
 * (or max_standby_streaming_delay, after which the standby cancels it).
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "replroute/replay_wait.h"

PG_FUNCTION_INFO_V1(replroute_wait_for_replay);

static void
refuse(rr_wait_refusal refusal)
{
	switch (refusal)
	{
		case RR_WAIT_ACCEPTED:
			return;
		case RR_WAIT_NULL_LSN:
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("lsn must not be NULL"),
					 errhint("Pass the position the client learned at its commit "
							 "(replroute.commit_lsn).")));
			break;
		case RR_WAIT_NULL_TIMEOUT:
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("timeout must not be NULL")));
			break;
		case RR_WAIT_NEGATIVE_TIMEOUT:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("timeout must not be negative")));
			break;
		case RR_WAIT_SNAPSHOT_TAKEN:
			ereport(ERROR,
					(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
					 errmsg("replroute_wait_for_replay() cannot be used inside a REPEATABLE READ or SERIALIZABLE transaction"),
					 errdetail("The transaction's snapshot was taken before the wait, "
							   "so no later read in it could see the awaited write."),
					 errhint("Run the wait as a statement of its own before the "
							 "transaction, or in a READ COMMITTED transaction.")));
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("replroute_wait_for_replay(): unknown refusal %d", (int) refusal)));
}

Datum
replroute_wait_for_replay(PG_FUNCTION_ARGS)
{
	rr_wait_args args;
	rr_replay_wait wait;
	rr_wait_verdict verdict;

	memset(&args, 0, sizeof(args));
	args.lsn_is_null = PG_ARGISNULL(0);
	args.timeout_is_null = PG_ARGISNULL(1);
	if (!args.timeout_is_null)
	{
		Interval   *timeout = PG_GETARG_INTERVAL_P(1);

		args.timeout_us = rr_interval_usec(timeout->time, timeout->day, timeout->month);
	}
	args.xact_snapshot_taken = IsTransactionBlock() && IsolationUsesXactSnapshot();
	refuse(rr_wait_check(&args));

	rr_replay_wait_start(&wait, (rr_lsn) PG_GETARG_LSN(0), args.timeout_us,
						 GetCurrentTimestamp(), RecoveryInProgress());
	for (;;)
	{
		int64		sleep_us = 0;
		bool		in_recovery = RecoveryInProgress();

		/* After in_recovery: see rr_replay_wait_step(). */
		XLogRecPtr	replayed = GetXLogReplayRecPtr(NULL);

		verdict = rr_replay_wait_step(&wait, GetCurrentTimestamp(), in_recovery,
									  (rr_lsn) replayed, &sleep_us);
		if (verdict != RR_WAIT_SLEEP)
			break;

		pgstat_report_wait_start(PG_WAIT_EXTENSION);
		pg_usleep((long) sleep_us);
		pgstat_report_wait_end();

		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);
	}

	PG_RETURN_BOOL(rr_wait_verdict_result(verdict));
}
