--
-- Without shared_preload_libraries: CREATE EXTENSION works, every function
-- says how to preload, and the registry table can still be written (a
-- pg_restore into such a server must work).
--
CREATE EXTENSION replroute;
SELECT replroute_pick_reader();
SELECT * FROM replroute_readers();
SELECT * FROM replroute_nodes;
SELECT * FROM replroute_worker_status();
SELECT replroute_refresh();
SELECT * FROM replroute_events;
SELECT replroute_add_node('s1', 'h');
SELECT replroute_remove_node('s1');
SELECT replroute_set_weight('s1', 1);
SELECT replroute_drain('s1');
SELECT replroute_undrain('s1');
INSERT INTO replroute_node (name, host, port, weight, application_name)
VALUES ('s1', 'h', 5432, 1, 's1');
SELECT name, host FROM replroute_node;
-- Only replroute.commit_lsn, which needs no shared memory, is defined when
-- the library is loaded on demand.
SELECT name FROM pg_settings WHERE name LIKE 'replroute.%';
-- ... and set by the INSERT above, which committed after the library loaded.
SELECT current_setting('replroute.commit_lsn') ~ '^[0-9A-F]+/[0-9A-F]+$' AS reported;
-- replroute_wait_for_replay needs no preload (a primary: true at once).
SELECT replroute_wait_for_replay(pg_current_wal_insert_lsn());
SELECT replroute_wait_for_replay(NULL);
-- dropped and created again: the role survives and is reused
DROP EXTENSION replroute;
SELECT rolname FROM pg_roles WHERE rolname = 'replroute_admin';
CREATE EXTENSION replroute;
DROP EXTENSION replroute;
