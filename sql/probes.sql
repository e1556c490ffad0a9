-- The probe settings: defaults, ranges, and a conninfo that may carry neither
-- a password nor a host or port (the registry's), checked when set.
SELECT name, setting, unit, context, min_val, max_val
  FROM pg_settings WHERE name LIKE 'replroute.probe%' ORDER BY name;

-- Reload settings: SET is refused; ALTER SYSTEM validates the value.
SET replroute.probe_interval = '100ms';
ALTER SYSTEM SET replroute.probe_interval = 0;
ALTER SYSTEM SET replroute.probe_interval = '2h';
ALTER SYSTEM SET replroute.probe_timeout = '5ms';
ALTER SYSTEM SET replroute.probe_timeout = '11min';
ALTER SYSTEM SET replroute.probe = 'maybe';

-- A password is refused, and the value is not echoed.
ALTER SYSTEM SET replroute.probe_conninfo = 'dbname=postgres password=s3cret';
ALTER SYSTEM SET replroute.probe_conninfo = 'password=''s3cret'' user=monitor';
ALTER SYSTEM SET replroute.probe_conninfo = 'postgresql://monitor:s3cret@/postgres';
ALTER SYSTEM SET replroute.probe_conninfo = 'host=evil.example dbname=postgres';
ALTER SYSTEM SET replroute.probe_conninfo = 'hostaddr=10.0.0.1';
ALTER SYSTEM SET replroute.probe_conninfo = 'port=5433';
ALTER SYSTEM SET replroute.probe_conninfo = 'dbname=postgres s3cret';
ALTER SYSTEM SET replroute.probe_conninfo = 'nosuchoption=1';

-- Accepted, then put back.
ALTER SYSTEM SET replroute.probe_conninfo = 'dbname=postgres user=monitor sslmode=prefer passfile=/nonexistent connect_timeout=2';
ALTER SYSTEM SET replroute.probe_interval = '10ms';
ALTER SYSTEM SET replroute.probe_timeout = '10min';
ALTER SYSTEM RESET replroute.probe_conninfo;
ALTER SYSTEM RESET replroute.probe_interval;
ALTER SYSTEM RESET replroute.probe_timeout;

-- The view's probe columns exist; probes are off in this instance.
SELECT probe_state, probe_replay_lsn, probe_at
  FROM replroute_nodes WHERE false;
