# The worker's life: no preload, no extension yet, stale data when the worker
# stops answering.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;

# --- without shared_preload_libraries: CREATE EXTENSION works, calls explain
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION replroute');
for my $call ('SELECT replroute_pick_reader()',
	'SELECT * FROM replroute_readers()',
	'SELECT * FROM replroute_nodes',
	'SELECT * FROM replroute_worker_status()',
	'SELECT replroute_refresh()')
{
	my ($ret, $out, $err) = $plain->psql('postgres', $call);
	isnt($ret, 0, "without preload: $call fails");
	like($err, qr/shared_preload_libraries/, "without preload: $call says how to preload");
}
$plain->stop;

# --- preloaded, but the extension is created later: the worker waits, then serves
my $node = PostgreSQL::Test::Cluster->new('late');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q(
shared_preload_libraries = 'replroute'
replroute.database = 'postgres'
replroute.stale_after = '1s'
));
$node->start;
ok($node->wait_for_log(qr/replroute.*(waiting|not (yet )?created|CREATE EXTENSION)/i),
	'worker logs that it waits for the extension');
$node->safe_psql('postgres', 'CREATE EXTENSION replroute');
ok( $node->poll_query_until('postgres',
		'SELECT rounds > 0 AND NOT in_recovery FROM replroute_worker_status()'),
	'worker serves once the extension exists');
my $log = slurp_file($node->logfile);
my @waits = ($log =~ /replroute.*(?:waiting|not (?:yet )?created|CREATE EXTENSION)/gi);
ok(@waits <= 2, 'the wait is logged once, not every round (' . scalar(@waits) . ')');

# --- a standby, so that something is routable, then the worker frozen
$node->backup('b1');
my $s1 = add_standby($node, 'standby1', 'b1');
wait_routable($node, 1);
my $pid = $node->safe_psql('postgres', 'SELECT pid FROM replroute_worker_status()');
kill 'STOP', $pid;
ok( $node->poll_query_until('postgres', 'SELECT replroute_pick_reader() IS NULL'),
	'stale data routes nothing (worker stopped)');
is( $node->safe_psql('postgres',
		"SET replroute.fallback = 'primary'; SET replroute.primary_name = 'main'; SELECT replroute_pick_reader()"),
	'main', 'stale data: fallback primary');
my ($ret, $out, $err) = $node->psql('postgres',
	"SET replroute.fallback = 'error'; SELECT replroute_pick_reader()");
like($err, qr/stale|old/i, 'stale data: fallback error says why');
is($node->safe_psql('postgres', "SELECT state FROM replroute_nodes WHERE name = 'standby1'"),
	'unknown', 'view shows unknown while data is stale');
kill 'CONT', $pid;
wait_routable($node, 1);

$s1->stop;
$node->stop;
done_testing();
