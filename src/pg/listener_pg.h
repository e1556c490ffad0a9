/*
 * listener_pg.h -- the listener worker (listener.c): HAProxy's agent check
 * and the HTTP endpoints, served from the shared table.
 */
#ifndef REPLROUTE_LISTENER_PG_H
#define REPLROUTE_LISTENER_PG_H

#include "postgres.h"

/* GUCs (listener.c) */
extern int	rr_guc_agent_port;
extern int	rr_guc_http_port;
extern char *rr_guc_listen_addresses;
extern int	rr_guc_listen_timeout_ms;
extern int	rr_guc_listen_max_connections;

/* Defines the listener's settings and registers its worker; from _PG_init,
 * before the prefix is reserved. */
extern void rr_listener_init(void);
extern PGDLLEXPORT void replroute_listener_main(Datum main_arg);

#endif /* REPLROUTE_LISTENER_PG_H */
