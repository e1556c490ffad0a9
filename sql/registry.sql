--
-- The registry: add, remove, set_weight, drain, undrain, and what the view
-- shows for them on a lone primary (every node is disconnected).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS replroute;
RESET client_min_messages;

-- The contract: functions, their signatures and attributes.
SELECT p.oid::regprocedure AS function,
       pg_get_function_result(p.oid) AS result,
       p.provolatile AS volatile, p.proparallel AS parallel, p.proisstrict AS strict,
       p.proconfig AS config
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
   AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'replroute'
 ORDER BY p.proname;

-- The view's columns, in order.
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute
 WHERE attrelid = 'replroute_nodes'::regclass AND attnum > 0
 ORDER BY attnum;

SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute
 WHERE attrelid = 'replroute_worker'::regclass AND attnum > 0
 ORDER BY attnum;

-- The table is kept by pg_dump.
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'replroute';

SELECT replroute_refresh();
SELECT count(*) FROM replroute_nodes;

SELECT replroute_add_node('s1', 'db1.example.com');
SELECT replroute_add_node('s2', '10.0.0.2', 5433, 50, 'standby_two');
SELECT replroute_add_node(name => 's3', host => '/var/run/postgresql', weight => 0);
SELECT replroute_add_node('s4', '::1', application_name => 'app four');

SELECT name, host, port, weight, application_name, drained, created_at IS NOT NULL AS created
  FROM replroute_node ORDER BY name;

SELECT replroute_refresh();
SELECT name, host, port, application_name, weight, drained, state, reason, routable,
       client_addr, walsender_state, sync_state, sent_lsn, write_lsn, flush_lsn,
       replay_lsn, lag_bytes, write_lag, flush_lag, replay_lag, reply_time,
       slot_name, slot_active, wal_status,
       state_since IS NOT NULL AS has_state_since,
       observed_at IS NOT NULL AS observed
  FROM replroute_nodes ORDER BY name;

-- drain / undrain
SELECT replroute_drain('s1');
SELECT replroute_drain('s1');	-- idempotent
SELECT replroute_refresh();
SELECT name, drained, state, routable FROM replroute_nodes ORDER BY name;
SELECT replroute_undrain('s1');
SELECT replroute_refresh();
SELECT name, drained, state, routable FROM replroute_nodes ORDER BY name;

-- set_weight, including 0 (never picked) and the maximum
SELECT replroute_set_weight('s2', 7);
SELECT replroute_set_weight('s1', 0);
SELECT replroute_set_weight('s4', 1000000);
SELECT replroute_refresh();
SELECT name, weight FROM replroute_nodes ORDER BY name;

-- remove: true once, then false
SELECT replroute_remove_node('s3');
SELECT replroute_remove_node('s3');
SELECT replroute_refresh();
SELECT name FROM replroute_nodes ORDER BY name;

-- A change rolled back changes nothing.
BEGIN;
SELECT replroute_remove_node('s2');
ROLLBACK;
SELECT name FROM replroute_node ORDER BY name;

-- Direct DML is held to the same rules by CHECK constraints, and is seen by
-- the worker too.  (Terse: the failing row would show created_at.)
\set VERBOSITY terse
INSERT INTO replroute_node (name, host, port, weight, application_name)
VALUES ('bad name', 'h', 5432, 1, 'x');
INSERT INTO replroute_node (name, host, port, weight, application_name)
VALUES ('d1', 'host=evil', 5432, 1, 'x');
INSERT INTO replroute_node (name, host, port, weight, application_name)
VALUES ('d1', 'h', 0, 1, 'x');
INSERT INTO replroute_node (name, host, port, weight, application_name)
VALUES ('d1', 'h', 5432, -1, 'x');
INSERT INTO replroute_node (name, host, port, weight, application_name)
VALUES ('d1', 'h', 5432, 1, 'a''b');
INSERT INTO replroute_node (name, host, port, weight, application_name)
VALUES ('d1', 'h1,h2', 5432, 1, 'x');
\set VERBOSITY default
INSERT INTO replroute_node (name, host, port, weight, application_name)
VALUES ('d1', 'h.example.com', 5432, 1, 'd1');
SELECT replroute_refresh();
SELECT name, state FROM replroute_nodes ORDER BY name;

-- Clean up for the next tests.
SELECT replroute_remove_node(name) FROM replroute_node ORDER BY name;
SELECT replroute_refresh();
SELECT count(*) FROM replroute_nodes;
