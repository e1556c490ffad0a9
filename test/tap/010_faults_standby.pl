# Faults of a standby, each under a client load (ReplrouteFaults): an
# immediate stop, replay paused while the primary writes, a lost slot, a
# hung standby (SIGSTOP) while the primary writes.  Each
# asserts that no call fails and that once a round has published the node
# unroutable, no call returns it until the test repairs the fault.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;
use ReplrouteFaults;

# A small byte bound, so that a paused standby lags after a few hundred kB.
my $primary = new_faults_primary('primary', 'replroute.max_lag_bytes' => '64kB');
$primary->safe_psql('postgres', 'CREATE TABLE t(id int, v text)');
$primary->backup('b1');
my %standby;
$standby{$_} = add_standby($primary, $_, 'b1') for qw(standby1 standby2 standby3);
wait_routable($primary, 3);

# --- immediate stop of a standby
my $mark = event_mark($primary);
my $load = start_load($primary, standbys => \%standby);
$standby{standby1}->stop('immediate');
my ($ok, $state, $reason, $bad_at) = wait_unroutable($primary, 'standby1');
load_until($load, $bad_at);
my $repair_at = primary_now($primary);
my $r = stop_load($load);
check_load($r, 'immediate stop', bad => 'standby1', from => $bad_at, to => $repair_at);
$standby{standby1}->start;
wait_routable_node($primary, 'standby1');
check_events($primary, $mark, 'standby1', 'immediate stop', [ 'disconnected', 'healthy' ],
	published_by => $bad_at);

# --- replay paused while the primary writes, then resumed
$mark = event_mark($primary);
$load = start_load($primary, standbys => \%standby);
$standby{standby2}->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$primary->safe_psql('postgres',
	"INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g");
($ok, $state, $reason, $bad_at) = wait_unroutable($primary, 'standby2', 'lagging');
load_until($load, $bad_at);
$repair_at = primary_now($primary);
$standby{standby2}->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
wait_routable_node($primary, 'standby2');
$r = stop_load($load);
check_events($primary, $mark, 'standby2', 'replay paused', [ 'lagging', 'healthy' ],
	published_by => $bad_at);
check_load($r, 'replay paused', bad => 'standby2', from => $bad_at, to => $repair_at);
ok(scalar(picks_of($r, 'standby2', $repair_at, 9e9)) > 0
	  || scalar(picks_of($r, 'standby1', $repair_at, 9e9)) > 0,
	'replay paused: picks go on after the resume');

# --- a slot lost: the standby stops, the primary removes the WAL it needs
$primary->safe_psql('postgres',
	"ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'; SELECT pg_reload_conf()");
$mark = event_mark($primary);
$load = start_load($primary, standbys => \%standby);
$standby{standby3}->stop('fast');
($ok, $state, $reason, $bad_at) = wait_unroutable($primary, 'standby3');
my $lost = 0;
for my $i (1 .. 30)
{
	$lost = $primary->safe_psql(
		'postgres', qq(
INSERT INTO t SELECT g, repeat('y', 100) FROM generate_series(1, 2000) g;
SELECT pg_switch_wal();
CHECKPOINT;
SELECT wal_status = 'lost' FROM pg_replication_slots WHERE slot_name = 'standby3'));
	$lost = (split /\n/, $lost)[-1];
	last if $lost eq 't';
}
is($lost, 't', 'slot standby3 lost');
wait_unroutable($primary, 'standby3', 'slot_lost');
load_until($load, primary_now($primary));
$repair_at = primary_now($primary);
$r = stop_load($load);
check_load($r, 'slot lost', bad => 'standby3', from => $bad_at, to => $repair_at);
is(node_field($primary, 'standby3', 'state || routable'), 'slot_lostfalse',
	'a lost slot stays slot_lost and unroutable');
$primary->safe_psql('postgres',
	"ALTER SYSTEM RESET max_slot_wal_keep_size; SELECT pg_reload_conf()");
$primary->safe_psql('postgres',
	"SELECT replroute_remove_node('standby3'); SELECT pg_drop_replication_slot('standby3')");
wait_routable($primary, 2);
check_events($primary, $mark, 'standby3', 'slot lost', [ 'disconnected', 'slot_lost', 'removed' ],
	published_by => $bad_at);

# --- a hung standby: every process of it stopped (SIGSTOP), the primary
# writing.  Its walsender looks alive until wal_sender_timeout; what the
# worker sees is replay that no longer moves while the primary's WAL does
# (client-side probes, once there, see it as unreachable as well).
{
	my $hung = $standby{standby1};
	my $postmaster = (split /\n/, slurp_file($hung->data_dir . '/postmaster.pid'))[0];
	my @pids = ($postmaster, children_of($postmaster));
	$mark = event_mark($primary);
	$load = start_load($primary, standbys => \%standby);
	kill 'STOP', @pids;
	$primary->safe_psql('postgres',
		"INSERT INTO t SELECT g, repeat('z', 100) FROM generate_series(1, 5000) g");
	($ok, $state, $reason, $bad_at) = wait_unroutable($primary, 'standby1');
	load_until($load, $bad_at);
	$repair_at = primary_now($primary);
	kill 'CONT', @pids;
	wait_routable_node($primary, 'standby1');
	$r = stop_load($load);
	check_load($r, 'hung standby', bad => 'standby1', from => $bad_at, to => $repair_at);
	check_events($primary, $mark, 'standby1', 'hung standby', [ $state, 'healthy' ],
		published_by => $bad_at);
}

$standby{$_}->stop for qw(standby1 standby2);
$primary->stop;

sub children_of
{
	my ($parent) = @_;
	my @children;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open my $fh, '<', $stat or next;
		my $line = <$fh> // next;
		# pid (comm) state ppid ...; comm may hold spaces and parentheses
		push @children, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $parent;
	}
	return @children;
}
done_testing();
