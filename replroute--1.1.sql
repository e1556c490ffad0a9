/* replroute--1.1.sql: the SQL surface of replroute 1.1 (1.0 plus replroute_wait_for_replay) */

\echo Use "CREATE EXTENSION replroute" to load this file. \quit

-- Who may change the registry (superusers always can).  Roles are
-- cluster-wide: a CREATE EXTENSION in a second database finds it already
-- there.  DROP EXTENSION leaves it, as it may hold members.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'replroute_admin') THEN
		CREATE ROLE replroute_admin NOLOGIN;
	END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Registry.  The worker of replroute.database reads it every round.  The
-- CHECK constraints mirror the validation of replroute_add_node() and friends
-- (which give the precise errors) for anyone writing the table directly.
-- ---------------------------------------------------------------------------
CREATE TABLE @extschema@.replroute_node (
	name text PRIMARY KEY
		CONSTRAINT replroute_node_name_check
		CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	host text NOT NULL
		CONSTRAINT replroute_node_host_check
		CHECK (octet_length(host) BETWEEN 1 AND 255
			   AND host !~ '[[:space:][:cntrl:]''"=,\\]'),
	port integer NOT NULL
		CONSTRAINT replroute_node_port_check CHECK (port BETWEEN 1 AND 65535),
	weight integer NOT NULL
		CONSTRAINT replroute_node_weight_check CHECK (weight BETWEEN 0 AND 1000000),
	application_name text NOT NULL
		CONSTRAINT replroute_node_application_name_check
		CHECK (application_name ~ '^[ -~]{1,63}$'
			   AND application_name !~ '[''"\\]'),
	drained boolean NOT NULL DEFAULT false,
	created_at timestamptz DEFAULT pg_catalog.now()
);

COMMENT ON TABLE @extschema@.replroute_node IS
	'standbys registered with replroute; change it through replroute_add_node() and friends';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.replroute_node', '');

REVOKE ALL ON @extschema@.replroute_node FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON @extschema@.replroute_node TO replroute_admin;
GRANT SELECT ON @extschema@.replroute_node TO pg_monitor;

-- Wakes the worker at commit, so that any change (also direct DML) applies
-- in the next round rather than after a poll_interval.
CREATE FUNCTION @extschema@.replroute_node_changed()
RETURNS trigger
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_node_changed';

CREATE TRIGGER replroute_node_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.replroute_node
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.replroute_node_changed();

-- ---------------------------------------------------------------------------
-- Registry functions: validate (through the core), then change the table as
-- the caller.  They work only in replroute.database.
-- ---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.replroute_add_node(
	name text,
	host text,
	port integer DEFAULT 5432,
	weight integer DEFAULT 100,
	application_name text DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_add_node';

COMMENT ON FUNCTION @extschema@.replroute_add_node(text, text, integer, integer, text) IS
	'register a standby; application_name (default: name) is how its walsender shows in pg_stat_replication';

CREATE FUNCTION @extschema@.replroute_remove_node(name text)
RETURNS boolean
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_remove_node';

COMMENT ON FUNCTION @extschema@.replroute_remove_node(text) IS
	'unregister a standby; false if it was not registered';

CREATE FUNCTION @extschema@.replroute_set_weight(name text, weight integer)
RETURNS void
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_set_weight';

COMMENT ON FUNCTION @extschema@.replroute_set_weight(text, integer) IS
	'change the weight of a standby (0: never picked)';

CREATE FUNCTION @extschema@.replroute_drain(name text)
RETURNS void
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_drain';

COMMENT ON FUNCTION @extschema@.replroute_drain(text) IS
	'stop routing reads to a standby (maintenance)';

CREATE FUNCTION @extschema@.replroute_undrain(name text)
RETURNS void
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_undrain';

COMMENT ON FUNCTION @extschema@.replroute_undrain(text) IS
	'route reads to a drained standby again';

REVOKE EXECUTE ON FUNCTION
	@extschema@.replroute_add_node(text, text, integer, integer, text),
	@extschema@.replroute_remove_node(text),
	@extschema@.replroute_set_weight(text, integer),
	@extschema@.replroute_drain(text),
	@extschema@.replroute_undrain(text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	@extschema@.replroute_add_node(text, text, integer, integer, text),
	@extschema@.replroute_remove_node(text),
	@extschema@.replroute_set_weight(text, integer),
	@extschema@.replroute_drain(text),
	@extschema@.replroute_undrain(text)
TO replroute_admin;

-- ---------------------------------------------------------------------------
-- Routing: read the shared table only (no SPI, no catalog, no lock), so any
-- role may call them on every read it routes.  No SET search_path: they
-- resolve no names, and the SET would cost more than the call itself.
-- ---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.replroute_pick_reader(
	max_lag_bytes bigint DEFAULT NULL,
	max_lag interval DEFAULT NULL,
	min_lsn pg_lsn DEFAULT NULL)
RETURNS text
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'replroute_pick_reader';

COMMENT ON FUNCTION @extschema@.replroute_pick_reader(bigint, interval, pg_lsn) IS
	'name of a routable standby within the bounds (replay at or past min_lsn), chosen by replroute.policy; else per replroute.fallback';

CREATE FUNCTION @extschema@.replroute_readers(
	max_lag_bytes bigint DEFAULT NULL,
	max_lag interval DEFAULT NULL,
	min_lsn pg_lsn DEFAULT NULL)
RETURNS TABLE (
	name text,
	host text,
	port integer,
	weight integer,
	lag_bytes bigint,
	replay_lag interval,
	replay_lsn pg_lsn)
LANGUAGE C VOLATILE PARALLEL SAFE ROWS 4
AS 'MODULE_PATHNAME', 'replroute_readers';

COMMENT ON FUNCTION @extschema@.replroute_readers(bigint, interval, pg_lsn) IS
	'every routable standby within the bounds, for clients that choose locally';

-- ---------------------------------------------------------------------------
-- Monitoring
-- ---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.replroute_node_status(
	OUT name text,
	OUT host text,
	OUT port integer,
	OUT application_name text,
	OUT weight integer,
	OUT drained boolean,
	OUT state text,
	OUT reason text,
	OUT routable boolean,
	OUT client_addr inet,
	OUT walsender_state text,
	OUT sync_state text,
	OUT sent_lsn pg_lsn,
	OUT write_lsn pg_lsn,
	OUT flush_lsn pg_lsn,
	OUT replay_lsn pg_lsn,
	OUT lag_bytes bigint,
	OUT write_lag interval,
	OUT flush_lag interval,
	OUT replay_lag interval,
	OUT reply_time timestamptz,
	OUT slot_name text,
	OUT slot_active boolean,
	OUT wal_status text,
	OUT state_since timestamptz,
	OUT observed_at timestamptz,
	OUT probe_state text,
	OUT probe_replay_lsn pg_lsn,
	OUT probe_at timestamptz)
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_node_status';

CREATE VIEW @extschema@.replroute_nodes AS
	SELECT * FROM @extschema@.replroute_node_status();

COMMENT ON VIEW @extschema@.replroute_nodes IS
	'health of every registered standby and of every walsender that matches none, as of the worker''s last round';

CREATE FUNCTION @extschema@.replroute_worker_status(
	OUT pid integer,
	OUT rounds bigint,
	OUT last_round_start timestamptz,
	OUT last_round_duration interval,
	OUT data_age interval,
	OUT in_recovery boolean)
RETURNS record
LANGUAGE C VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_worker_status';

CREATE VIEW @extschema@.replroute_worker AS
	SELECT * FROM @extschema@.replroute_worker_status();

COMMENT ON FUNCTION @extschema@.replroute_worker_status() IS
	'the worker''s pid (NULL when not running), rounds published, and age of the published data';

CREATE FUNCTION @extschema@.replroute_refresh(timeout interval DEFAULT '5s')
RETURNS boolean
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_refresh';

COMMENT ON FUNCTION @extschema@.replroute_refresh(interval) IS
	'wake the worker and wait until it has published a round that began after the call; false on timeout';

REVOKE ALL ON @extschema@.replroute_nodes, @extschema@.replroute_worker FROM PUBLIC;
GRANT SELECT ON @extschema@.replroute_nodes, @extschema@.replroute_worker
	TO pg_monitor, replroute_admin;

REVOKE EXECUTE ON FUNCTION
	@extschema@.replroute_node_status(),
	@extschema@.replroute_worker_status(),
	@extschema@.replroute_refresh(interval)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	@extschema@.replroute_node_status(),
	@extschema@.replroute_worker_status(),
	@extschema@.replroute_refresh(interval)
TO pg_monitor, replroute_admin;

-- ---------------------------------------------------------------------------
-- Event log: the last replroute.event_log_size state changes, from shared
-- memory.  The worker also sends each one as NOTIFY replroute (JSON payload).
-- ---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.replroute_event_log(
	OUT seq bigint,
	OUT at timestamptz,
	OUT node text,
	OUT from_state text,
	OUT to_state text,
	OUT reason text)
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_event_log';

CREATE VIEW @extschema@.replroute_events AS
	SELECT * FROM @extschema@.replroute_event_log() ORDER BY seq;

COMMENT ON VIEW @extschema@.replroute_events IS
	'state changes of nodes (node NULL: the worker''s start and role changes), newest seq highest';

REVOKE ALL ON @extschema@.replroute_events FROM PUBLIC;
GRANT SELECT ON @extschema@.replroute_events TO pg_monitor, replroute_admin;
REVOKE EXECUTE ON FUNCTION @extschema@.replroute_event_log() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.replroute_event_log() TO pg_monitor, replroute_admin;

-- ---------------------------------------------------------------------------
-- Reads after writes on a standby (1.1).  The client learns its commit's
-- position from the reported setting replroute.commit_lsn (or from
-- pg_current_wal_insert_lsn() after the commit), then runs this on the
-- standby, as a statement of its own, before the read.  A plain function: it
-- works without the preload, and any role may wait.
-- ---------------------------------------------------------------------------
CREATE FUNCTION @extschema@.replroute_wait_for_replay(
	lsn pg_lsn,
	timeout interval DEFAULT '50ms')
RETURNS boolean
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'replroute_wait_for_replay';

COMMENT ON FUNCTION @extschema@.replroute_wait_for_replay(pg_lsn, interval) IS
	'on a standby, wait until replay has reached lsn (true) or timeout has passed (false); true at once on a primary';

GRANT EXECUTE ON FUNCTION @extschema@.replroute_wait_for_replay(pg_lsn, interval) TO PUBLIC;
