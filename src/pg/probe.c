/*
 * probe.c -- the worker's client connections to the registered standbys.
 *
 * Map: one ProbeConn per registered node (same order as the registry rows of
 * the last round), each holding a non-blocking libpq connection and the core's
 * state machine for it (rr_probe_target).  The machine decides what to do and
 * when; this file only does it -- start a connection, send the query, read
 * the answer, close -- and reports back.  No policy here.
 *
 * The worker owns the wait (worker.c): one WaitEventSet with its latch,
 * postmaster death and the probe sockets this file adds to it
 * (rr_probes_add_sockets), with the nearest deadline (next round, next probe,
 * earliest probe timeout) as timeout, so a standby that never answers delays
 * neither the rounds nor the other probes.  The worker rebuilds the set only
 * when rr_probes_sockets_changed() says a socket or the events wanted on it
 * changed, and hands back the ready ones with rr_probes_mark_ready().
 *
 * rr_probes_drive() touches only the probes that are due: a ready socket, or
 * a deadline of the machine's (kept here as next_at) that has passed.  So a
 * thousand probes in backoff cost a comparison each per wake-up, not a call
 * into the core.  It returns true when a probe's conclusion changed (failed,
 * answered after a failure, or answered differently about recovery): the
 * worker then publishes at once instead of at the next round.
 *
 * libpq is told only what it must: the registry's host and port are passed as
 * separate keywords after the expanded replroute.probe_conninfo, so neither a
 * registry value nor the setting can redirect a probe, and libpq's messages
 * (kept in reasons, first line only) never contain a password because the
 * setting may not hold one.  Host names are resolved by libpq synchronously
 * when a connection starts; register addresses or socket directories where
 * the resolver may be slow.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/wait_event.h"

#include "libpq-fe.h"

#include "replroute_pg.h"

static const char *const probe_query =
"SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.pg_last_wal_replay_lsn()";

typedef struct ProbeConn
{
	char		name[RR_NAME_LEN];
	char		host[RR_HOST_LEN];
	int32		port;
	rr_probe_target *machine;
	PGconn	   *conn;
	bool		connecting;		/* between PQconnectStartParams and POLLING_OK */
	PostgresPollingStatusType poll_status;	/* what PQconnectPoll waits for */
	bool		querying;		/* the probe query is outstanding */
	bool		flush_pending;	/* PQflush could not send everything */
	bool		ready;			/* the wait reported its socket */
	/* the answer being read */
	bool		got_row;
	bool		in_recovery;
	rr_lsn		replay_lsn;
	char		query_error[RR_ERROR_LEN];
	/* what the wait set holds for it */
	pgsocket	sock_in_set;
	uint32		events_in_set;
	bool		numeric;		/* host is an IPv4 or IPv6 address */
	/* pacing: the machine's next deadline; 0 means "poll it now" */
	TimestampTz next_at;
	/* the last conclusion the worker heard of, to tell a change */
	rr_probe_outcome outcome;
	bool		answered_in_recovery;
	bool		ever_answered;	/* its observation depends on the time too */
	bool		observed;		/* out[] of rr_probes_observe is up to date */
} ProbeConn;

static ProbeConn *probes;		/* capacity entries; the first n_probes used */
static ProbeConn *scratch;		/* for rr_probes_sync */
static int	capacity;
static int	n_probes;
static char *conninfo_in_use;	/* replroute.probe_conninfo the machines were made for */
static rr_probe_settings settings_in_use;	/* deadlines in next_at follow these */
static bool sockets_moved = true;	/* entries moved: the set's user_data is stale */
static bool outcome_changed;	/* a conclusion changed since the last drive */
static int	drive_from;			/* where the last drive that ran out of time stopped */
static bool observations_moved = true;	/* out[] of rr_probes_observe is in an old order */

/*
 * Time one drive may spend.  Starting a connection costs libpq tens to
 * hundreds of microseconds (conninfo parsing, resolving, the connect call);
 * a thousand probes that fail together fall due together, and driving them
 * all in one go would hold up the rounds for a fifth of a second.  So a drive
 * stops after this long and the rest, still due, go in the next wake-up,
 * after the round that fell due meanwhile.
 */
#define DRIVE_BUDGET_US 1000

static rr_probe_settings
current_settings(void)
{
	rr_probe_settings settings;

	settings.interval_us = (int64) rr_guc_probe_interval_ms * 1000;
	settings.timeout_us = (int64) rr_guc_probe_timeout_ms * 1000;
	return settings;
}

void
rr_probes_init(void)
{
	capacity = rr_guc_max_nodes;
	probes = MemoryContextAllocZero(TopMemoryContext, sizeof(ProbeConn) * Max(capacity, 1));
	scratch = MemoryContextAllocZero(TopMemoryContext, sizeof(ProbeConn) * Max(capacity, 1));
	n_probes = 0;
	sockets_moved = true;
}

static void
close_conn(ProbeConn *p)
{
	if (p->conn != NULL)
		PQfinish(p->conn);
	p->conn = NULL;
	p->connecting = false;
	p->querying = false;
	p->flush_pending = false;
	p->ready = false;
}

static void
destroy_probe(ProbeConn *p)
{
	close_conn(p);
	rr_probe_destroy(p->machine);
	p->machine = NULL;
}

/* Records a conclusion; a change is news the worker publishes at once. */
static void
concluded(ProbeConn *p, rr_probe_outcome outcome, bool in_recovery)
{
	if (p->outcome != outcome ||
		(outcome == RR_PROBE_ANSWERED && p->answered_in_recovery != in_recovery))
		outcome_changed = true;
	p->outcome = outcome;
	if (outcome == RR_PROBE_ANSWERED)
	{
		p->answered_in_recovery = in_recovery;
		p->ever_answered = true;
	}
}

static void
fail(ProbeConn *p, TimestampTz now, const char *message)
{
	rr_probe_on_failure(p->machine, (rr_timestamp) now, message);
	close_conn(p);
	concluded(p, RR_PROBE_FAILED, false);
}

void
rr_probes_close_all(void)
{
	for (int i = 0; i < n_probes; i++)
		destroy_probe(&probes[i]);
	n_probes = 0;
	sockets_moved = true;
}

/* An IPv4 or IPv6 address literal (not a name, not a socket directory). */
static bool
is_numeric_address(const char *host)
{
	unsigned char buffer[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buffer) == 1 ||
		inet_pton(AF_INET6, host, buffer) == 1;
}

/*
 * Keeps one probe per node, in the nodes' order.  A node whose host or port
 * changed starts afresh, and so does every probe when the connection options
 * changed: its answers were about another endpoint.
 */
void
rr_probes_sync(const rr_node_config *nodes, size_t n_nodes)
{
	int			n_new = 0;
	int			n_destroyed = 0;
	rr_error	error;

	if (!rr_guc_probe)
	{
		if (n_probes > 0)
			rr_probes_close_all();
		return;
	}
	if (conninfo_in_use == NULL || strcmp(conninfo_in_use, rr_guc_probe_conninfo) != 0)
	{
		rr_probes_close_all();
		if (conninfo_in_use != NULL)
			pfree(conninfo_in_use);
		conninfo_in_use = MemoryContextStrdup(TopMemoryContext, rr_guc_probe_conninfo);
	}

	for (size_t i = 0; i < n_nodes && n_new < capacity; i++)
	{
		const rr_node_config *node = &nodes[i];
		ProbeConn  *target = &scratch[n_new++];
		int			found = -1;

		for (int j = 0; j < n_probes; j++)
			if (probes[j].machine != NULL &&
				strcmp(probes[j].name, node->name) == 0 &&
				strcmp(probes[j].host, node->host) == 0 &&
				probes[j].port == node->port)
			{
				found = j;
				break;
			}
		if (found >= 0)
		{
			*target = probes[found];
			probes[found].machine = NULL;	/* moved */
			probes[found].conn = NULL;
			continue;
		}
		memset(target, 0, sizeof(*target));
		strlcpy(target->name, node->name, sizeof(target->name));
		strlcpy(target->host, node->host, sizeof(target->host));
		target->port = node->port;
		target->numeric = is_numeric_address(node->host);
		target->sock_in_set = PGINVALID_SOCKET;
		memset(&error, 0, sizeof(error));
		target->machine = rr_probe_create(&error);
		if (target->machine == NULL)
		{
			n_new--;
			rr_report_core_error(&error, "replroute worker could not create a probe");
		}
	}
	for (int j = 0; j < n_probes; j++)
		if (probes[j].machine != NULL)
		{
			destroy_probe(&probes[j]);
			n_destroyed++;
		}
	/* Removed standbys: what their connections held goes back to the system. */
	if (n_destroyed > 0)
		rr_release_free_memory();

	memcpy(probes, scratch, sizeof(ProbeConn) * n_new);
	n_probes = n_new;
	sockets_moved = true;		/* entries moved: user_data pointers changed */
	observations_moved = true;
}

/*
 * Fills out[0..n_nodes): the probes are in the nodes' order after a sync.
 * out must be the same array every call: an entry is rewritten only when its
 * probe was driven since, or when it ever answered (the freshness of an
 * answer changes with the time alone).  A thousand probes in backoff then
 * cost nothing per round.
 */
void
rr_probes_observe(size_t n_nodes, rr_probe_obs *out, TimestampTz now)
{
	rr_probe_settings settings = current_settings();
	bool		all = observations_moved ||
		settings.interval_us != settings_in_use.interval_us ||
		settings.timeout_us != settings_in_use.timeout_us;

	for (size_t i = 0; i < n_nodes; i++)
	{
		if ((int) i < n_probes)
		{
			ProbeConn  *p = &probes[i];

			if (all || !p->observed || p->ever_answered)
				rr_probe_observe(p->machine, (rr_timestamp) now, &settings, &out[i]);
			p->observed = true;
		}
		else
			memset(&out[i], 0, sizeof(out[i]));	/* over capacity: pending */
	}
	observations_moved = false;
}

static void
start_connect(ProbeConn *p, TimestampTz now)
{
	const char *keywords[7];
	const char *values[7];
	char		port[16];
	int			n;

	snprintf(port, sizeof(port), "%d", (int) p->port);

	/*
	 * Earlier keywords are defaults the expanded dbname (the setting) may
	 * override; later ones override it.  GSSAPI encryption is off unless the
	 * setting asks for it: with gssencmode=prefer libpq looks for Kerberos
	 * credentials at every connection attempt, and the Kerberos library keeps
	 * memory from each look, so a worker whose probes keep failing (a standby
	 * that is down) grows by tens of kB a minute.
	 */
	keywords[0] = "gssencmode";
	values[0] = "disable";
	keywords[1] = "dbname";
	values[1] = rr_guc_probe_conninfo;
	keywords[2] = "host";
	values[2] = p->host;
	keywords[3] = "port";
	values[3] = port;
	keywords[4] = "fallback_application_name";
	values[4] = "replroute probe";
	n = 5;

	/*
	 * A registered address goes to libpq as hostaddr too, so that no attempt
	 * asks the resolver (which reads /etc/hosts and nsswitch every time) to
	 * look up a number: with a thousand standbys down that was most of what
	 * the failing attempts cost.  host stays for TLS and the password file.
	 */
	if (p->numeric)
	{
		keywords[n] = "hostaddr";
		values[n] = p->host;
		n++;
	}
	keywords[n] = NULL;
	values[n] = NULL;

	p->conn = PQconnectStartParams(keywords, values, 1);
	if (p->conn == NULL)
	{
		fail(p, now, "out of memory starting a connection");
		return;
	}
	if (PQstatus(p->conn) == CONNECTION_BAD)
	{
		fail(p, now, PQerrorMessage(p->conn));
		return;
	}
	p->connecting = true;
	/* As if PQconnectPoll had returned POLLING_WRITING (libpq's contract). */
	p->poll_status = PGRES_POLLING_WRITING;
	p->ready = false;
}

static void
advance_connect(ProbeConn *p, TimestampTz now)
{
	/* Only when the socket is ready: PQconnectPoll reads a pending connect()'s
	 * outcome with getsockopt and would take "not yet" for success. */
	if (!p->ready)
		return;
	p->ready = false;
	p->poll_status = PQconnectPoll(p->conn);
	switch (p->poll_status)
	{
		case PGRES_POLLING_OK:
			p->connecting = false;
			if (PQsetnonblocking(p->conn, 1) != 0)
			{
				fail(p, now, PQerrorMessage(p->conn));
				return;
			}
			rr_probe_on_connected(p->machine, (rr_timestamp) now);
			break;
		case PGRES_POLLING_FAILED:
			fail(p, now, PQerrorMessage(p->conn));
			break;
		default:
			break;
	}
}

static void
send_query(ProbeConn *p, TimestampTz now)
{
	int			flushed;

	if (p->conn == NULL || p->connecting)
	{
		fail(p, now, "no connection to send the probe on");
		return;
	}
	if (!PQsendQuery(p->conn, probe_query))
	{
		fail(p, now, PQerrorMessage(p->conn));
		return;
	}
	flushed = PQflush(p->conn);
	if (flushed < 0)
	{
		fail(p, now, PQerrorMessage(p->conn));
		return;
	}
	p->flush_pending = flushed == 1;
	p->querying = true;
	p->got_row = false;
	p->query_error[0] = '\0';
}

static void
take_result(ProbeConn *p, PGresult *result)
{
	if (PQresultStatus(result) == PGRES_TUPLES_OK &&
		PQntuples(result) == 1 && PQnfields(result) == 2)
	{
		p->got_row = true;
		p->in_recovery = strcmp(PQgetvalue(result, 0, 0), "t") == 0;
		p->replay_lsn = 0;
		if (!PQgetisnull(result, 0, 1))
		{
			unsigned int hi,
						lo;

			if (sscanf(PQgetvalue(result, 0, 1), "%X/%X", &hi, &lo) == 2)
				p->replay_lsn = ((rr_lsn) hi << 32) | lo;
		}
	}
	else if (p->query_error[0] == '\0')
	{
		const char *message = PQresultErrorMessage(result);

		snprintf(p->query_error, sizeof(p->query_error), "probe query failed: %s",
				 message && message[0] ? message : PQresStatus(PQresultStatus(result)));
	}
}

/* Reads whatever arrived: the answer, a notice, or the end of the connection. */
static void
read_input(ProbeConn *p, TimestampTz now)
{
	if (!p->ready)
		return;
	p->ready = false;
	if (!PQconsumeInput(p->conn))
	{
		fail(p, now, PQerrorMessage(p->conn));
		return;
	}
	if (p->flush_pending)
	{
		int			flushed = PQflush(p->conn);

		if (flushed < 0)
		{
			fail(p, now, PQerrorMessage(p->conn));
			return;
		}
		p->flush_pending = flushed == 1;
	}
	while (!PQisBusy(p->conn))
	{
		PGresult   *result = PQgetResult(p->conn);

		if (result == NULL)
		{
			if (!p->querying)
				return;
			p->querying = false;
			if (p->got_row && p->query_error[0] == '\0')
			{
				rr_probe_on_answer(p->machine, (rr_timestamp) now, p->in_recovery, p->replay_lsn);
				concluded(p, RR_PROBE_ANSWERED, p->in_recovery);
			}
			else
				fail(p, now, p->query_error[0] ? p->query_error : "probe query returned no row");
			return;
		}
		if (p->querying)
			take_result(p, result);
		PQclear(result);
	}
}

/*
 * Does what every due probe needs: reads what its socket delivered, then asks
 * its machine.  True when a probe's conclusion changed.
 */
bool
rr_probes_drive(TimestampTz now)
{
	rr_probe_settings settings = current_settings();
	bool		all = settings.interval_us != settings_in_use.interval_us ||
		settings.timeout_us != settings_in_use.timeout_us;

	TimestampTz stop_at = now + DRIVE_BUDGET_US;

	settings_in_use = settings;
	outcome_changed = false;
	if (all || drive_from >= n_probes)
		drive_from = 0;
	for (int k = 0; k < n_probes; k++)
	{
		int			i = (drive_from + k) % n_probes;
		ProbeConn  *p = &probes[i];
		rr_timestamp at;

		if (!all && !p->ready && p->next_at > now)
			continue;
		if (k > 0 && !all && GetCurrentTimestamp() > stop_at)
		{
			drive_from = i;		/* the rest stay due: next_at <= now */
			return outcome_changed;
		}
		p->observed = false;
		if (p->conn != NULL)
		{
			if (p->connecting)
				advance_connect(p, now);
			else
				read_input(p, now);
		}
		/* A few steps at most: connected -> send is two in one go. */
		for (int step = 0; step < 3; step++)
		{
			rr_probe_action action = rr_probe_poll(p->machine, (rr_timestamp) now, &settings);

			if (action == RR_PROBE_DO_NOTHING)
				break;
			if (action == RR_PROBE_DO_CONNECT)
			{
				close_conn(p);
				start_connect(p, now);
			}
			else if (action == RR_PROBE_DO_SEND)
				send_query(p, now);
			else if (action == RR_PROBE_DO_DROP)
			{
				/* a deadline passed: the machine concluded a failure */
				close_conn(p);
				concluded(p, RR_PROBE_FAILED, false);
			}
		}
		at = rr_probe_next_deadline(p->machine, &settings);
		p->next_at = at == RR_NO_TIME ? 0 : (TimestampTz) at;
	}
	drive_from = 0;
	return outcome_changed;
}

/* The earliest next_at; DT_NOEND when there is nothing to wait for. */
TimestampTz
rr_probes_next_deadline(void)
{
	TimestampTz earliest = DT_NOEND;

	for (int i = 0; i < n_probes; i++)
		if (probes[i].next_at < earliest)
			earliest = probes[i].next_at;
	return earliest;
}

int
rr_probes_count(void)
{
	return n_probes;
}

static uint32
wanted_events(const ProbeConn *p)
{
	if (p->conn == NULL || PQsocket(p->conn) == PGINVALID_SOCKET)
		return 0;
	if (p->connecting)
		return p->poll_status == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
	/* Readable also between queries: a closed connection shows at once. */
	return WL_SOCKET_READABLE | (p->flush_pending ? WL_SOCKET_WRITEABLE : 0);
}

/* Does the worker's wait set still hold exactly the sockets and events wanted? */
bool
rr_probes_sockets_changed(void)
{
	if (sockets_moved)
		return true;
	for (int i = 0; i < n_probes; i++)
	{
		const ProbeConn *p = &probes[i];
		uint32		events = wanted_events(p);
		pgsocket	sock = events ? PQsocket(p->conn) : PGINVALID_SOCKET;

		if (events != p->events_in_set || sock != p->sock_in_set)
			return true;
	}
	return false;
}

/* Adds every probe socket to a freshly made set (the worker's). */
void
rr_probes_add_sockets(WaitEventSet *set)
{
	for (int i = 0; i < n_probes; i++)
	{
		ProbeConn  *p = &probes[i];
		uint32		events = wanted_events(p);

		p->events_in_set = events;
		p->sock_in_set = events ? PQsocket(p->conn) : PGINVALID_SOCKET;
		if (events)
			AddWaitEventToSet(set, events, p->sock_in_set, NULL, p);
	}
	sockets_moved = false;
}

/* The wait reported this probe's socket (user_data of its event). */
void
rr_probes_mark_ready(void *user_data)
{
	((ProbeConn *) user_data)->ready = true;
}
