# The event log: the worker's start, a node's changes chained from -> to
# across rounds, the NOTIFY replroute payload, and a new start after the
# worker is killed (which restarts the whole server: shared memory is new).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;

my $primary = new_primary('primary');
$primary->backup('b1');
my $s1 = add_standby($primary, 'standby1', 'b1');
wait_for_state($primary, 'standby1', 'healthy');

my $starts = $primary->safe_psql('postgres',
	"SELECT count(*) || ' ' || bool_and(node IS NULL AND from_state IS NULL)
	   FROM replroute_events WHERE to_state = 'worker_started'");
is($starts, '1 true', 'one worker_started event, without node or from_state');
my $pid = $primary->safe_psql('postgres', 'SELECT pid FROM replroute_worker_status()');
like( $primary->safe_psql('postgres',
		"SELECT reason FROM replroute_events WHERE to_state = 'worker_started'"),
	qr/^worker pid $pid started on a primary$/, 'worker_started names the worker');

# --- NOTIFY: a listener hears of a drain at once, as JSON
my $listener = $primary->background_psql('postgres');
$listener->query_safe('LISTEN replroute');
my $seq_before = $primary->safe_psql('postgres',
	'SELECT coalesce(max(seq), 0) FROM replroute_events');
$primary->safe_psql('postgres', "SELECT replroute_drain('standby1')");
refresh($primary);

# psql prints notifications after a command; the worker committed them
# before refresh() returned, so a few round trips are plenty.
my @payloads;
for (1 .. 50)
{
	my $out = $listener->query('SELECT 1');
	push @payloads, ($out =~ /payload "(\{.*?\})" received/g);
	last if grep { /"to":"drained"/ } @payloads;
}
my ($drain_json) = grep { /"to":"drained"/ } @payloads;
ok(defined $drain_json, 'listener received the drain notification')
  or diag("got: @payloads");
my $drain = decode_json($drain_json // '{}');
is($drain->{node}, 'standby1', 'payload names the node');
is($drain->{from}, 'healthy', 'payload has from');
is($drain->{reason}, 'drained by an operator', 'payload has the reason');
is( $drain->{seq},
	$primary->safe_psql('postgres',
		"SELECT max(seq) FROM replroute_events WHERE node = 'standby1' AND to_state = 'drained'"),
	'payload seq is the event\'s seq');
ok($drain->{seq} > $seq_before, 'the drain is a new event');
$listener->quit;

# --- undrain, then an immediate stop and a start of the standby
$primary->safe_psql('postgres', "SELECT replroute_undrain('standby1')");
wait_for_state($primary, 'standby1', 'healthy');
$s1->stop('immediate');
# Its walsender goes and its probe's connection fails: either is seen first,
# and a failed probe takes precedence (005_probes).
ok( $primary->poll_query_until('postgres',
		"SELECT state IN ('disconnected', 'unreachable') FROM replroute_nodes WHERE name = 'standby1'"),
	'stopped standby1 is disconnected or unreachable');
$s1->start;
wait_for_state($primary, 'standby1', 'healthy');

my @events = split /\n/, $primary->safe_psql('postgres',
	"SELECT seq, coalesce(from_state, '-'), to_state FROM replroute_events
	  WHERE node = 'standby1' ORDER BY seq");
my ($previous_to, $previous_seq, $broken) = ('-', 0, 0);
my @to;
for my $line (@events)
{
	my ($seq, $from, $to) = split /\|/, $line;
	$broken++ if $from ne $previous_to || $seq <= $previous_seq;
	($previous_to, $previous_seq) = ($to, $seq);
	push @to, $to;
}
is($broken, 0, 'standby1 events chain from -> to in seq order: ' . join(' ', @to));
my $path = join(' ', @to);
like($path, qr/\bdrained healthy\b.*\b(?:disconnected|unreachable)\b.*\bhealthy$/,
	'drain, undrain, stop and start appear in that order');
is( $primary->safe_psql('postgres',
		'SELECT count(*) = count(DISTINCT seq) FROM replroute_events'),
	't', 'no seq twice');

# --- the worker killed: the postmaster restarts everything, a new start is logged
kill 'KILL', $pid;
ok( $primary->poll_query_until('postgres',
		"SELECT pid <> $pid FROM replroute_worker_status() WHERE pid IS NOT NULL"),
	'a new worker runs after the crash restart');
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM replroute_events
		  WHERE to_state = 'worker_started' AND reason !~ 'pid $pid '"),
	'the new worker logged its start');
wait_for_state($primary, 'standby1', 'healthy');

$s1->stop;
$primary->stop;
done_testing();
