/*
 * settings.h -- the replroute.* settings (settings.c) as the other shim
 * files read them.
 */
#ifndef REPLROUTE_PG_SETTINGS_H
#define REPLROUTE_PG_SETTINGS_H

#include "postgres.h"

#include "replroute/replroute.h"

/* replroute.fallback: what pick_reader does when no standby qualifies. */
typedef enum RrFallback
{
	RR_FALLBACK_NONE = 0,	/* return NULL */
	RR_FALLBACK_PRIMARY,	/* return replroute.primary_name */
	RR_FALLBACK_ERROR		/* raise an error saying why */
} RrFallback;

extern char *rr_guc_database;
extern int	rr_guc_max_nodes;
extern int	rr_guc_poll_interval_ms;
extern int	rr_guc_stale_after_ms;
extern int	rr_guc_max_lag_bytes;
extern int	rr_guc_max_replay_lag_ms;
extern double rr_guc_lag_leave_fraction;
extern int	rr_guc_recovery_hold_ms;
extern int	rr_guc_stall_timeout_ms;
extern int	rr_guc_policy;
extern int	rr_guc_fallback;
extern char *rr_guc_primary_name;
extern int	rr_guc_event_log_size;
extern bool rr_guc_probe;
extern int	rr_guc_probe_interval_ms;
extern int	rr_guc_probe_timeout_ms;
extern char *rr_guc_probe_conninfo;

/* Defines every setting; only from _PG_init, while preloading. */
extern void rr_define_settings(void);

/* The lag, hold and stall bounds of the current settings. */
extern rr_thresholds rr_current_thresholds(void);

#endif							/* REPLROUTE_PG_SETTINGS_H */
