# 32 clients call pick_reader and replroute_readers while the worker
# publishes every 10 ms and the standbys flap (drained and undrained, weights
# changed, in a loop): no call fails, and every answer is NULL or the name of
# a registered node.  The two names differ widely in length (1 and 63
# bytes), so that a torn copy of either shows as a name that is neither.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;
use ReplrouteFaults;

my $short = 'a';
my $long = 'long_' . ('x' x 57) . 'z';
is(length $long, 63, 'the long name has the longest length allowed');

my $primary = new_faults_primary(
	'primary',
	'replroute.poll_interval' => '10ms',
	max_connections => 60);
$primary->backup('b1');
my %standby = map { $_ => add_standby($primary, $_, 'b1') } ($short, $long);
wait_routable($primary, 2);

# The flapping, in a child: bounded by count and by the stop file.
my $stop = "$PostgreSQL::Test::Utils::tmp_check/flap_stop";
my $flap_sql = join('', map {
		"SELECT replroute_drain('$short'); SELECT replroute_set_weight('$long', " . ($_ % 3) * 50 . ");\n"
		  . "SELECT replroute_undrain('$short'); SELECT replroute_drain('$long');\n"
		  . "SELECT replroute_undrain('$long'); SELECT replroute_set_weight('$short', " . (($_ + 1) % 3) * 50 . ");\n"
	} 1 .. 50);
my $flapper = fork();
die "fork: $!" unless defined $flapper;
if ($flapper == 0)
{
	open STDOUT, '>', '/dev/null';
	open STDERR, '>', '/dev/null';
	my $conn = $primary->connstr('postgres');
	for (1 .. 200)
	{
		last if -e $stop;
		IPC::Run::run([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $conn ],
			'<', \$flap_sql, '>', '/dev/null', '2>', '/dev/null', IPC::Run::timeout(60));
	}
	POSIX::_exit(0);
}

# Each transaction checks both answers in the server: anything but NULL or
# a registered name fails a cast, which fails the client.  (Not 1 / 0: the
# planner folds constants, CASE or not.)
my $script = "$PostgreSQL::Test::Utils::tmp_check/pick.sql";
open my $fh, '>', $script or die;
print $fh qq(SELECT CASE WHEN r IS NULL OR r IN ('$short', '$long') THEN 0
  ELSE ('torn answer: ' || r)::int END
  FROM (SELECT replroute_pick_reader() AS r) s;
SELECT CASE WHEN coalesce(bool_and(name IN ('$short', '$long')
    AND host IS NOT NULL AND port > 0), true) THEN 0
  ELSE ('torn reader: ' || string_agg(name, ','))::int END
  FROM replroute_readers();
);
close $fh;
my ($out, $err) = ('', '');
my $ok = IPC::Run::run(
	[
		'pgbench', '-n', '-c', '32', '-j', '2', '-T', '10', '-M', 'prepared',
		'-f', $script, $primary->connstr('postgres')
	],
	'<', \undef, '>', \$out, '2>', \$err,
	IPC::Run::timeout(120));
ok($ok, 'pgbench with 32 clients finished without a failed client')
  or diag($err);
my ($done) = $out =~ /number of transactions actually processed: (\d+)/;
ok(defined $done && $done > 0, 'pgbench processed ' . ($done // 'no') . ' transactions');
like($out, qr/number of failed transactions: 0 /, 'no transaction failed')
  if $out =~ /number of failed transactions/;
unlike($err, qr/aborted|error/i, 'no client aborted, no error');

# Once more in one query, to see the answers themselves while it flaps.
my %counts;
for (1 .. 5)
{
	my $c = pick_counts($primary, 20000);
	$counts{$_} += $c->{$_} for keys %$c;
}
my $counts = \%counts;
my @odd = grep { $_ ne $short && $_ ne $long && $_ ne '(null)' } keys %$counts;
is(scalar @odd, 0, 'every answer is NULL or a registered name ('
	  . join(', ', map { length($_) . " bytes: $counts->{$_}" } sort keys %$counts) . ')');

open my $sf, '>', $stop or die;
close $sf;
waitpid($flapper, 0);
my $rounds = $primary->safe_psql('postgres', 'SELECT rounds FROM replroute_worker_status()');
ok($rounds > 100, "the worker published $rounds rounds meanwhile");
unlike(slurp_file($primary->logfile), qr/PANIC|terminated by signal/, 'no crash');

$_->stop for values %standby;
$primary->stop;
done_testing();
