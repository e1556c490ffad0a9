/*
 * listener.c -- the "replroute listener" background worker: HAProxy's agent
 * check (replroute.agent_port) and HTTP (replroute.http_port), answered from
 * the shared table.
 *
 * Its own process, so that it never delays the observing worker's rounds; it
 * attaches to shared memory only (no database connection, no transaction, no
 * catalog), so nothing a client sends can reach a write, the registry or a
 * setting.  What a reply says is the core's (include/replroute/listener.h);
 * this file owns the sockets.
 *
 * One loop, one WaitEventSet over the latch, the listening sockets and the
 * open connections.  Every connection has a slot (replroute.
 * listen_max_connections of them) and one absolute deadline
 * (replroute.listen_timeout) from its accept to its last byte sent: a silent,
 * half-open or trickling client costs a slot for at most that long.  When
 * every slot is taken, a new connection is accepted, told "busy" with one
 * non-blocking send, and closed.  Requests are bounded (RR_AGENT_REQUEST_MAX,
 * RR_HTTP_REQUEST_MAX bytes) and read into the slot's buffer; one request per
 * connection, then the connection is closed.
 *
 * A port that cannot be bound (in use, say) is logged once and retried every
 * LISTEN_RETRY_MS; the worker keeps serving the other protocol meanwhile.
 * Ports and addresses change on reload (SIGHUP).
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "replroute_pg.h"
#include "replroute/listener.h"
#include "listener_pg.h"

#define LISTEN_RETRY_MS 5000
#define MAX_LISTEN_SOCKETS 16	/* per protocol */
#define ACCEPTS_PER_WAKE 32
#define MAX_CONNECTIONS_LIMIT 1024

int			rr_guc_agent_port = 0;
int			rr_guc_http_port = 0;
char	   *rr_guc_listen_addresses = NULL;
int			rr_guc_listen_timeout_ms = 1000;
int			rr_guc_listen_max_connections = 64;

typedef struct Connection
{
	pgsocket	sock;			/* PGINVALID_SOCKET: slot free */
	rr_listen_protocol protocol;
	TimestampTz deadline;
	char	   *in;				/* request buffer, the protocol's maximum */
	size_t		in_length;
	char	   *out;			/* reply (malloc'd by the core), NULL while reading */
	size_t		out_length;
	size_t		out_sent;
} Connection;

typedef struct Endpoint
{
	int			port;			/* what the sockets are bound to; 0 none */
	char	   *addresses;		/* likewise */
	pgsocket	socks[MAX_LISTEN_SOCKETS];
	int			n_socks;
	TimestampTz retry_at;		/* 0: no retry pending */
	bool		failure_logged;
} Endpoint;

static Endpoint endpoints[RR_LISTEN_PROTOCOL_COUNT_];
static Connection *connections;
static int	n_open;
static rr_listen_stats stats;
static rr_node_entry *snapshot_entries;
static uint32 snapshot_capacity;

static const char *const protocol_names[RR_LISTEN_PROTOCOL_COUNT_] = {"agent check", "HTTP"};

static void configure_endpoints(TimestampTz now);
static void open_endpoint(rr_listen_protocol protocol, int port, TimestampTz now);
static void close_endpoint(rr_listen_protocol protocol);
static void accept_connections(rr_listen_protocol protocol, pgsocket listen_sock, TimestampTz now);
static void read_connection(Connection *conn, TimestampTz now);
static void write_connection(Connection *conn);
static void answer(Connection *conn, rr_listen_event event, TimestampTz now);
static void close_connection(Connection *conn);
static size_t request_max(rr_listen_protocol protocol);

/* ---------------------------------------------------------------------------
 * Settings and registration (called from _PG_init)
 * ------------------------------------------------------------------------- */

void
rr_listener_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("replroute.agent_port",
							"TCP port of the HAProxy agent check; 0 switches it off.",
							"HAProxy's agent-check sends a node's name and a newline "
							"and reads up ready N%, drain or down #reason.",
							&rr_guc_agent_port,
							0, 0, 65535,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("replroute.http_port",
							"TCP port of the HTTP endpoints (/node/<name>, /readers, /metrics); 0 switches it off.",
							NULL,
							&rr_guc_http_port,
							0, 0, 65535,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("replroute.agent_listen_addresses",
							   "Addresses the agent check and HTTP ports listen on.",
							   "Comma-separated host names or IP addresses, as listen_addresses; "
							   "'*' is every interface.",
							   &rr_guc_listen_addresses,
							   "localhost",
							   PGC_SIGHUP, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("replroute.listen_timeout",
							"Time a client of the agent or HTTP port has to send its request and read the reply.",
							"The connection is closed at this deadline, whatever it is doing.",
							&rr_guc_listen_timeout_ms,
							1000, 10, 60 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("replroute.listen_max_connections",
							"Connections the agent and HTTP ports serve at once.",
							"Further connections are refused at once (agent: down, HTTP: 503).",
							&rr_guc_listen_max_connections,
							64, 1, MAX_CONNECTIONS_LIMIT,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	memset(&worker, 0, sizeof(worker));
	/* Shared memory only: it never connects to a database. */
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	/* Also on a standby, to say that it is not the server to ask. */
	worker.bgw_start_time = BgWorkerStart_PostmasterStart;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "replroute");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "replroute_listener_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "replroute listener");
	snprintf(worker.bgw_type, BGW_MAXLEN, "replroute listener");
	RegisterBackgroundWorker(&worker);
}

/* ---------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------- */

static long
ms_until(TimestampTz now, TimestampTz then)
{
	if (then <= now)
		return 0;
	return (long) Min((then - now + 999) / 1000, (int64) INT_MAX);
}

void
replroute_listener_main(Datum main_arg)
{
	WaitEvent  *events;
	int			max_events = 2 + 2 * MAX_LISTEN_SOCKETS + MAX_CONNECTIONS_LIMIT;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	/* A client that resets its connection mid-reply must not kill us. */
	pqsignal(SIGPIPE, SIG_IGN);
	BackgroundWorkerUnblockSignals();

	if (rr_shared == NULL || rr_shared->table == NULL)
		proc_exit(0);

	connections = MemoryContextAllocZero(TopMemoryContext,
										 sizeof(Connection) * MAX_CONNECTIONS_LIMIT);
	for (int i = 0; i < MAX_CONNECTIONS_LIMIT; i++)
		connections[i].sock = PGINVALID_SOCKET;
	for (int p = 0; p < RR_LISTEN_PROTOCOL_COUNT_; p++)
		memset(&endpoints[p], 0, sizeof(Endpoint));
	snapshot_capacity = Max(rr_shared->capacity, 1);
	snapshot_entries = MemoryContextAlloc(TopMemoryContext,
										  sizeof(rr_node_entry) * snapshot_capacity);
	events = MemoryContextAlloc(TopMemoryContext, sizeof(WaitEvent) * max_events);

	configure_endpoints(GetCurrentTimestamp());

	for (;;)
	{
		WaitEventSet *set;
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz wake = 0;
		long		timeout;
		int			n;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			configure_endpoints(now);
		}
		for (int p = 0; p < RR_LISTEN_PROTOCOL_COUNT_; p++)
			if (endpoints[p].retry_at != 0 && endpoints[p].retry_at <= now)
				configure_endpoints(now);

		/* Deadlines that passed: a reply if one is owed, then close. */
		for (int i = 0; i < MAX_CONNECTIONS_LIMIT; i++)
		{
			Connection *conn = &connections[i];

			if (conn->sock == PGINVALID_SOCKET)
				continue;
			if (conn->deadline <= now)
			{
				if (conn->out == NULL)
				{
					stats.timed_out[conn->protocol]++;
					answer(conn, RR_EVENT_TIMEOUT, now);
				}
				/* best effort: what did not go out in one send is dropped */
				close_connection(conn);
			}
		}

		/* The set is rebuilt each time round: connections come and go with
		 * almost every wakeup, and PostgreSQL 15 cannot remove an event. */
		set = rr_create_wait_event_set(max_events);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		for (int p = 0; p < RR_LISTEN_PROTOCOL_COUNT_; p++)
		{
			for (int s = 0; s < endpoints[p].n_socks; s++)
				AddWaitEventToSet(set, WL_SOCKET_READABLE, endpoints[p].socks[s], NULL,
								  (void *) (intptr_t) (-(p * MAX_LISTEN_SOCKETS + s) - 1));
			if (endpoints[p].retry_at != 0 && (wake == 0 || endpoints[p].retry_at < wake))
				wake = endpoints[p].retry_at;
		}
		for (int i = 0; i < MAX_CONNECTIONS_LIMIT; i++)
		{
			Connection *conn = &connections[i];

			if (conn->sock == PGINVALID_SOCKET)
				continue;
			AddWaitEventToSet(set, conn->out == NULL ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
							  conn->sock, NULL, (void *) (intptr_t) (i + 1));
			if (wake == 0 || conn->deadline < wake)
				wake = conn->deadline;
		}
		timeout = wake == 0 ? -1 : ms_until(now, wake);

		n = WaitEventSetWait(set, timeout, events, max_events, PG_WAIT_EXTENSION);
		now = GetCurrentTimestamp();
		for (int e = 0; e < n; e++)
		{
			intptr_t	tag = (intptr_t) events[e].user_data;

			if (events[e].events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				continue;
			}
			if (tag < 0)
			{
				int			index = (int) (-tag - 1);
				rr_listen_protocol protocol = (rr_listen_protocol) (index / MAX_LISTEN_SOCKETS);

				accept_connections(protocol, events[e].fd, now);
			}
			else if (tag > 0)
			{
				Connection *conn = &connections[tag - 1];

				if (conn->sock == PGINVALID_SOCKET)
					continue;
				if (conn->out == NULL)
					read_connection(conn, now);
				else
					write_connection(conn);
			}
		}
		FreeWaitEventSet(set);
	}
}

/* ---------------------------------------------------------------------------
 * Listening sockets
 * ------------------------------------------------------------------------- */

static void
configure_endpoints(TimestampTz now)
{
	int			ports[RR_LISTEN_PROTOCOL_COUNT_] = {rr_guc_agent_port, rr_guc_http_port};

	stats.max_connections = (uint32) rr_guc_listen_max_connections;
	for (int p = 0; p < RR_LISTEN_PROTOCOL_COUNT_; p++)
	{
		Endpoint   *ep = &endpoints[p];
		bool		same = ep->port == ports[p] && ep->addresses != NULL &&
			strcmp(ep->addresses, rr_guc_listen_addresses) == 0;

		if (same && ep->n_socks > 0)
			continue;
		if (same && ep->retry_at != 0 && ep->retry_at > now)
			continue;
		if (!same)
			ep->failure_logged = false;
		close_endpoint((rr_listen_protocol) p);
		if (ports[p] != 0)
			open_endpoint((rr_listen_protocol) p, ports[p], now);
	}
}

static void
close_endpoint(rr_listen_protocol protocol)
{
	Endpoint   *ep = &endpoints[protocol];

	for (int s = 0; s < ep->n_socks; s++)
		closesocket(ep->socks[s]);
	if (ep->n_socks > 0)
		ereport(LOG,
				(errmsg("replroute listener: %s port %d closed", protocol_names[protocol],
						ep->port)));
	ep->n_socks = 0;
	ep->port = 0;
	ep->retry_at = 0;
	if (ep->addresses != NULL)
		pfree(ep->addresses);
	ep->addresses = NULL;
	stats.listening[protocol] = false;
}

/* Binds every address of replroute.agent_listen_addresses; a protocol serves
 * if at least one of them could be bound, else it is retried later. */
static void
open_endpoint(rr_listen_protocol protocol, int port, TimestampTz now)
{
	Endpoint   *ep = &endpoints[protocol];
	char	   *raw = pstrdup(rr_guc_listen_addresses);
	List	   *names = NIL;
	ListCell   *cell;
	char		port_text[16];
	StringInfoData failures;

	initStringInfo(&failures);
	ep->port = port;
	ep->addresses = MemoryContextStrdup(TopMemoryContext, rr_guc_listen_addresses);
	snprintf(port_text, sizeof(port_text), "%d", port);

	if (!SplitGUCList(raw, ',', &names))
		appendStringInfoString(&failures, "replroute.agent_listen_addresses is not a valid list");

	foreach(cell, names)
	{
		const char *name = (const char *) lfirst(cell);
		struct addrinfo hints;
		struct addrinfo *result = NULL;
		int			rc;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		rc = getaddrinfo(strcmp(name, "*") == 0 ? NULL : name, port_text, &hints, &result);
		if (rc != 0)
		{
			appendStringInfo(&failures, "%s\"%s\": %s", failures.len ? "; " : "", name,
							 gai_strerror(rc));
			continue;
		}
		for (struct addrinfo *ai = result; ai != NULL && ep->n_socks < MAX_LISTEN_SOCKETS;
			 ai = ai->ai_next)
		{
			char		host[NI_MAXHOST] = "?";
			int			one = 1;
			pgsocket	sock;

			(void) getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
							   NI_NUMERICHOST);
			sock = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
						  ai->ai_protocol);
			if (sock == PGINVALID_SOCKET)
			{
				appendStringInfo(&failures, "%s%s: %m", failures.len ? "; " : "", host);
				continue;
			}
			(void) setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (ai->ai_family == AF_INET6)
				(void) setsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			if (bind(sock, ai->ai_addr, ai->ai_addrlen) < 0 || listen(sock, 128) < 0)
			{
				appendStringInfo(&failures, "%s%s port %d: %m", failures.len ? "; " : "",
								 host, port);
				closesocket(sock);
				continue;
			}
			ep->socks[ep->n_socks++] = sock;
			ereport(LOG,
					(errmsg("replroute listener: %s on %s port %d",
							protocol_names[protocol], host, port)));
		}
		freeaddrinfo(result);
	}
	list_free(names);
	pfree(raw);

	stats.listening[protocol] = ep->n_socks > 0;
	if (ep->n_socks > 0)
	{
		ep->retry_at = 0;
		ep->failure_logged = false;
		if (failures.len > 0)
			ereport(LOG,
					(errmsg("replroute listener: %s not on every address: %s",
							protocol_names[protocol], failures.data)));
	}
	else
	{
		/* Logged once per setting: a port held by someone else for hours
		 * must not fill the log, nor make the worker exit and restart. */
		ereport(ep->failure_logged ? DEBUG1 : LOG,
				(errmsg("replroute listener: could not listen for the %s on port %d: %s",
						protocol_names[protocol], port,
						failures.len ? failures.data : "no address to listen on"),
				 errhint("replroute retries every %d s; free the port or change %s.",
						 LISTEN_RETRY_MS / 1000,
						 protocol == RR_LISTEN_AGENT ? "replroute.agent_port" : "replroute.http_port")));
		ep->failure_logged = true;
		ep->retry_at = TimestampTzPlusMilliseconds(now, LISTEN_RETRY_MS);
	}
	pfree(failures.data);
}

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

static size_t
request_max(rr_listen_protocol protocol)
{
	return protocol == RR_LISTEN_AGENT ? RR_AGENT_REQUEST_MAX : RR_HTTP_REQUEST_MAX;
}

static void
accept_connections(rr_listen_protocol protocol, pgsocket listen_sock, TimestampTz now)
{
	for (int k = 0; k < ACCEPTS_PER_WAKE; k++)
	{
		pgsocket	sock = accept4(listen_sock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		Connection *conn = NULL;

		if (sock == PGINVALID_SOCKET)
			return;				/* EAGAIN, or an aborted connection */

		if (n_open < rr_guc_listen_max_connections)
			for (int i = 0; i < MAX_CONNECTIONS_LIMIT; i++)
				if (connections[i].sock == PGINVALID_SOCKET)
				{
					conn = &connections[i];
					break;
				}
		if (conn == NULL)
		{
			Connection	busy;

			/* Refusal costs one send: no slot, no wait. */
			memset(&busy, 0, sizeof(busy));
			busy.sock = sock;
			busy.protocol = protocol;
			stats.refused[protocol]++;
			answer(&busy, RR_EVENT_BUSY, now);
			if (busy.out != NULL)
				rr_listen_free(busy.out);
			closesocket(sock);
			continue;
		}
		memset(conn, 0, sizeof(*conn));
		conn->sock = sock;
		conn->protocol = protocol;
		conn->deadline = TimestampTzPlusMilliseconds(now, rr_guc_listen_timeout_ms);
		conn->in = MemoryContextAlloc(TopMemoryContext, request_max(protocol));
		n_open++;
		stats.accepted[protocol]++;
		stats.open_connections = (uint32) n_open;
	}
}

static void
read_connection(Connection *conn, TimestampTz now)
{
	size_t		max = request_max(conn->protocol);
	ssize_t		got = recv(conn->sock, conn->in + conn->in_length, max - conn->in_length, 0);
	rr_listen_scan_result scan;

	if (got < 0)
	{
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		close_connection(conn);
		return;
	}
	if (got == 0)
	{
		/* The peer is done sending: answer what it sent, if anything. */
		if (conn->in_length == 0)
			close_connection(conn);
		else
			answer(conn, RR_EVENT_REQUEST, now);
		return;
	}
	conn->in_length += (size_t) got;
	scan = rr_listen_scan(conn->protocol, conn->in, conn->in_length);
	if (scan == RR_SCAN_COMPLETE)
		answer(conn, RR_EVENT_REQUEST, now);
	else if (scan == RR_SCAN_TOO_LONG)
		answer(conn, RR_EVENT_TOO_LONG, now);
}

/* Builds the reply from a fresh snapshot and starts sending it. */
static void
answer(Connection *conn, rr_listen_event event, TimestampTz now)
{
	rr_table_header header;
	rr_listen_view view;
	rr_error	error;
	uint32		n_entries = 0;
	bool		rejected = false;
	pid_t		pid;

	memset(&header, 0, sizeof(header));
	memset(&error, 0, sizeof(error));
	if (rr_table_snapshot(rr_shared->table, &header, snapshot_entries, snapshot_capacity,
						  &n_entries, &error) != RR_OK)
	{
		/* Answered as "no data": never a verdict from a torn read. */
		ereport(WARNING,
				(errmsg("replroute listener could not read the shared table: %s", error.message)));
		memset(&header, 0, sizeof(header));
		header.published_at = RR_NO_TIME;
		header.round_started_at = RR_NO_TIME;
		n_entries = 0;
	}
	SpinLockAcquire(&rr_shared->mutex);
	pid = rr_shared->pid;
	SpinLockRelease(&rr_shared->mutex);

	memset(&view, 0, sizeof(view));
	view.header = &header;
	view.entries = snapshot_entries;
	view.n_entries = n_entries;
	view.now = GetCurrentTimestamp();
	view.stale_after_us = (int64) rr_guc_stale_after_ms * 1000;
	view.worker_running = pid != 0;
	view.stats = &stats;

	if (rr_listen_reply(conn->protocol, event, conn->in, conn->in_length, &view, &conn->out,
						&conn->out_length, &rejected, &error) != RR_OK)
	{
		ereport(WARNING,
				(errmsg("replroute listener could not build a reply: %s", error.message)));
		close_connection(conn);
		return;
	}
	if (event == RR_EVENT_REQUEST)
	{
		if (rejected)
			stats.rejected[conn->protocol]++;
		else
			stats.answered[conn->protocol]++;
	}
	else if (event == RR_EVENT_TOO_LONG)
		stats.rejected[conn->protocol]++;
	conn->out_sent = 0;
	write_connection(conn);
}

static void
write_connection(Connection *conn)
{
	while (conn->out_sent < conn->out_length)
	{
		ssize_t		sent = send(conn->sock, conn->out + conn->out_sent,
								conn->out_length - conn->out_sent, MSG_NOSIGNAL);

		if (sent < 0)
		{
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;			/* wait for writability, within the deadline */
			break;
		}
		conn->out_sent += (size_t) sent;
	}
	close_connection(conn);
}

static void
close_connection(Connection *conn)
{
	if (conn->sock == PGINVALID_SOCKET)
		return;
	/* The refusal path's connection has no slot: its caller closes it. */
	if (conn < connections || conn >= connections + MAX_CONNECTIONS_LIMIT)
		return;
	/* Our side is done; the peer reads the reply, then sees the end. */
	(void) shutdown(conn->sock, SHUT_WR);
	closesocket(conn->sock);
	conn->sock = PGINVALID_SOCKET;
	if (conn->in != NULL)
		pfree(conn->in);
	conn->in = NULL;
	if (conn->out != NULL)
		rr_listen_free(conn->out);
	conn->out = NULL;
	n_open--;
	stats.open_connections = (uint32) n_open;
}
