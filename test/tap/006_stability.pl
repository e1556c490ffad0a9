# Stability on real servers: a standby that comes back is held (state
# recovering) for replroute.recovery_hold before it is routed to again, and a
# standby past the lag bound leaves lagging only below the leave bound.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;

# seconds: long enough that polling every 0.1 s, and the checks made while
# it lasts, fit in it on a loaded machine
my $hold = 5;
my $primary = new_primary(
	'primary',
	'replroute.recovery_hold' => "${hold}s",
	'replroute.max_lag_bytes' => '1MB',
	'replroute.max_replay_lag' => '-1',
	'replroute.lag_leave_fraction' => '0.5');
$primary->backup('b1');
my $s1 = add_standby($primary, 'standby1', 'b1');
my $s2 = add_standby($primary, 'standby2', 'b1');
# Never routable before: no hold for new standbys.
wait_routable($primary, 2);

sub epoch_of
{
	my ($name, $column) = @_;
	return node_field($primary, $name, "extract(epoch FROM $column)");
}

# Waits for $name to be held, checks that nothing routes to it meanwhile and
# that it is routed to again only $hold s after it became healthy.
sub check_hold
{
	my ($name, $from) = @_;
	wait_for_state($primary, $name, 'recovering');
	# One query, so that every check sees the hold still running.
	my ($state, $routable, $back, $picked, $listed, $reason) = split /\|/,
	  $primary->safe_psql(
		'postgres', qq(
SELECT state, routable, extract(epoch FROM state_since),
       (SELECT count(*) FROM generate_series(1, 200) WHERE replroute_pick_reader() = '$name'),
       (SELECT count(*) FROM replroute_readers() WHERE name = '$name'),
       reason
  FROM replroute_nodes WHERE name = '$name'));
	is($state, 'recovering', "$name: still held when checked");
	like($reason, qr/^back from $from: healthy for .* of ${hold} s; streaming/,
		"$name: the reason says how long it has been healthy");
	is($routable, 'f', "$name: not routable while held");
	is($picked, '0', "$name: never picked while held");
	is($listed, '0', "$name: not listed by replroute_readers() while held");

	ok( $primary->poll_query_until('postgres',
			"SELECT routable FROM replroute_nodes WHERE name = '$name'"),
		"$name: routable again after the hold");
	is(node_field($primary, $name, 'state'), 'healthy', "$name: healthy");
	my $since = epoch_of($name, 'state_since');
	cmp_ok($since - $back, '>=', $hold,
		"$name: routed to only after ${hold} s healthy (held " . sprintf('%.3f', $since - $back) . ' s)');
}

# --- a standby restarted: disconnected, then held, then routed to
$s1->stop;
wait_for_state($primary, 'standby1', 'disconnected');
$s1->start;
# Streaming again before its probe, still backing off, has reconnected: the
# last state before the hold may be the probe's unreachable.
check_hold('standby1', '(disconnected|catchup|unreachable)');

# --- replay paused: lagging; within the enter bound but above the leave
# bound it stays lagging; resumed, it is held, then routed to
$s2->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$primary->safe_psql('postgres',
	"CREATE TABLE filler AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 30000) g");
wait_for_state($primary, 'standby2', 'lagging');
like(node_field($primary, 'standby2', 'reason'), qr/behind > 1 MB$/,
	'lagging: the reason names the enter bound');

# Raise the enter bound above the frozen lag: a fresh node would be healthy
# at this lag, but a lagging one must come down to half of the bound.
my $lag = node_field($primary, 'standby2', 'lag_bytes');
my $enter_kb = int($lag * 1.5 / 1024) + 1;
$primary->safe_psql('postgres', "ALTER SYSTEM SET replroute.max_lag_bytes = '${enter_kb}kB'");
$primary->reload;
ok( $primary->poll_query_until('postgres',
		"SELECT reason LIKE '%leave bound' FROM replroute_nodes WHERE name = 'standby2'"),
	'the worker applies the new bound');
refresh($primary);
is(node_field($primary, 'standby2', 'state'), 'lagging',
	'below the enter bound but above the leave bound: still lagging');
cmp_ok(node_field($primary, 'standby2', 'lag_bytes'), '<=', $enter_kb * 1024,
	'its lag is within the enter bound');
like(node_field($primary, 'standby2', 'reason'), qr/behind > .* leave bound$/,
	'the reason names the leave bound');
is(pick_counts($primary, 100)->{standby2}, undef, 'a lagging standby is never picked');

$s2->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
check_hold('standby2', 'lagging');

# The event log tells the same story, so a client that listens can tell a
# held standby from a healthy one.
for my $case (['standby1', qr/\bdisconnected\b.*\brecovering healthy$/],
	['standby2', qr/\bhealthy lagging recovering healthy$/])
{
	my ($name, $expected) = @$case;
	my $path = $primary->safe_psql('postgres',
		"SELECT string_agg(to_state, ' ' ORDER BY seq) FROM replroute_events WHERE node = '$name'");
	like($path, $expected, "$name: events $path");
}

$primary->safe_psql('postgres', 'ALTER SYSTEM RESET replroute.max_lag_bytes');
$primary->reload;
$s1->stop;
$s2->stop;
$primary->stop;
done_testing();
