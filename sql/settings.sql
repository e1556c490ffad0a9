-- The stability settings: units, ranges, defaults, and bad values refused.
SELECT name, setting, unit, min_val, max_val, context, boot_val
  FROM pg_settings
 WHERE name IN ('replroute.lag_leave_fraction', 'replroute.recovery_hold',
                'replroute.stall_timeout', 'replroute.max_lag_bytes',
                'replroute.max_replay_lag')
 ORDER BY name;
SHOW replroute.recovery_hold;
SHOW replroute.stall_timeout;
SHOW replroute.lag_leave_fraction;

-- reload settings: not per session
SET replroute.recovery_hold = '2s';
SET replroute.stall_timeout = '5s';
SET replroute.lag_leave_fraction = 0.8;

-- out of range or malformed: refused, nothing written
ALTER SYSTEM SET replroute.recovery_hold = -1;
ALTER SYSTEM SET replroute.recovery_hold = '2h';
ALTER SYSTEM SET replroute.recovery_hold = 'soon';
ALTER SYSTEM SET replroute.lag_leave_fraction = 1.5;
ALTER SYSTEM SET replroute.lag_leave_fraction = -0.1;
ALTER SYSTEM SET replroute.lag_leave_fraction = 'half';
ALTER SYSTEM SET replroute.stall_timeout = 0;
ALTER SYSTEM SET replroute.stall_timeout = -2;
ALTER SYSTEM SET replroute.stall_timeout = '1 fortnight';
SELECT count(*) AS pending_changes FROM pg_file_settings
 WHERE name LIKE 'replroute.%' AND sourcefile LIKE '%postgresql.auto.conf';

-- max_lag_bytes: a bare number is bytes, as the SQL parameter of that name;
-- units still work; the largest value is 2147483647 bytes (2GB - 1)
SHOW replroute.max_lag_bytes;
SELECT setting, unit FROM pg_settings WHERE name = 'replroute.max_lag_bytes';
ALTER SYSTEM SET replroute.max_lag_bytes = 1000000;
ALTER SYSTEM SET replroute.max_lag_bytes = '2GB';
ALTER SYSTEM SET replroute.max_lag_bytes = 2147483648;
SELECT name, setting FROM pg_file_settings
 WHERE name = 'replroute.max_lag_bytes' AND sourcefile LIKE '%postgresql.auto.conf';
ALTER SYSTEM SET replroute.max_lag_bytes = '16MB';
ALTER SYSTEM SET replroute.max_lag_bytes = 2147483647;
ALTER SYSTEM SET replroute.max_lag_bytes = -1;
SELECT name, setting FROM pg_file_settings
 WHERE name = 'replroute.max_lag_bytes' AND sourcefile LIKE '%postgresql.auto.conf';
ALTER SYSTEM RESET replroute.max_lag_bytes;

-- the edges are accepted
ALTER SYSTEM SET replroute.recovery_hold = 0;
ALTER SYSTEM SET replroute.recovery_hold = '1h';
ALTER SYSTEM SET replroute.lag_leave_fraction = 0;
ALTER SYSTEM SET replroute.lag_leave_fraction = 1;
ALTER SYSTEM SET replroute.stall_timeout = -1;
ALTER SYSTEM SET replroute.stall_timeout = '1ms';
SELECT name, setting FROM pg_file_settings
 WHERE name LIKE 'replroute.%' AND sourcefile LIKE '%postgresql.auto.conf'
 ORDER BY name;
ALTER SYSTEM RESET replroute.recovery_hold;
ALTER SYSTEM RESET replroute.lag_leave_fraction;
ALTER SYSTEM RESET replroute.stall_timeout;
SELECT count(*) AS pending_changes FROM pg_file_settings
 WHERE name LIKE 'replroute.%' AND sourcefile LIKE '%postgresql.auto.conf';
