# 1,024 registered nodes (replroute.max_nodes = 1024): two real standbys, the
# rest registered at loopback ports where nothing listens, so their probes
# fail over and over.  Registered, removed and registered again three times:
# the worker's private memory and its memory contexts settle instead of
# growing, the shared segment keeps its size, the table holds exactly the
# registered nodes, and the two real standbys stay routable throughout.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;

my $primary = new_primary('primary', 'replroute.max_nodes' => '1024');
$primary->backup('b1');
my $s1 = add_standby($primary, 'standby1', 'b1');
my $s2 = add_standby($primary, 'standby2', 'b1');
wait_routable($primary, 2);

my $others = 1022;

sub register_others
{
	# Ports 1 .. 1022 on 127.0.0.1: privileged, nothing of ours listens there.
	$primary->safe_psql('postgres', qq{
SELECT count(replroute_add_node('far' || i, '127.0.0.1', i, 1))
  FROM generate_series(1, $others) i});
}

sub remove_others
{
	$primary->safe_psql('postgres',
		"SELECT count(replroute_remove_node(name)) FROM replroute_node WHERE name LIKE 'far%'");
}

sub worker_pid
{
	return $primary->safe_psql('postgres', 'SELECT pid FROM replroute_worker_status()');
}

# Private memory of the worker (RssAnon: not the shared segment it touches).
sub worker_rss_anon_kb
{
	my $status = slurp_file('/proc/' . worker_pid() . '/status');
	$status =~ /^RssAnon:\s+(\d+) kB/m or die "no RssAnon in /proc status";
	return $1;
}

# The worker's memory contexts, "Grand total" as it logs them.
sub worker_context_bytes
{
	my $offset = -s $primary->logfile;
	$primary->safe_psql('postgres',
		'SELECT pg_log_backend_memory_contexts(' . worker_pid() . ')');
	my $total;
	for (1 .. 100)
	{
		my $log = slurp_file($primary->logfile, $offset);
		if ($log =~ /Grand total: (\d+) bytes in/)
		{
			$total = $1;
			last;
		}
		usleep(50_000);
	}
	return $total;
}

sub shmem_bytes
{
	return $primary->safe_psql('postgres',
		"SELECT sum(allocated_size) FROM pg_shmem_allocations WHERE name LIKE 'replroute%'");
}

sub usleep { select(undef, undef, undef, $_[0] / 1_000_000); }

my $pid = worker_pid();
my $shmem = shmem_bytes();
my (@rss, @contexts);
for my $cycle (1 .. 4)
{
	register_others();
	refresh($primary);
	is( $primary->safe_psql('postgres',
			"SELECT count(*) FROM replroute_nodes WHERE name LIKE 'far%'"),
		$others, "cycle $cycle: all $others far nodes published");
	# Let every far probe fail at least twice (backoff starts at the probe
	# interval) while the real standbys keep answering.
	ok( $primary->poll_query_until('postgres',
			"SELECT count(*) = $others FROM replroute_nodes WHERE name LIKE 'far%' AND state = 'disconnected' AND reason LIKE '%probe failed%'"),
		"cycle $cycle: every far node disconnected with its probe's failure");
	is($primary->safe_psql('postgres', 'SELECT count(*) FROM replroute_readers()'),
		'2', "cycle $cycle: the two real standbys stay routable among 1,024 nodes");
	remove_others();
	refresh($primary);
	is( $primary->safe_psql('postgres', 'SELECT count(*) FROM replroute_nodes'),
		'2', "cycle $cycle: after removal only the real standbys are left");
	# What the worker keeps once the far nodes are gone: a leak stays.
	push @rss, worker_rss_anon_kb();
	push @contexts, worker_context_bytes();
}
note "worker RssAnon after each removal (kB): @rss; memory contexts (bytes): @contexts";
is(worker_pid(), $pid, 'the same worker ran all cycles (no crash, no restart)');
is(shmem_bytes(), $shmem, 'the shared segment kept its size');
# The first cycle warms up (libpq, caches); later ones must not grow.
cmp_ok($rss[3] - $rss[1], '<', 2048,
	"worker private memory does not grow across cycles ($rss[1] -> $rss[3] kB)");
ok(defined $contexts[1] && defined $contexts[3], 'memory contexts logged');
cmp_ok($contexts[3] - $contexts[1], '<', 256 * 1024,
	"worker memory contexts do not grow across cycles ($contexts[1] -> $contexts[3] bytes)");

done_testing();
