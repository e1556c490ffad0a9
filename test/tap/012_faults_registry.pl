# Registry changes and failover under a client load: drain, weight 0,
# remove and add again while clients pick; max_nodes reached; a standby
# promoted, the old primary rebuilt with pg_basebackup as a standby of the
# new one and registered again.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;
use ReplrouteFaults;

my $primary = new_faults_primary('primary', 'replroute.max_nodes' => 4);
$primary->backup('b1');
my %standby;
$standby{$_} = add_standby($primary, $_, 'b1') for qw(standby1 standby2);
wait_routable($primary, 2);

sub registry
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q(SELECT string_agg(format('%s:%s:%s:%s:%s', name, port, weight, application_name, drained), ',' ORDER BY name)
  FROM replroute_node));
}

# Runs $sql, then waits for a round that shows it; returns the primary's
# clock after that round.
sub change
{
	my ($node, $sql) = @_;
	return (split /\n/,
		$node->safe_psql('postgres',
			"$sql; SELECT replroute_refresh(); SELECT extract(epoch FROM clock_timestamp())"))[-1];
}

# --- registry changes while the load runs; a listener collects the NOTIFYs
my $mark = event_mark($primary);
my $listener = $primary->background_psql('postgres');
$listener->query_safe('LISTEN replroute');
my $load = start_load($primary, standbys => \%standby);
my @windows;    # [name, published at, undone at]
for my $i (1 .. 3)
{
	my $at = change($primary, "SELECT replroute_drain('standby1')");
	load_until($load, $at, 6);
	push @windows, [ 'standby1', $at, primary_now($primary) ];
	$primary->safe_psql('postgres', "SELECT replroute_undrain('standby1')");

	$at = change($primary, "SELECT replroute_set_weight('standby2', 0)");
	load_until($load, $at, 6);
	push @windows, [ 'standby2', $at, primary_now($primary) ];
	$primary->safe_psql('postgres', "SELECT replroute_set_weight('standby2', 100)");

	my ($host, $port) = ($standby{standby2}->host, $standby{standby2}->port);
	$at = change($primary, "SELECT replroute_remove_node('standby2')");
	load_until($load, $at, 6);
	push @windows, [ 'standby2', $at, primary_now($primary) ];
	$primary->safe_psql('postgres', "SELECT replroute_add_node('standby2', '$host', $port)");
	wait_routable($primary, 2);
}
my $r = stop_load($load);
check_load($r, 'registry changes');
my @wrong = map { picks_of($r, @$_) } @windows;
is(scalar @wrong, 0,
	'registry changes: no drained, weight-0 or removed node picked after the round that applied it');
check_events($primary, $mark, 'standby1', 'registry changes', [ ('drained', 'healthy') x 3 ]);
check_events($primary, $mark, 'standby2', 'registry changes', [ ('removed', 'healthy') x 3 ]);
# A round that began after the last change's round committed: every NOTIFY
# of those rounds has been sent.
$primary->safe_psql('postgres', 'SELECT replroute_refresh(); SELECT replroute_refresh()');
my $notified = $listener->query_safe("SELECT 'collected'");
$listener->quit;
my @notify_seq = $notified =~ /Asynchronous notification "replroute" with payload "\{"seq":(\d+)/g;
my @logged_seq = split /\n/,
  $primary->safe_psql('postgres', "SELECT seq FROM replroute_events WHERE seq > $mark ORDER BY seq");
ok(@logged_seq > 0, 'registry changes: ' . scalar(@logged_seq) . ' events logged');
is("@notify_seq", "@logged_seq",
	'registry changes: the listener got every event, once, in seq order');

# --- max_nodes reached: the add fails with 53400, nothing changes, routing
# goes on
$load = start_load($primary, standbys => \%standby);
$primary->safe_psql('postgres',
	"SELECT replroute_add_node('spare1', 'spare1.invalid'); SELECT replroute_add_node('spare2', 'spare2.invalid')");
my $before = registry($primary);
my ($ret, $out, $err) = $primary->psql('postgres',
	q(DO $$ BEGIN PERFORM replroute_add_node('spare3', 'spare3.invalid');
EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'sqlstate %', SQLSTATE; END $$));
like($err, qr/sqlstate 53400/, 'max_nodes reached: the add fails with 53400');
is(registry($primary), $before, 'max_nodes reached: the registry is unchanged');
my $at = primary_now($primary);
load_until($load, $at);
wait_routable($primary, 2);
$r = stop_load($load);
check_load($r, 'max_nodes reached');
ok(scalar(grep { $_->[0] > $at && $_->[1] =~ /^standby/ } @{ $r->{picks} }) > 0,
	'max_nodes reached: routing goes on');
$primary->safe_psql('postgres',
	"SELECT replroute_remove_node('spare1'); SELECT replroute_remove_node('spare2')");

# --- failover: standby1 promoted, standby2 follows it, the old primary
# rebuilt from a base backup of the new one and registered again
$primary->wait_for_catchup($standby{standby1});
$primary->stop('fast');
my $new = $standby{standby1};
$new->promote;
ok($new->poll_query_until('postgres', 'SELECT NOT in_recovery FROM replroute_worker_status()'),
	'promoted: its worker acts as the primary');
ok( $new->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM replroute_events WHERE node IS NULL AND from_state = 'standby' AND to_state = 'primary'"),
	'promoted: the role change is an event');
is(registry($new), registry_expected(), 'promoted: the registry came through replication');
# The new primary is no reader of itself.
$new->safe_psql('postgres',
	"SELECT replroute_remove_node('standby1'); SELECT pg_create_physical_replication_slot('standby2')");
my $connstr = $new->connstr;
$standby{standby2}->append_conf('postgresql.conf',
	"primary_conninfo = '$connstr application_name=standby2'\n");
$standby{standby2}->restart;
wait_routable($new, 1);

$load = start_load($new, standbys => { standby2 => $standby{standby2} });
$new->backup('b2');
my $rebuilt = add_standby($new, 'oldprimary', 'b2');
$standby{oldprimary} = $rebuilt;
wait_routable_node($new, 'oldprimary');
my $routable_at = primary_now($new);
load_until($load, $routable_at);
$r = stop_load($load);
check_load($r, 'failover');
ok(scalar(picks_of($r, 'oldprimary', $routable_at, 9e9)) > 0,
	'failover: the rebuilt old primary is routed to once healthy');
is(scalar(picks_of($r, 'standby1', 0, 9e9)), 0, 'failover: the new primary is never picked');

sub registry_expected
{
	my ($p1, $p2) = map { $standby{$_}->port } qw(standby1 standby2);
	return "standby1:$p1:100:standby1:f,standby2:$p2:100:standby2:f";
}

$_->stop for values %standby;
done_testing();
