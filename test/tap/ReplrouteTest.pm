# Helpers shared by replroute's TAP suites: a primary with the library
# preloaded, standbys that stream through a slot under a known
# application_name, and short ways to ask the routing functions.
package ReplrouteTest;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(new_primary add_standby pick_counts node_field wait_for_state
  wait_routable refresh);

# A primary with replroute preloaded and created in database postgres.
# %conf: extra settings, name => value; initdb_extra => [initdb options].
sub new_primary
{
	my ($name, %conf) = @_;
	my $initdb_extra = delete $conf{initdb_extra} // [];
	# Generous, so that a loaded machine never makes a healthy standby
	# unreachable in a suite about something else; 005_probes sets its own.
	$conf{'replroute.probe_timeout'} //= '10s';
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 1, extra => $initdb_extra);
	my $extra = join('', map { "$_ = '$conf{$_}'\n" } sort keys %conf);
	$node->append_conf(
		'postgresql.conf', qq(
shared_preload_libraries = 'replroute'
replroute.database = 'postgres'
# The framework turns this off; a worker killed with SIGKILL must be
# survivable, and the postmaster treats that as a crash of a shmem user.
restart_after_crash = on
wal_receiver_status_interval = 1s
max_wal_senders = 10
max_replication_slots = 10
$extra));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION replroute');
	return $node;
}

# A streaming standby of $primary from backup $backup, with a physical slot
# and application_name both equal to $name, registered with replroute.
sub add_standby
{
	my ($primary, $name, $backup, %opt) = @_;
	$primary->safe_psql('postgres',
		"SELECT pg_create_physical_replication_slot('$name')");
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init_from_backup($primary, $backup, has_streaming => 1);
	my $connstr = $primary->connstr;
	$node->append_conf(
		'postgresql.conf', qq(
primary_conninfo = '$connstr application_name=$name'
primary_slot_name = '$name'
));
	$node->start;
	my $host = $node->host;
	my $port = $node->port;
	my $weight = $opt{weight} // 100;
	$primary->safe_psql('postgres',
		"SELECT replroute_add_node('$name', '$host', $port, $weight)")
	  unless $opt{unregistered};
	return $node;
}

# Wake the worker and wait for a round begun after the call.
sub refresh
{
	my ($node) = @_;
	is($node->safe_psql('postgres', 'SELECT replroute_refresh()'),
		't', 'worker published a fresh round');
}

# Call replroute_pick_reader($args) $n times in one query; returns a hash
# name => count ('(null)' for NULL).
sub pick_counts
{
	my ($node, $n, $args, $setup) = @_;
	$args //= '';
	$setup //= '';
	my $out = $node->safe_psql('postgres', qq($setup
SELECT coalesce(r, '(null)'), count(*)
FROM (SELECT replroute_pick_reader($args) AS r FROM generate_series(1, $n)) s
GROUP BY 1 ORDER BY 1));
	my %counts;
	for my $line (split /\n/, $out)
	{
		my ($name, $count) = split /\|/, $line;
		$counts{$name} = $count;
	}
	return \%counts;
}

sub node_field
{
	my ($node, $name, $field) = @_;
	return $node->safe_psql('postgres',
		"SELECT $field FROM replroute_nodes WHERE name = '$name'");
}

# Poll (bounded by the framework's timeout) until node $name has $state.
sub wait_for_state
{
	my ($node, $name, $state) = @_;
	my $ok = $node->poll_query_until('postgres',
		"SELECT state = '$state' FROM replroute_nodes WHERE name = '$name'");
	my $now = node_field($node, $name, "state || ': ' || reason");
	ok($ok, "$name reaches state $state (now $now)");
	return $ok;
}

sub wait_routable
{
	my ($node, $count) = @_;
	ok( $node->poll_query_until(
			'postgres', "SELECT count(*) = $count FROM replroute_readers()"),
		"$count standbys routable");
}

1;
