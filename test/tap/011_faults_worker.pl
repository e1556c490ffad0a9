# Faults of the primary's side, under a client load: the worker killed with
# SIGKILL (the postmaster restarts the whole server), the worker frozen with
# SIGSTOP (its data goes stale), the primary restarted.
#
# "Nothing is routed before the first round" needs a first round that has
# not happened yet when the test looks.  A prepared transaction holding an
# ACCESS EXCLUSIVE lock on the registry survives a crash and a restart, and
# the worker's first round waits for it: until COMMIT PREPARED, the table is
# empty and must route nothing.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;
use ReplrouteFaults;

my $STALE_AFTER = 1;
my $primary = new_faults_primary('primary', 'replroute.stale_after' => "${STALE_AFTER}s");
$primary->backup('b1');
my %standby;
$standby{$_} = add_standby($primary, $_, 'b1') for qw(standby1 standby2);
wait_routable($primary, 2);

sub hold_registry
{
	$primary->safe_psql('postgres', q(BEGIN;
LOCK TABLE replroute_node IN ACCESS EXCLUSIVE MODE;
PREPARE TRANSACTION 'rr_hold_registry'));
}

# Before the first round: nothing routed, each fallback applies, no error
# but the one fallback = error asks for.
sub check_before_first_round
{
	my ($label) = @_;
	is( $primary->safe_psql('postgres',
			'SELECT rounds FROM replroute_worker_status()'),
		'0', "$label: no round published yet");
	is($primary->safe_psql('postgres', 'SELECT replroute_pick_reader() IS NULL'),
		't', "$label: fallback none returns NULL");
	is( $primary->safe_psql('postgres',
			"SET replroute.fallback = 'primary'; SELECT replroute_pick_reader()"),
		'primary', "$label: fallback primary returns the primary's name");
	my ($ret, $out, $err) = $primary->psql('postgres',
		"SET replroute.fallback = 'error'; SELECT replroute_pick_reader()");
	like($err, qr/ERROR:.*no standby/, "$label: fallback error says why");
	is($primary->safe_psql('postgres', 'SELECT count(*) FROM replroute_readers()'),
		'0', "$label: replroute_readers is empty");
	is( $primary->safe_psql('postgres',
			'SELECT count(*) FROM replroute_nodes WHERE routable'),
		'0', "$label: the view shows nothing routable");
}

# Picks made while no round had been published (rounds read after the pick
# is 0) must all be NULL.
sub check_no_route_without_round
{
	my ($r, $label) = @_;
	my @early = grep { $_->[2] eq '0' } @{ $r->{picks} };
	my @wrong = grep { $_->[1] ne '(null)' } @early;
	is(scalar @wrong, 0,
		"$label: nothing routed before the first round (" . scalar(@early) . ' picks then)');
}

# --- the worker killed with SIGKILL: the server restarts, clients reconnect
my $load = start_load($primary, standbys => \%standby);
my $pid = $primary->safe_psql('postgres', 'SELECT pid FROM replroute_worker_status()');
hold_registry();
kill 'KILL', $pid;
ok($primary->poll_query_until('postgres', 'SELECT pid IS NOT NULL AND pid <> ' . $pid
			. ' FROM replroute_worker_status()'),
	'SIGKILL: the server is back with a new worker');
ok($primary->wait_for_log(qr/terminated by signal 9/), 'SIGKILL: the postmaster saw the kill');
check_before_first_round('SIGKILL');
load_until($load, primary_now($primary));
$primary->safe_psql('postgres', "COMMIT PREPARED 'rr_hold_registry'");
wait_routable($primary, 2);
my $routable_at = primary_now($primary);
load_until($load, $routable_at);
my $r = stop_load($load);
check_load($r, 'SIGKILL');
ok(scalar(grep { $_->[0] > $routable_at && $_->[1] ne '(null)' } @{ $r->{picks} }) > 0,
	'SIGKILL: the clients reconnected and route again');
# The crash reset shared memory, the log with it: the new worker's start,
# then each node appearing, in order.
is( $primary->safe_psql('postgres',
		"SELECT to_state FROM replroute_events WHERE node IS NULL ORDER BY seq LIMIT 1"),
	'worker_started', 'SIGKILL: the new worker logs its start');
check_events($primary, 0, $_, 'SIGKILL', ['healthy']) for qw(standby1 standby2);
check_no_route_without_round($r, 'SIGKILL');

# --- the worker frozen with SIGSTOP: stale data routes nothing; SIGCONT
my $mark = event_mark($primary);
$load = start_load($primary, standbys => \%standby);
$pid = $primary->safe_psql('postgres', 'SELECT pid FROM replroute_worker_status()');
kill 'STOP', $pid;
# Its last publication is before this moment; a pick later than this plus
# stale_after sees older data.
my $stopped_at = primary_now($primary);
ok($primary->poll_query_until('postgres', 'SELECT replroute_pick_reader() IS NULL'),
	'SIGSTOP: stale data routes nothing');
is( $primary->safe_psql('postgres',
		"SET replroute.fallback = 'primary'; SELECT replroute_pick_reader()"),
	'primary', 'SIGSTOP: fallback primary applies');
my ($ret, $out, $err) = $primary->psql('postgres',
	"SET replroute.fallback = 'error'; SELECT replroute_pick_reader()");
like($err, qr/ERROR:.*(stale|old)/i, 'SIGSTOP: fallback error says the data is stale');
load_until($load, $stopped_at + $STALE_AFTER + 0.001);
my $cont_at = primary_now($primary);
kill 'CONT', $pid;
wait_routable($primary, 2);
load_until($load, primary_now($primary));
$r = stop_load($load);
check_load($r, 'SIGSTOP');
my @stale = grep { $_->[0] > $stopped_at + $STALE_AFTER + 0.001 && $_->[0] < $cont_at }
  @{ $r->{picks} };
my @routed = grep { $_->[1] ne '(null)' } @stale;
ok(@stale > 0, 'SIGSTOP: the load picked while the data was stale (' . scalar(@stale) . ')');
is(scalar @routed, 0, 'SIGSTOP: no pick routed on stale data');
ok(scalar(grep { $_->[0] > $cont_at && $_->[1] ne '(null)' } @{ $r->{picks} }) > 0,
	'SIGCONT: routes again');
# Stale data is the readers' verdict; the frozen worker logged nothing, and
# the thawed one has no change to log.
check_events($primary, $mark, $_, 'SIGSTOP', []) for qw(standby1 standby2);

# --- the primary restarted (fast): clients reconnect; nothing routed
# before the first round
$load = start_load($primary, standbys => \%standby);
hold_registry();
$primary->restart;
check_before_first_round('restart');
load_until($load, primary_now($primary));
$primary->safe_psql('postgres', "COMMIT PREPARED 'rr_hold_registry'");
wait_routable($primary, 2);
$routable_at = primary_now($primary);
load_until($load, $routable_at);
$r = stop_load($load);
check_load($r, 'primary restart');
ok(scalar(grep { $_->[0] > $routable_at && $_->[1] ne '(null)' } @{ $r->{picks} }) > 0,
	'restart: the clients reconnected and route again');
check_events($primary, 0, $_, 'primary restart', ['healthy']) for qw(standby1 standby2);
check_no_route_without_round($r, 'primary restart');

my $log = slurp_file($primary->logfile);
unlike($log, qr/PANIC|terminated by signal (?!9)/, 'no crash but the SIGKILL we sent');

$standby{$_}->stop for keys %standby;
$primary->stop;
done_testing();
