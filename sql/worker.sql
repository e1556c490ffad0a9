--
-- The worker: status, refresh, visibility.
--
SELECT replroute_refresh();
SELECT pid IS NOT NULL AS running,
       rounds > 0 AS published,
       last_round_start IS NOT NULL AS has_start,
       last_round_duration >= '0' AND last_round_duration < '5s' AS sane_duration,
       data_age >= '0' AND data_age < '10s' AS fresh,
       in_recovery
  FROM replroute_worker_status();

-- The pid is the live worker's.
SELECT count(*) FROM pg_stat_activity a, replroute_worker w
 WHERE a.pid = w.pid AND a.backend_type = 'replroute worker';

-- Each refresh waits for a round that started after the call.
SELECT rounds AS rounds_before FROM replroute_worker_status() \gset
SELECT replroute_refresh();
SELECT replroute_refresh('2s');
SELECT rounds >= :rounds_before + 2 AS two_more_rounds FROM replroute_worker_status();

-- A zero timeout cannot see a round that has yet to start.
SELECT replroute_refresh('0');
SELECT replroute_refresh(NULL);
SELECT replroute_refresh('-1 s');

-- A registry change is published without refresh within a round or two;
-- poll instead of sleeping blindly.
SELECT replroute_add_node('w1', 'h');
DO $$
DECLARE
	deadline timestamptz := clock_timestamp() + interval '10 s';
BEGIN
	WHILE NOT EXISTS (SELECT FROM replroute_nodes WHERE name = 'w1') LOOP
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'w1 not published within 10 s';
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
END
$$;
SELECT name, state FROM replroute_nodes;
SELECT replroute_remove_node('w1');
SELECT replroute_refresh();
SELECT count(*) FROM replroute_nodes;
