/*
 * compat.h -- every PostgreSQL version conditional of the shims lives here.
 *
 * PostgreSQL 15 is the target and the oldest supported release: it brought
 * shmem_request_hook, MarkGUCPrefixReserved and InitMaterializedSRF, which the
 * shims use without fallbacks.  Later releases renamed a few things; the
 * wrappers below keep the shims free of #if.
 */
#ifndef REPLROUTE_PG_COMPAT_H
#define REPLROUTE_PG_COMPAT_H

#include "postgres.h"

#include "access/xlog.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"

#if PG_VERSION_NUM < 150000
#error "replroute requires PostgreSQL 15 or later"
#endif

/* The identity of a backend that others may SetLatch(): a pgprocno until 16,
 * a ProcNumber from 17 on (the field left PGPROC). */
#if PG_VERSION_NUM >= 170000
typedef ProcNumber rr_proc_number;
#define RR_INVALID_PROC_NUMBER INVALID_PROC_NUMBER
#define rr_my_proc_number() MyProcNumber
#else
typedef int rr_proc_number;
#define RR_INVALID_PROC_NUMBER (-1)
#define rr_my_proc_number() (MyProc->pgprocno)
#endif

static inline Latch *
rr_proc_latch(rr_proc_number number)
{
	return &GetPGProcByNumber(number)->procLatch;
}

/* This server's flushed WAL end (15 added the timeline out-parameter). */
static inline XLogRecPtr
rr_flush_lsn(void)
{
	return GetFlushRecPtr(NULL);
}

/* A wait event set that lives as long as the process (17 moved it from a
 * memory context to a resource owner; NULL owner means "until freed"). */
static inline WaitEventSet *
rr_create_wait_event_set(int nevents)
{
#if PG_VERSION_NUM >= 170000
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(TopMemoryContext, nevents);
#endif
}

/*
 * The index-th (1-based) entry of this process's copy of the backend status
 * table (pgstat_fetch_stat_numbackends() makes the copy); 16 renamed the
 * accessor.
 */
static inline PgBackendStatus *
rr_local_backend_status(int index)
{
#if PG_VERSION_NUM >= 160000
	LocalPgBackendStatus *local = pgstat_get_local_beentry_by_index(index);
#else
	LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(index);
#endif

	return local ? &local->backendStatus : NULL;
}

/* A slot invalidated for good: 15 records where (invalidated_at, with
 * restart_lsn cleared), 16 why (invalidated). */
#if PG_VERSION_NUM >= 160000
#define rr_slot_invalidated(slot) ((slot)->data.invalidated != RS_INVAL_NONE)
#else
#define rr_slot_invalidated(slot) \
	(XLogRecPtrIsInvalid((slot)->data.restart_lsn) && \
	 !XLogRecPtrIsInvalid((slot)->data.invalidated_at))
#endif

/*
 * Hands memory that malloc holds free back to the system, where the C library
 * can (glibc: malloc_trim); a no-op elsewhere.  libpq allocates each
 * connection attempt's buffers with malloc, and a thousand attempts in flight
 * leave a heap that free() alone does not shrink.
 */
#ifdef __GLIBC__
#include <malloc.h>
#define rr_release_free_memory() ((void) malloc_trim(0))
#else
#define rr_release_free_memory() ((void) 0)
#endif

#endif /* REPLROUTE_PG_COMPAT_H */
