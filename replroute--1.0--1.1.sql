/* replroute--1.0--1.1.sql: replroute 1.0 to 1.1 */

\echo Use "ALTER EXTENSION replroute UPDATE TO '1.1'" to load this file. \quit

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
