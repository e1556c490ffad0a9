# Roles: a standby's worker is harmless and routes nothing; after promotion it
# acts as the primary within a round, with the registry it got through
# replication.
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
wait_routable($primary, 2);
$primary->wait_for_catchup($s1);

# On a standby the worker runs, says what it is, and routes nothing.
ok( $s1->poll_query_until('postgres',
		'SELECT in_recovery AND rounds > 0 FROM replroute_worker_status()'),
	'worker runs on the standby and knows it is one');
is($s1->safe_psql('postgres', 'SELECT replroute_pick_reader()'), '',
	'a standby routes nothing');
is( $s1->safe_psql('postgres',
		"SET replroute.fallback = 'primary'; SELECT replroute_pick_reader()"),
	'primary', 'fallback primary names the primary');
is( $s1->safe_psql('postgres', 'SELECT count(*) FROM replroute_nodes WHERE routable'),
	'0', 'nothing routable in the standby view');
is($s1->safe_psql('postgres', 'SELECT count(*) FROM replroute_node'),
	'2', 'registry replicated to the standby');

# Promote standby1; point standby2 at it through a new slot.
$primary->stop;
$s1->promote;
ok( $s1->poll_query_until('postgres',
		'SELECT NOT in_recovery FROM replroute_worker_status()'),
	'promoted worker acts as primary');
is( $s1->safe_psql('postgres',
		"SELECT count(*) FROM replroute_events
		  WHERE node IS NULL AND from_state = 'standby' AND to_state = 'primary'"),
	'1', 'the promotion is an event of the worker');
$s1->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('standby2')");
$s1->safe_psql('postgres', "SELECT replroute_drain('standby1')");
my $connstr = $s1->connstr;
$s2->append_conf('postgresql.conf',
	"primary_conninfo = '$connstr application_name=standby2'\n");
$s2->restart;
wait_for_state($s1, 'standby2', 'healthy');
my $c = pick_counts($s1, 100);
is_deeply($c, { standby2 => 100 }, 'new primary routes to the remaining standby');

$s1->stop;
$s2->stop;
done_testing();
