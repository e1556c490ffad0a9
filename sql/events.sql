--
-- The event log: the view, its columns and privileges, the worker's start,
-- and a node's changes chained from -> to.  Counts and times depend on what
-- ran before, so only what is deterministic is shown.
--
SELECT replroute_refresh();

SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a
 WHERE a.attrelid = 'replroute_events'::regclass AND a.attnum > 0
 ORDER BY a.attnum;

SHOW replroute.event_log_size;
SELECT min_val, max_val, context FROM pg_settings
 WHERE name = 'replroute.event_log_size';

-- The worker's start is an event without a node.
SELECT node, from_state, to_state, reason ~ '^worker pid [0-9]+ started on a primary$' AS reason_ok
  FROM replroute_events WHERE to_state = 'worker_started';

-- seq is unique and the view is ordered by it.
SELECT count(*) = count(DISTINCT seq) AS unique_seq,
       bool_and(seq > 0) AS positive,
       max(seq) = (SELECT seq FROM replroute_events ORDER BY seq DESC LIMIT 1) AS ordered
  FROM replroute_events;

-- A node's life, each change published by a refresh before the next one.
SELECT coalesce(max(seq), 0) AS seq_before FROM replroute_events \gset
SELECT replroute_add_node('ev1', 'ev1.example');
SELECT replroute_refresh();
SELECT replroute_drain('ev1');
SELECT replroute_refresh();
SELECT replroute_undrain('ev1');
SELECT replroute_refresh();
SELECT replroute_remove_node('ev1');
SELECT replroute_refresh();
SELECT node, from_state, to_state, reason
  FROM replroute_events
 WHERE seq > :seq_before AND node = 'ev1'
 ORDER BY seq;
-- Each event's from_state is the previous event's to_state.
SELECT count(*) AS broken_links
  FROM (SELECT from_state,
               lag(to_state) OVER (ORDER BY seq) AS previous
          FROM replroute_events
         WHERE seq > :seq_before AND node = 'ev1') s
 WHERE from_state IS DISTINCT FROM previous;

-- Who may read it: pg_monitor and replroute_admin, not PUBLIC.
CREATE ROLE regress_rr_ev_plain;
CREATE ROLE regress_rr_ev_monitor IN ROLE pg_monitor;
CREATE ROLE regress_rr_ev_admin IN ROLE replroute_admin;
SELECT r AS role,
       has_table_privilege(r, 'replroute_events', 'SELECT') AS view,
       has_function_privilege(r, 'replroute_event_log()', 'EXECUTE') AS function
  FROM unnest(ARRAY['regress_rr_ev_plain', 'regress_rr_ev_monitor',
                    'regress_rr_ev_admin']) AS r;
SET ROLE regress_rr_ev_plain;
SELECT count(*) FROM replroute_events;
SELECT count(*) FROM replroute_event_log();
RESET ROLE;
SET ROLE regress_rr_ev_monitor;
SELECT count(*) > 0 AS sees_events FROM replroute_events;
RESET ROLE;
DROP ROLE regress_rr_ev_plain, regress_rr_ev_monitor, regress_rr_ev_admin;
