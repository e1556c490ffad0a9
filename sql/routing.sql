--
-- Routing on a lone primary: nothing is routable, so the fallback decides.
--
SELECT replroute_add_node('s1', 'db1.example.com');
SELECT replroute_add_node('s2', 'db2.example.com', weight => 300);
SELECT replroute_refresh();
SELECT name, state, routable FROM replroute_nodes ORDER BY name;

-- fallback none (the default): NULL
SHOW replroute.fallback;
SELECT replroute_pick_reader() IS NULL AS is_null;
SELECT count(*) FROM replroute_readers();

-- every policy comes to the same answer when nothing qualifies
SET replroute.policy = 'round_robin';
SELECT replroute_pick_reader() IS NULL AS is_null;
SET replroute.policy = 'least_lag';
SELECT replroute_pick_reader() IS NULL AS is_null;
RESET replroute.policy;
SHOW replroute.policy;

-- fallback primary: the configured name of the primary
SET replroute.fallback = 'primary';
SELECT replroute_pick_reader();
SET replroute.primary_name = 'main';
SELECT replroute_pick_reader();
SELECT replroute_pick_reader(1024, '1s', pg_current_wal_lsn());
-- readers() lists routable standbys only; the fallback is pick_reader's
SELECT count(*) FROM replroute_readers();
RESET replroute.primary_name;

-- fallback error: says why
SET replroute.fallback = 'error';
SELECT replroute_pick_reader();
SELECT replroute_pick_reader(min_lsn => '0/0');
RESET replroute.fallback;

-- Per-call bounds: NULL is no bound, zero is allowed, negative is an error.
SELECT replroute_pick_reader(NULL, NULL, NULL) IS NULL AS is_null;
SELECT replroute_pick_reader(0, '0', '0/0') IS NULL AS is_null;
SELECT replroute_pick_reader(max_lag => '1 day 2 mons') IS NULL AS is_null;
SELECT replroute_pick_reader(-1);
SELECT replroute_pick_reader(max_lag => '-1 s');
SELECT replroute_pick_reader(max_lag => '1 day -25 hours');
SELECT * FROM replroute_readers(-1);
SELECT * FROM replroute_readers(max_lag => '-0.001 s');
SELECT * FROM replroute_readers(1000, '1 s', '0/1000');

-- GUCs: names, units, ranges, defaults, contexts.
SELECT name, unit, context, vartype, min_val, max_val, enumvals, boot_val
  FROM pg_settings WHERE name LIKE 'replroute.%' ORDER BY name;
SET replroute.policy = 'random';
SET replroute.fallback = 'standby';
SET replroute.max_nodes = 5;
SET replroute.poll_interval = '10ms';
SET replroute.no_such_setting = 1;

SELECT replroute_remove_node(name) FROM replroute_node ORDER BY name;
