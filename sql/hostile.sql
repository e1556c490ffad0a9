--
-- Hostile input to every function and setting: each gets a clear error (or,
-- where the input is harmless, a plain answer), nothing crashes, and the
-- registry is unchanged at the end.
--
-- try() shows SQLSTATE and the start of the message: a message that echoes a
-- 1 MB argument must not flood the expected output, and the length shows
-- that it was cut rather than missing.
CREATE FUNCTION pg_temp.try(statement text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE statement;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || left(SQLERRM, 120)
		|| CASE WHEN length(SQLERRM) > 120
			THEN ' ... (' || length(SQLERRM) || ' chars)' ELSE '' END;
END
$$;

SELECT replroute_add_node('keep1', 'db1.example.com', 5433, 7);
SELECT replroute_drain('keep1');
CREATE TEMP TABLE before AS SELECT * FROM replroute_node;

-- Huge strings (1 MB) in every text argument.
SELECT pg_temp.try(format('SELECT replroute_add_node(%L, %L)', repeat('a', 1048576), 'h'));
SELECT pg_temp.try(format('SELECT replroute_add_node(%L, %L)', 'n', repeat('h', 1048576)));
SELECT pg_temp.try(format('SELECT replroute_add_node(%L, %L, 5432, 1, %L)', 'n', 'h', repeat('x', 1048576)));
SELECT pg_temp.try(format('SELECT replroute_remove_node(%L)', repeat('a', 1048576)));
SELECT pg_temp.try(format('SELECT replroute_set_weight(%L, 1)', repeat('a', 1048576)));
SELECT pg_temp.try(format('SELECT replroute_drain(%L)', repeat('a', 1048576)));
SELECT pg_temp.try(format('SELECT replroute_undrain(%L)', repeat('a', 1048576)));

-- Control characters, unicode, quotes, backslashes in names.
SELECT pg_temp.try($$SELECT replroute_add_node(E'a\tb', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node(E'a\rb', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node(E'a\x01b', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node(E'a\x7fb', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node(E'ab\n', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('nœud', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node(U&'\+01F600', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node(U&'a\200Bb', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node(E'a\\b', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('a`b', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('a$b', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('a/b', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('.', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('..', 'h')$$);

-- SQL injection attempts in names.
SELECT pg_temp.try($$SELECT replroute_add_node('x''); DROP TABLE replroute_node; --', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('x'' OR ''1''=''1', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_remove_node(''' OR true --')$$);
SELECT pg_temp.try($$SELECT replroute_set_weight('keep1'' OR name <> ''', 0)$$);
SELECT pg_temp.try($$SELECT replroute_drain('%')$$);
SELECT pg_temp.try($$SELECT replroute_undrain('keep_')$$);
SELECT pg_temp.try($$SELECT replroute_undrain('KEEP1')$$);

-- Conninfo injection attempts and odd strings in hosts.
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h sslmode=disable')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h'' password=''x')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h,evil')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', E'h\tq')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', E'h\x01')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', E'h\\ q')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'postgresql://evil/db')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', ' ')$$);

-- Conninfo and SQL injection attempts in application_name.
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, 1, 'a'' OR ''1')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, 1, E'a\\b')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, 1, E'a\nb')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, 1, 'nœud')$$);

-- Out-of-range numbers.
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', -1)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 0)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 65536)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 2147483647)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', -2147483648)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 2147483648)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, -1)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, 1000001)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, 2147483647)$$);
SELECT pg_temp.try($$SELECT replroute_set_weight('keep1', 1000001)$$);
SELECT pg_temp.try($$SELECT replroute_set_weight('keep1', -2147483648)$$);

-- Wrong types: no implicit cast reaches the functions.
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 'port')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432.5)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432::bigint)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, true)$$);
SELECT pg_temp.try($$SELECT replroute_add_node(1, 2)$$);
SELECT pg_temp.try($$SELECT replroute_add_node(ARRAY['n'], 'h')$$);
SELECT pg_temp.try($$SELECT replroute_set_weight('keep1', '1e3')$$);
SELECT pg_temp.try($$SELECT replroute_drain('keep1', 'extra')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader('x')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag => 5)$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(min_lsn => 'nope')$$);
SELECT pg_temp.try($$SELECT replroute_refresh(5)$$);
SELECT pg_temp.try($$SELECT replroute_refresh('soon')$$);

-- Routing arguments: out of range, extreme, NULL (NULL means no bound).
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag_bytes => -1)$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag_bytes => -9223372036854775808)$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag_bytes => 9223372036854775807)$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag => '-1 s')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag => '-178000000 years')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag => '178000000 years')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag => '2147483647 days 2147483647 hours')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag => '1 month -40 days')$$);
-- Fields of mixed signs that overflow: the sign of the whole decides.
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag => '178000000 years -1 day')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag => '-178000000 years 1 day')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag => '2147483647 months -2147483648 days')$$);
SELECT pg_temp.try($$SELECT count(*) FROM replroute_readers(max_lag => '-2147483647 days 2147483647 hours')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(max_lag => 'infinity')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(min_lsn => '0/0')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(min_lsn => 'FFFFFFFF/FFFFFFFF')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(min_lsn => '100000000/0')$$);
SELECT pg_temp.try($$SELECT replroute_pick_reader(NULL, NULL, NULL)$$);
SELECT pg_temp.try($$SELECT count(*) FROM replroute_readers(-1)$$);
SELECT pg_temp.try($$SELECT count(*) FROM replroute_readers(max_lag => '-1 us')$$);
SELECT pg_temp.try($$SELECT count(*) FROM replroute_readers(NULL, '178000000 years', 'FFFFFFFF/FFFFFFFF')$$);
SELECT pg_temp.try($$SELECT count(*) FROM replroute_readers(0, '0', '0/0')$$);
SELECT replroute_pick_reader(min_lsn => 'FFFFFFFF/FFFFFFFF') IS NULL AS nothing_qualifies;

-- replroute_refresh: NULL, negative, huge (returns at once: a round is due).
SELECT pg_temp.try($$SELECT replroute_refresh(NULL)$$);
SELECT pg_temp.try($$SELECT replroute_refresh('-1 s')$$);
SELECT pg_temp.try($$SELECT replroute_refresh('-178000000 years')$$);
SELECT replroute_refresh('178000000 years') AS refreshed;
SELECT replroute_refresh('178000000 years -1 day') AS refreshed;
SELECT replroute_refresh('0') IN (true, false) AS zero_timeout_answers;

-- The trigger function called directly.
SELECT pg_temp.try($$SELECT replroute_node_changed()$$);

-- Settings: bad values are refused and the old value stays.
SHOW replroute.policy;
SET replroute.policy = 'x';
SET replroute.policy = '';
SET replroute.policy = 'weighted; DROP TABLE replroute_node';
SET replroute.policy = 3;
SHOW replroute.policy;
SET replroute.policy = 'ROUND_ROBIN';
SHOW replroute.policy;
RESET replroute.policy;
SET replroute.fallback = 'nonsense';
SET replroute.fallback = NULL;
SHOW replroute.fallback;
-- Settings that need a reload or a restart cannot be set in a session.
SET replroute.poll_interval = '10ms';
SET replroute.stale_after = -1;
SET replroute.max_lag_bytes = -2;
SET replroute.max_replay_lag = 'soon';
SET replroute.max_nodes = 100000;
SET replroute.database = 'postgres';
-- Unknown settings under the reserved prefix.
SET replroute.no_such_setting = 1;
SET replroute."policy; x" = 1;
-- primary_name is returned verbatim by fallback = primary: any string
-- (quotes, control characters, 1 MB) comes back as it went in.
SET replroute.fallback = 'primary';
SET replroute.primary_name = E'p''"\\\t;--';
SELECT replroute_pick_reader(min_lsn => 'FFFFFFFF/FFFFFFFF') = E'p''"\\\t;--' AS verbatim;
SELECT set_config('replroute.primary_name', repeat('p', 1048576), false) IS NOT NULL AS set;
SELECT length(replroute_pick_reader(min_lsn => 'FFFFFFFF/FFFFFFFF')) AS primary_name_length;
SET replroute.primary_name = '';
SELECT replroute_pick_reader(min_lsn => 'FFFFFFFF/FFFFFFFF') AS empty_primary_name;
RESET replroute.primary_name;
RESET replroute.fallback;
SET replroute.fallback = 'error';
SELECT pg_temp.try($$SELECT replroute_pick_reader(min_lsn => 'FFFFFFFF/FFFFFFFF')$$);
RESET replroute.fallback;
-- ALTER SYSTEM validates too, and writes nothing on error.
ALTER SYSTEM SET replroute.poll_interval = -5;
ALTER SYSTEM SET replroute.stale_after = 0;
ALTER SYSTEM SET replroute.max_nodes = 0;
ALTER SYSTEM SET replroute.max_nodes = 1000000000;
ALTER SYSTEM SET replroute.policy = 'x';
ALTER SYSTEM SET replroute.max_lag_bytes = -2;
ALTER SYSTEM SET replroute.max_replay_lag = '1 year';
ALTER SYSTEM SET replroute.lag_leave_fraction = 1.5;
ALTER SYSTEM SET replroute.lag_leave_fraction = -0.1;
ALTER SYSTEM SET replroute.lag_leave_fraction = 'NaN';
ALTER SYSTEM SET replroute.recovery_hold = '2h';
ALTER SYSTEM SET replroute.recovery_hold = -1;
ALTER SYSTEM SET replroute.stall_timeout = 0;
ALTER SYSTEM SET replroute.stall_timeout = 'forever';
SET replroute.recovery_hold = 0;
ALTER SYSTEM SET replroute.event_log_size = 0;
ALTER SYSTEM SET replroute.event_log_size = 'many';
SET replroute.event_log_size = 100;
-- The event log takes no arguments and has nothing to inject into.
SELECT pg_temp.try($$SELECT * FROM replroute_event_log('x')$$);

-- Direct DML with the same hostile values meets the CHECK constraints.
SELECT pg_temp.try($$INSERT INTO replroute_node (name, host, port, weight, application_name) VALUES ('x''; --', 'h', 1, 1, 'a')$$);
SELECT pg_temp.try($$INSERT INTO replroute_node (name, host, port, weight, application_name) VALUES ('n', 'h password=x', 1, 1, 'a')$$);
SELECT pg_temp.try($$INSERT INTO replroute_node (name, host, port, weight, application_name) VALUES ('n', 'h', 65536, 1, 'a')$$);
SELECT pg_temp.try($$INSERT INTO replroute_node (name, host, port, weight, application_name) VALUES ('n', 'h', 1, 1000001, 'a')$$);
SELECT pg_temp.try($$INSERT INTO replroute_node (name, host, port, weight, application_name) VALUES ('n', 'h', 1, 1, E'a\x01')$$);
SELECT pg_temp.try($$UPDATE replroute_node SET port = 0$$);

-- Nothing changed: the registry is what it was, the node still drained.
SELECT count(*) AS unchanged_rows FROM (
	SELECT name, host, port, weight, application_name, drained FROM before
	INTERSECT
	SELECT name, host, port, weight, application_name, drained FROM replroute_node) s;
SELECT (SELECT count(*) FROM replroute_node) AS registry_rows;
SELECT replroute_refresh();
SELECT name, state, routable FROM replroute_nodes ORDER BY name;

SELECT replroute_remove_node('keep1');
