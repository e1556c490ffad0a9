# Client-side probes: a hung standby (every process SIGSTOPped) becomes
# unreachable although its walsender lingers, while the other standby stays
# routable and rounds keep coming; a node that answers but is a primary is
# not_in_recovery; a port nobody listens on is disconnected with the probe's
# failure as reason;
# replroute.probe = off goes back to walsender data alone.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;

# The default timeout: the reasons and the hang test are about it.
my $primary = new_primary('primary', 'replroute.probe_timeout' => '1s');
$primary->backup('b1');
my $s1 = add_standby($primary, 'standby1', 'b1');
my $s2 = add_standby($primary, 'standby2', 'b1');
wait_routable($primary, 2);

ok( $primary->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM replroute_nodes WHERE probe_state IN ('ok', 'querying') AND probe_at IS NOT NULL AND probe_replay_lsn IS NOT NULL"),
	'both standbys answer their probes');
is( $s1->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'replroute probe'"),
	'1', 'one probe connection per standby');

# Every process of a data directory: the postmaster and its children.
sub all_pids
{
	my ($node) = @_;
	my $pm = (split /\n/, slurp_file($node->data_dir . "/postmaster.pid"))[0];
	my @children = split /\s+/, `pgrep -P $pm`;
	return ($pm, grep { /^\d+$/ } @children);
}

sub rounds
{
	return $primary->safe_psql('postgres', 'SELECT rounds FROM replroute_worker_status()');
}

# --- hang: SIGSTOP every process of standby1
my @frozen = all_pids($s1);
ok(@frozen > 3, 'standby1 has a postmaster and children (' . scalar(@frozen) . ' processes)');
kill 'STOP', @frozen;
my $before = rounds();
# The worker is not held up by the hung probe: refresh() completes at once.
refresh($primary);
refresh($primary);
cmp_ok(rounds(), '>', $before, 'rounds advance while the probe hangs');
wait_for_state($primary, 'standby1', 'unreachable');
like(node_field($primary, 'standby1', 'reason'), qr/probe timed out after 1 s/,
	'the reason says the probe timed out');
is(node_field($primary, 'standby1', 'walsender_state'), 'streaming',
	'its walsender still looks alive (wal_sender_timeout has not passed)');
my $counts = pick_counts($primary, 200);
is_deeply($counts, { standby2 => 200 }, 'only standby2 is picked while standby1 hangs');
is(node_field($primary, 'standby2', 'state'), 'healthy', 'standby2 stays healthy');
$before = rounds();
refresh($primary);
cmp_ok(rounds(), '>', $before, 'rounds keep coming while standby1 is unreachable');

kill 'CONT', @frozen;
wait_for_state($primary, 'standby1', 'healthy');
wait_routable($primary, 2);

# --- a node whose port answers but is a primary: never routed to
my $phost = $primary->host;
my $pport = $primary->port;
$primary->safe_psql('postgres',
	"SELECT replroute_add_node('itself', '$phost', $pport, application_name => 'itself')");
wait_for_state($primary, 'itself', 'not_in_recovery');
$counts = pick_counts($primary, 200);
ok(!exists $counts->{itself}, 'a primary registered as a node is never picked');

# --- a port nobody listens on
my $free = PostgreSQL::Test::Cluster::get_free_port();
$primary->safe_psql('postgres',
	"SELECT replroute_add_node('ghost', '$phost', $free)");
# No walsender either: disconnected, with the probe's failure as the reason.
ok( $primary->poll_query_until('postgres',
		"SELECT reason LIKE '%probe failed:%' FROM replroute_nodes WHERE name = 'ghost'"),
	'the probe of a port nobody listens on fails');
is(node_field($primary, 'ghost', 'state'), 'disconnected', 'ghost is disconnected');
like(node_field($primary, 'ghost', 'reason'),
	qr/^no walsender .*; probe failed: .*(No such file|refused)/i, 'the reason carries libpq\'s message');
unlike(node_field($primary, 'ghost', 'reason'), qr/\n/, 'one line');

# --- probes off: walsender data alone
$primary->append_conf('postgresql.conf', "replroute.probe = off\n");
$primary->reload;
wait_for_state($primary, 'itself', 'disconnected');
wait_for_state($primary, 'ghost', 'disconnected');
is($primary->safe_psql('postgres',
		"SELECT string_agg(DISTINCT probe_state, ',') FROM replroute_nodes WHERE name LIKE 'standby%'"),
	'off', 'probe_state is off');
wait_routable($primary, 2);
ok( $s1->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'replroute probe'"),
	'the probe connection is closed');

# --- and on again
$primary->append_conf('postgresql.conf', "replroute.probe = on\n");
$primary->reload;
wait_for_state($primary, 'itself', 'not_in_recovery');
wait_routable($primary, 2);

$s1->stop;
$s2->stop;
$primary->stop;
done_testing();
