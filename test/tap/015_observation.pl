# Observation from shared memory: replroute_nodes shows what
# pg_stat_replication and pg_replication_slots show, also while walsenders
# come and go; a registry change under load is applied by the next round; a
# broken probe is judged at once, not at the next scheduled round; a
# restarting worker never leaves replroute_nodes without its rows.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use ReplrouteTest;

my $primary = new_primary('primary');
$primary->backup('b1');
my $s1 = add_standby($primary, 'standby1', 'b1');
my $s2 = add_standby($primary, 'standby2', 'b1');
# Reconnect quickly after a walsender is terminated, so the churn is churn.
for my $s ($s1, $s2)
{
	$s->append_conf('postgresql.conf', "wal_retrieve_retry_interval = '50ms'\n");
	$s->reload;
}
wait_routable($primary, 2);

# Every walsender column of replroute_nodes against the views, in the same
# statement as a refresh; false when anything differs.  Lags are idle-aware in
# replroute_nodes (0 where the view is NULL after everything was replayed).
my $same_as_views = q{
SELECT replroute_refresh() AND bool_and(ok) FROM (
  SELECT n.client_addr IS NOT DISTINCT FROM r.client_addr
     AND n.walsender_state IS NOT DISTINCT FROM r.state
     AND n.sync_state IS NOT DISTINCT FROM r.sync_state
     AND n.sent_lsn IS NOT DISTINCT FROM r.sent_lsn
     AND n.write_lsn IS NOT DISTINCT FROM r.write_lsn
     AND n.flush_lsn IS NOT DISTINCT FROM r.flush_lsn
     AND n.replay_lsn IS NOT DISTINCT FROM r.replay_lsn
     AND coalesce(n.write_lag = r.write_lag, r.write_lag IS NULL)
     AND coalesce(n.flush_lag = r.flush_lag, r.flush_lag IS NULL)
     AND coalesce(n.replay_lag = r.replay_lag, r.replay_lag IS NULL)
     AND n.reply_time IS NOT DISTINCT FROM r.reply_time
     AND n.slot_name IS NOT DISTINCT FROM s.slot_name
     AND n.slot_active IS NOT DISTINCT FROM s.active
     AND n.wal_status IS NOT DISTINCT FROM s.wal_status AS ok
    FROM replroute_nodes n
    LEFT JOIN pg_stat_replication r ON r.application_name = n.application_name
    LEFT JOIN pg_replication_slots s ON s.slot_name = n.name
   WHERE n.name IN (SELECT name FROM replroute_node)) x};

sub same_as_views
{
	my ($what) = @_;
	ok($primary->poll_query_until('postgres', $same_as_views),
		"replroute_nodes matches pg_stat_replication and pg_replication_slots: $what");
}

same_as_views('two streaming standbys');
is( $primary->safe_psql('postgres',
		"SELECT string_agg(name || '=' || coalesce(host(client_addr), 'NULL'), ',' ORDER BY name) FROM replroute_nodes"),
	$primary->safe_psql('postgres',
		"SELECT string_agg(application_name || '=' || coalesce(host(client_addr), 'NULL'), ',' ORDER BY application_name) FROM pg_stat_replication"),
	'client_addr as pg_stat_replication shows it');

# --- churn: walsenders terminated and reconnecting while writes and rounds run
$primary->safe_psql('postgres', 'CREATE TABLE churn (i int)');
for my $round (1 .. 5)
{
	my $victim = $round % 2 ? 'standby1' : 'standby2';
	my $old = $primary->safe_psql('postgres',
		"SELECT pid FROM pg_stat_replication WHERE application_name = '$victim'");
	$primary->safe_psql('postgres',
		"INSERT INTO churn SELECT generate_series(1, 1000); SELECT pg_terminate_backend($old)");
	# While it is gone or coming back: the rows stay consistent with the views.
	ok($primary->poll_query_until('postgres', $same_as_views),
		"consistent while $victim reconnects (churn $round)");
	ok( $primary->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = '$victim' AND pid <> $old AND state = 'streaming'"),
		"$victim reconnected with a new walsender (churn $round)");
	same_as_views("after churn $round (a new walsender pid for $victim)");
}

# A standby that is down: no walsender in either place; its slot is inactive.
$s2->stop;
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_replication WHERE application_name = 'standby2'"),
	'standby2 gone from pg_stat_replication');
same_as_views('standby2 stopped');
is(node_field($primary, 'standby2', 'slot_active'), 'f', 'its slot shows inactive');
$s2->start;
wait_routable($primary, 2);
same_as_views('standby2 back');

# --- a registry change under load applies within one round
# The load: one session committing an insert at a time, as fast as it can.
$primary->safe_psql('postgres', q{
CREATE PROCEDURE load_loop() LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. 10000000 LOOP
    INSERT INTO churn VALUES (i);
    COMMIT;
  END LOOP;
END $$;});
my ($in, $out, $err) = ('', '', '');
my $load = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $primary->connstr('postgres'), '-c', 'CALL load_loop()' ],
	'<', \$in, '>', \$out, '2>', \$err);
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE query = 'CALL load_loop()'"),
	'the load is writing')
  or diag "load: $out $err";

sub applied_within_one_round
{
	my ($change, $check, $what) = @_;
	# The rounds counter at commit: the round after the next one started after
	# the commit and must show the change.  Polled every millisecond without
	# replroute_refresh() (which would force a registry read of its own).
	my $before = $primary->safe_psql('postgres',
		"SELECT rounds FROM replroute_worker_status()");
	$primary->safe_psql('postgres', $change);
	my $result = $primary->safe_psql(
		'postgres', qq{
DO \$\$
BEGIN
  WHILE (SELECT rounds FROM replroute_worker_status()) < $before + 2 LOOP
    PERFORM pg_sleep(0.001);
  END LOOP;
END \$\$;
SELECT $check});
	is($result, 't', "$what: shown by the round after the commit, under load");
}

applied_within_one_round(
	"SELECT replroute_add_node('extra', '127.0.0.1', 1, 10)",
	"count(*) = 1 FROM replroute_nodes WHERE name = 'extra'",
	'a node added');
applied_within_one_round(
	"SELECT replroute_drain('standby1')",
	"state = 'drained' FROM replroute_nodes WHERE name = 'standby1'",
	'a node drained');
applied_within_one_round(
	"UPDATE replroute_node SET weight = 7 WHERE name = 'standby2'",
	"weight = 7 FROM replroute_nodes WHERE name = 'standby2'",
	'a direct UPDATE of the registry');
applied_within_one_round(
	"SELECT replroute_remove_node('extra'); SELECT replroute_undrain('standby1')",
	"count(*) = 0 FROM replroute_nodes WHERE name = 'extra'",
	'a node removed');
$load->kill_kill;
$load->finish;
$primary->safe_psql('postgres',
	"UPDATE replroute_node SET weight = 100 WHERE name = 'standby2'");
wait_routable($primary, 2);

# --- a broken probe is judged at once, not at the next round
$primary->safe_psql('postgres', q{
ALTER SYSTEM SET replroute.poll_interval = '60s';
ALTER SYSTEM SET replroute.stale_after = '300s';
SELECT pg_reload_conf();});
refresh($primary);
is(node_field($primary, 'standby1', 'state'), 'healthy', 'standby1 healthy before');
ok( $primary->poll_query_until('postgres',
		"SELECT probe_state IN ('ok', 'querying') FROM replroute_nodes WHERE name = 'standby1'"),
	'standby1 probe connected');
my $last_round = $primary->safe_psql('postgres',
	"SELECT last_round_start FROM replroute_worker_status()");
my $seq = $primary->safe_psql('postgres', 'SELECT coalesce(max(seq), 0) FROM replroute_events');
my $t0 = time();
is( $s1->safe_psql('postgres',
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'replroute probe'"),
	'1', "standby1's probe connection terminated");
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM replroute_events WHERE seq > $seq AND node = 'standby1' AND to_state = 'unreachable'"),
	'standby1 became unreachable');
my $elapsed = time() - $t0;
cmp_ok($elapsed, '<', 30, "judged within ${elapsed}s of the break, not at the next round (60 s)");
is( $primary->safe_psql('postgres', qq{
SELECT min(at) < '$last_round'::timestamptz + interval '60s'
  FROM replroute_events WHERE seq > $seq AND node = 'standby1' AND to_state = 'unreachable'}),
	't', 'the verdict came before the next scheduled round');
$primary->safe_psql('postgres', q{
ALTER SYSTEM RESET replroute.poll_interval;
ALTER SYSTEM RESET replroute.stale_after;
SELECT pg_reload_conf();});
wait_routable($primary, 2);

# --- a restarting worker never blanks replroute_nodes
my $registered = $primary->safe_psql('postgres', 'SELECT count(*) FROM replroute_node');
my $worker_pid = $primary->safe_psql('postgres', 'SELECT pid FROM replroute_worker_status()');
my ($stdin, $samples_out, $samples_err) = ('', '', '');
# One session samples the view for 3 s (the postmaster restarts a worker
# after 1 s) while the worker is terminated.
my $sampler = IPC::Run::start(
	[
		'psql', '-X', '-q', '-A', '-t', '-d', $primary->connstr('postgres'), '-c', q{
CREATE TEMP TABLE samples (n int, unknown int, pid int);
DO $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  WHILE clock_timestamp() < t0 + interval '3s' LOOP
    INSERT INTO samples
      SELECT count(*), count(*) FILTER (WHERE state = 'unknown'),
             (SELECT pid FROM replroute_worker_status())
        FROM replroute_nodes WHERE name IN (SELECT name FROM replroute_node);
    PERFORM pg_sleep(0.0005);
  END LOOP;
END $$;
SELECT min(n) || ' ' || max(n) || ' ' || count(*) || ' ' ||
       count(*) FILTER (WHERE pid IS NULL) || ' ' || max(unknown) FROM samples;}
	],
	'<', \$stdin, '>', \$samples_out, '2>', \$samples_err);
usleep(200_000);
kill 'TERM', $worker_pid;
$sampler->finish;
chomp $samples_out;
my ($min, $max, $count, $without_worker, $max_unknown) = split / /, $samples_out;
note "samples: $samples_out; $samples_err";
cmp_ok($count, '>', 100, "the view was sampled $count times");
cmp_ok($without_worker, '>', 0, "some samples fell while no worker ran ($without_worker)");
is($min, $registered, "never fewer rows than registered nodes (min $min)");
is($max, $registered, "never more rows (max $max)");
isnt($primary->safe_psql('postgres', 'SELECT pid FROM replroute_worker_status()'),
	$worker_pid, 'a new worker runs');
wait_routable($primary, 2);

done_testing();
