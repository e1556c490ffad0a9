--
-- Who may do what: any role routes; replroute_admin changes the registry;
-- pg_monitor (and replroute_admin) read the monitoring views.
--
CREATE ROLE regress_rr_plain;
CREATE ROLE regress_rr_admin IN ROLE replroute_admin;
CREATE ROLE regress_rr_monitor IN ROLE pg_monitor;

SELECT replroute_add_node('s1', 'db1.example.com');

-- A plain role: routes, but neither changes nor sees the registry.
SET ROLE regress_rr_plain;
SELECT replroute_pick_reader() IS NULL AS is_null;
SELECT count(*) FROM replroute_readers();
SELECT replroute_add_node('p1', 'h');
SELECT replroute_remove_node('s1');
SELECT replroute_set_weight('s1', 1);
SELECT replroute_drain('s1');
SELECT replroute_undrain('s1');
SELECT count(*) FROM replroute_nodes;
SELECT count(*) FROM replroute_node_status();
SELECT count(*) FROM replroute_worker;
SELECT * FROM replroute_worker_status();
SELECT replroute_refresh();
SELECT count(*) FROM replroute_node;
INSERT INTO replroute_node (name, host, port, weight, application_name)
VALUES ('p1', 'h', 5432, 1, 'p1');
RESET ROLE;

-- A member of replroute_admin changes the registry and reads the views.
SET ROLE regress_rr_admin;
SELECT replroute_add_node('a1', 'h1');
SELECT replroute_set_weight('a1', 5);
SELECT replroute_drain('a1');
SELECT replroute_undrain('a1');
SELECT replroute_refresh();
SELECT name, weight, state FROM replroute_nodes ORDER BY name;
SELECT rounds > 0 AS published FROM replroute_worker;
SELECT replroute_remove_node('a1');
SELECT replroute_refresh();
SELECT replroute_pick_reader() IS NULL AS is_null;
RESET ROLE;

-- A member of pg_monitor reads the views, changes nothing.
SET ROLE regress_rr_monitor;
SELECT name, state, routable FROM replroute_nodes ORDER BY name;
SELECT rounds > 0 AS published FROM replroute_worker_status();
SELECT replroute_refresh();
SELECT count(*) FROM replroute_node;
SELECT replroute_add_node('m1', 'h');
DELETE FROM replroute_node;
RESET ROLE;

-- The registry lives in replroute.database only; the extension can still be
-- created elsewhere (its role already exists), and routing works there.
CREATE DATABASE regress_rr_other;
\c regress_rr_other
SET client_min_messages = warning;
CREATE EXTENSION replroute;
RESET client_min_messages;
SELECT replroute_add_node('o1', 'h');
SELECT replroute_drain('s1');
SELECT replroute_pick_reader() IS NULL AS is_null;
SELECT name FROM replroute_nodes ORDER BY name;
\c contrib_regression
DROP DATABASE regress_rr_other;

SELECT replroute_remove_node(name) FROM replroute_node ORDER BY name;
DROP ROLE regress_rr_plain, regress_rr_admin, regress_rr_monitor;
