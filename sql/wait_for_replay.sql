--
-- replroute_wait_for_replay() and replroute.commit_lsn on a primary (the
-- standby side is test/tap/021_wait_for_replay.pl): bad arguments get an
-- error with a fitting SQLSTATE; a primary answers true at once.
--
CREATE FUNCTION pg_temp.try(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	detail text;
BEGIN
	EXECUTE statement;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
	RETURN SQLSTATE || ': ' || SQLERRM
		|| CASE WHEN detail <> '' THEN ' [' || detail || ']' ELSE '' END;
END
$$;

-- NULL in either argument (22004), a negative timeout (22023).
SELECT pg_temp.try($$SELECT replroute_wait_for_replay(NULL)$$);
SELECT pg_temp.try($$SELECT replroute_wait_for_replay(NULL, '1s')$$);
SELECT pg_temp.try($$SELECT replroute_wait_for_replay('0/0', NULL)$$);
SELECT pg_temp.try($$SELECT replroute_wait_for_replay('0/0', '-1 microsecond')$$);
SELECT pg_temp.try($$SELECT replroute_wait_for_replay('0/0', '-178000000 years')$$);
SELECT pg_temp.try($$SELECT replroute_wait_for_replay('0/0', '-2 days +1 hour')$$);
-- Not a position (22P02, from the type itself).
SELECT pg_temp.try($$SELECT replroute_wait_for_replay('nowhere')$$);

-- Huge, odd but valid timeouts: a primary answers true at once.
SELECT replroute_wait_for_replay('FFFFFFFF/FFFFFFFF', '178000000 years');
SELECT replroute_wait_for_replay('FFFFFFFF/FFFFFFFF', '178000000 years -1 day');
SELECT replroute_wait_for_replay('FFFFFFFF/FFFFFFFF', '1 day -1 hour');
SELECT replroute_wait_for_replay('0/0', '0');
SELECT replroute_wait_for_replay(pg_current_wal_insert_lsn());

-- Once more with the full message.
SELECT replroute_wait_for_replay('0/0', '-1s');
SELECT replroute_wait_for_replay(NULL);

-- Where the read after the wait could not see the write (25001), even on a
-- primary, so that the mistake shows before it reaches a standby.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT replroute_wait_for_replay('0/0');
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT replroute_wait_for_replay('0/0');
ROLLBACK;
-- Bad arguments are reported first.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT replroute_wait_for_replay(NULL);
ROLLBACK;
-- READ COMMITTED takes a snapshot per statement: allowed.
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT replroute_wait_for_replay('0/0');
COMMIT;

-- The setting: read-only for everyone, a position after a write (this
-- session has written: the function above).
SELECT name, setting ~ '^[0-9A-F]+/[0-9A-F]+$' AS is_lsn, context, vartype
FROM pg_settings WHERE name = 'replroute.commit_lsn';
SET replroute.commit_lsn = '0/1';
SELECT pg_temp.try($$SELECT set_config('replroute.commit_lsn', '0/1', false)$$);
CREATE TEMP TABLE w (x int);
SELECT current_setting('replroute.commit_lsn') AS before \gset
INSERT INTO w VALUES (1);
SELECT current_setting('replroute.commit_lsn')::pg_lsn > :'before'::pg_lsn AS advanced,
       current_setting('replroute.commit_lsn')::pg_lsn <= pg_current_wal_insert_lsn() AS written;
SELECT current_setting('replroute.commit_lsn') AS before \gset
SELECT count(*) FROM w;
SELECT current_setting('replroute.commit_lsn') = :'before' AS a_read_leaves_it;
