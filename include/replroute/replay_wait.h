/*
 * replay_wait.h -- the boundary of replroute_wait_for_replay() (src/pg/wait.c)
 * and of the interval conversion it uses.
 *
 * The shim reads the server's state (in recovery? replayed up to where? the
 * time) and the core decides: whether the arguments are acceptable, when the
 * wait is over and with which result, and how long to sleep before looking
 * again.  Plain C, like replroute.h; nothing here raises or throws.
 *
 * Why the wait polls: PostgreSQL 15 gives backends no wakeup when the startup
 * process replays a record (it updates lastReplayedEndRecPtr under a spinlock
 * and wakes nobody but, on a timeline switch or a remote_apply commit, the
 * walsenders and the walreceiver).  So the shim reads GetXLogReplayRecPtr()
 * after short sleeps whose length rr_replay_wait_step() chooses.
 */
#ifndef REPLROUTE_REPLAY_WAIT_H
#define REPLROUTE_REPLAY_WAIT_H

#include "replroute/replroute.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * An interval (PostgreSQL's Interval: time in microseconds, days, months) as
 * microseconds, a month being 30 days as EXTRACT(epoch) counts it.  Saturates
 * at INT64_MIN/INT64_MAX instead of overflowing, with the sign of the whole
 * ('178000000 years -1 day' is long, not negative): callers only compare.
 */
int64_t rr_interval_usec(int64_t time_us, int32_t days, int32_t months) RR_NOEXCEPT;

/* What replroute_wait_for_replay() was called with, and where. */
typedef struct rr_wait_args
{
	bool lsn_is_null;
	bool timeout_is_null;
	int64_t timeout_us;          /* rr_interval_usec() of the timeout */
	bool xact_snapshot_taken;    /* in a transaction block that uses one snapshot
	                              * for all its statements (REPEATABLE READ,
	                              * SERIALIZABLE): it was taken before the wait */
} rr_wait_args;

typedef enum rr_wait_refusal
{
	RR_WAIT_ACCEPTED = 0,
	RR_WAIT_NULL_LSN,            /* 22004 */
	RR_WAIT_NULL_TIMEOUT,        /* 22004 */
	RR_WAIT_NEGATIVE_TIMEOUT,    /* 22023 */
	RR_WAIT_SNAPSHOT_TAKEN       /* 25001: the read after the wait could not see the write */
} rr_wait_refusal;

/* The first refusal that applies, in the order of the enum. */
rr_wait_refusal rr_wait_check(const rr_wait_args *args) RR_NOEXCEPT;

/* One wait in progress. */
typedef struct rr_replay_wait
{
	rr_lsn target;
	rr_timestamp started_at;
	rr_timestamp deadline;       /* saturates: a huge timeout never wraps */
	bool started_in_recovery;
} rr_replay_wait;

void rr_replay_wait_start(rr_replay_wait *wait, rr_lsn target, int64_t timeout_us,
                          rr_timestamp now, bool in_recovery) RR_NOEXCEPT;

typedef enum rr_wait_verdict
{
	RR_WAIT_SLEEP = 0,           /* not yet: look again after *sleep_us */
	RR_WAIT_NOT_IN_RECOVERY,     /* a primary when the wait began: true */
	RR_WAIT_REPLAYED,            /* replay reached the target: true */
	RR_WAIT_TIMED_OUT,           /* the timeout passed first: false */
	RR_WAIT_PROMOTED_BEHIND      /* recovery ended short of the target, which this
	                              * server will now never replay: false */
} rr_wait_verdict;

/*
 * One look at the server.  in_recovery must be read BEFORE replayed: once
 * recovery has ended, the replay position read after it is final, so a
 * promotion is judged on everything that was replayed.  sleep_us is set only
 * for RR_WAIT_SLEEP, and never sleeps past the deadline.
 */
rr_wait_verdict rr_replay_wait_step(const rr_replay_wait *wait, rr_timestamp now,
                                    bool in_recovery, rr_lsn replayed,
                                    int64_t *sleep_us) RR_NOEXCEPT;

/* The SQL result of a final verdict (false for RR_WAIT_SLEEP). */
bool rr_wait_verdict_result(rr_wait_verdict verdict) RR_NOEXCEPT;

/* The sleep schedule: how long to sleep when the wait has lasted elapsed_us. */
int64_t rr_replay_wait_sleep_us(int64_t elapsed_us) RR_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* REPLROUTE_REPLAY_WAIT_H */
