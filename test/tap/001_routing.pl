# A primary and two streaming standbys with slots: replroute routes reads to
# the standbys only, and around a standby that crashes, lags or is drained;
# min_lsn gives read-your-writes.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;

my $primary = new_primary('primary');
$primary->backup('b1');
my $s1 = add_standby($primary, 'standby1', 'b1');
my $s2 = add_standby($primary, 'standby2', 'b1');
$primary->safe_psql('postgres',
	'CREATE TABLE t(id int primary key, v text)');
wait_routable($primary, 2);

# --- only standbys, both of them, by weight
my $c = pick_counts($primary, 400);
is_deeply([ sort keys %$c ], [ 'standby1', 'standby2' ],
	'pick_reader returns only registered standbys, and both');

$c = pick_counts($primary, 300, '', "SET replroute.policy = 'round_robin';");
ok(abs($c->{standby1} - $c->{standby2}) <= 1,
	"round robin alternates ($c->{standby1} / $c->{standby2})");

is( $primary->safe_psql(
		'postgres', q(SELECT string_agg(name || ':' || state || ':' || routable, ',' ORDER BY name)
  FROM replroute_nodes)),
	'standby1:healthy:true,standby2:healthy:true',
	'replroute_nodes shows both healthy');
is( $primary->safe_psql(
		'postgres',
		q(SELECT count(*) FROM replroute_nodes n JOIN pg_stat_replication r
  ON r.application_name = n.application_name
  WHERE n.slot_name = n.name AND n.slot_active AND n.walsender_state = 'streaming'
    AND n.replay_lsn IS NOT NULL AND n.wal_status = 'reserved')),
	'2', 'view joins walsender and slot for each standby');

# --- weights: weight 0 is never picked
$primary->safe_psql('postgres', "SELECT replroute_set_weight('standby1', 0)");
refresh($primary);
$c = pick_counts($primary, 200);
is_deeply($c, { standby2 => 200 }, 'weight 0 is never picked');
$primary->safe_psql('postgres', "SELECT replroute_set_weight('standby1', 100)");

# --- drain / undrain
$primary->safe_psql('postgres', "SELECT replroute_drain('standby2')");
refresh($primary);
is(node_field($primary, 'standby2', 'state'), 'drained', 'drained state shown');
$c = pick_counts($primary, 200);
is_deeply($c, { standby1 => 200 }, 'a drained node is never picked');
$primary->safe_psql('postgres', "SELECT replroute_undrain('standby2')");
wait_routable($primary, 2);

# --- read-your-writes: whatever min_lsn picks has the row just written
my ($stale, $null, $picked) = (0, 0, 0);
my %standby = (standby1 => $s1, standby2 => $s2);
for my $i (1 .. 40)
{
	my $lsn = $primary->safe_psql('postgres',
		"INSERT INTO t VALUES ($i, 'x'); SELECT pg_current_wal_lsn()");
	my $r = $primary->safe_psql('postgres',
		"SELECT replroute_pick_reader(min_lsn => '$lsn')");
	if ($r eq '') { $null++; next; }
	$picked++;
	$stale++
	  if $standby{$r}->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $i") ne '1';
}
is($stale, 0, "min_lsn never picks a standby without the write ($picked picked, $null NULL)");
my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
ok( $primary->poll_query_until(
		'postgres', "SELECT replroute_pick_reader(min_lsn => '$lsn') IS NOT NULL"),
	'min_lsn is met once the standbys replay it');
is( $primary->safe_psql(
		'postgres', "SELECT replroute_pick_reader(min_lsn => '$lsn'::pg_lsn + 1000000000)"),
	'', 'a min_lsn from the future picks nothing');

# --- replay paused while the primary writes: lagging, not picked; resume
$s2->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'y' FROM generate_series(1000, 1100) g");
wait_for_state($primary, 'standby2', 'lagging');
like(node_field($primary, 'standby2', 'reason'), qr/lag|behind/, 'reason says it lags');
$c = pick_counts($primary, 200);
is_deeply($c, { standby1 => 200 }, 'a lagging standby is not picked');
$s2->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
wait_for_state($primary, 'standby2', 'healthy');
wait_routable($primary, 2);

# --- immediate stop: not returned after the worker's next round
$s1->stop('immediate');
# The walsender leaves within a moment of its peer's death; a round that
# starts after that must not route there.  Allow one extra round for the
# walsender's own exit, and say so if it was needed.
refresh($primary);
my $state = node_field($primary, 'standby1', 'state');
if ($state eq 'healthy')
{
	note('walsender still present after one round; one more');
	refresh($primary);
	$state = node_field($primary, 'standby1', 'state');
}
# Its walsender is gone and its probe's connection closed: whichever the
# worker saw first decides (a failed probe takes precedence).
like($state, qr/^(disconnected|unreachable)$/,
	"stopped standby is disconnected or unreachable ($state)");
$c = pick_counts($primary, 200);
is_deeply($c, { standby2 => 200 }, 'a stopped standby is not picked');
$s1->start;
wait_routable($primary, 2);

# --- the worker killed with SIGKILL comes back (the postmaster restarts it)
my $old_pid = $primary->safe_psql('postgres', 'SELECT pid FROM replroute_worker_status()');
ok($old_pid > 0, 'worker runs');
kill 'KILL', $old_pid;
ok( $primary->poll_query_until(
		'postgres', "SELECT pid IS NOT NULL AND pid <> $old_pid FROM replroute_worker_status()"),
	'worker restarted after SIGKILL');
wait_routable($primary, 2);

$primary->stop;
$s1->stop;
$s2->stop;
done_testing();
