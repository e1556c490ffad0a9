# replroute_wait_for_replay(lsn, timeout) on standbys: true once replay has
# reached the position (reads after it see the write), false after the
# timeout when replay is paused, true or false as documented when the standby
# is promoted during the wait, cancellable (pg_cancel_backend,
# statement_timeout), refused where the following read could not see the
# write (REPEATABLE READ, SERIALIZABLE), and working where the library is not
# preloaded, for any role.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;

my $primary = new_primary('primary');
$primary->safe_psql(
	'postgres', q(
CREATE TABLE t (v int);
CREATE ROLE rr_plain LOGIN;
GRANT SELECT ON t TO rr_plain;
));
$primary->backup('b1');

sub standby
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init_from_backup($primary, 'b1', has_streaming => 1);
	$node->append_conf('postgresql.conf', $conf // '');
	$node->start;
	return $node;
}
my $s1 = standby('standby1');
# The library is not preloaded here: the function must work all the same.
my $s2 = standby('standby2', "shared_preload_libraries = ''\n");

sub insert_lsn
{
	my ($v) = @_;
	$primary->safe_psql('postgres', "INSERT INTO t VALUES ($v)");
	return $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
}

sub pause_replay
{
	my ($node) = @_;
	$node->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
	$node->poll_query_until('postgres',
		"SELECT pg_get_wal_replay_pause_state() = 'paused'")
	  or die 'replay did not pause';
}

# Waits until some backend sleeps in the wait (wait event Extension).
sub wait_for_waiter
{
	my ($node) = @_;
	return $node->poll_query_until(
		'postgres', q(
SELECT count(*) > 0 FROM pg_stat_activity
WHERE query LIKE 'SELECT replroute_wait_for_replay%' AND wait_event_type = 'Extension'));
}

# --- a primary has every write
is($primary->safe_psql('postgres', "SELECT replroute_wait_for_replay('FFFFFFFF/0', '1h')"),
	't', 'on a primary: true at once, whatever the position');

# --- replay running: write, wait, read -- also where nothing is preloaded
my $v = 10;
for my $node ($s1, $s2)
{
	my $name = $node->name;
	$v++;
	my $lsn = insert_lsn($v);
	my $t0 = time;
	my $out = $node->safe_psql('postgres',
		"SELECT replroute_wait_for_replay('$lsn', '60s'); SELECT count(*) FROM t WHERE v = $v");
	my $took = time - $t0;
	is($out, "t\n1", "$name: the wait returns true and the read after it sees the write");
	cmp_ok($took, '<', 60, "$name: it returned before its timeout (${took}s)");
	is($node->safe_psql('postgres', "SELECT replroute_wait_for_replay('$lsn', '0')"),
		't', "$name: a zero timeout answers whether the position is replayed");
	is( $node->safe_psql(
			'postgres', "SET ROLE rr_plain; SELECT replroute_wait_for_replay('$lsn')"),
		't', "$name: a role without any grant may wait");
}
is($s2->safe_psql('postgres', 'SHOW shared_preload_libraries'), '',
	'standby2 does not preload replroute');

# Through a client, as an application does it: the position from the
# primary's ParameterStatus, the wait and the read on the standby; 100 times.
{
	my $program = [];
	for my $i (1 .. 100)
	{
		push @$program, [ p => "INSERT INTO t VALUES (1000 + $i)" ],
		  [ s => "SELECT replroute_wait_for_replay('{reported:p}', '60s')" ],
		  [ s => "SELECT count(*) FROM t WHERE v = 1000 + $i" ];
	}
	my ($out, $err);
	IPC::Run::run(
		[ '/usr/bin/python3', "$FindBin::RealBin/param_status.py",
			'p=' . $primary->connstr('postgres'), 's=' . $s1->connstr('postgres') ],
		'<', \encode_json($program), '>', \$out, '2>', \$err)
	  or die "param_status.py failed: $err";
	my @r = grep { $_->{sql} ne '(connect)' } @{ decode_json($out) };
	my @waits = map { $r[3 * $_ + 1]{rows}[0][0] } 0 .. 99;
	my @reads = map { $r[3 * $_ + 2]{rows}[0][0] } 0 .. 99;
	is(scalar(grep { $_ eq 'True' } @waits), 100, '100 writes: every wait returned true');
	is(scalar(grep { $_ eq '1' } @reads), 100, '... and every read after it saw its write');
}

# --- replay paused: false after the timeout; true once replay resumes
pause_replay($s1);
my $lsn = insert_lsn(2);
my $t0 = time;
is($s1->safe_psql('postgres', "SELECT replroute_wait_for_replay('$lsn', '300ms')"),
	'f', 'replay paused: false ...');
my $took = time - $t0;
cmp_ok($took, '>=', 0.3, "... after the timeout (${took}s)");

my $bg = $s1->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/,
	"\\echo started\nSELECT replroute_wait_for_replay('$lsn', '5min');\n");
ok(wait_for_waiter($s1), 'a second wait is sleeping');
$s1->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
my ($res) = $bg->query('SELECT 1');
is($res, "t\n1", 'replay resumed: the wait returns true');

# --- cancelled: by pg_cancel_backend, by statement_timeout
pause_replay($s1);
$lsn = insert_lsn(3);
$bg->query_until(qr/started/,
	"\\echo started\nSELECT replroute_wait_for_replay('$lsn', '5min');\n");
ok(wait_for_waiter($s1), 'a wait on paused replay is sleeping');
is( $s1->safe_psql(
		'postgres', q(
SELECT pg_cancel_backend(pid) FROM pg_stat_activity
WHERE query LIKE 'SELECT replroute_wait_for_replay%' AND wait_event_type = 'Extension')),
	't', 'pg_cancel_backend() signalled it');
my ($out, $failed) = $bg->query('SELECT 2');
like($bg->{stderr}, qr/canceling statement due to user request/,
	'the wait ends with the cancel error');
$bg->quit;

my ($ret, $stdout, $stderr) = $s1->psql('postgres',
	"SET statement_timeout = '200ms'; SELECT replroute_wait_for_replay('$lsn', '5min')");
like($stderr, qr/canceling statement due to statement timeout/,
	'statement_timeout ends a wait');
$s1->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');

# --- the wait and the read in one simple-protocol query string (one round
# trip): at READ COMMITTED the read takes its snapshot after the wait.
pause_replay($s1);
$lsn = insert_lsn(6);
{
	my ($mout, $merr);
	# From a file: IPC::Run feeds a scalar only while the caller pumps.
	my $program = PostgreSQL::Test::Utils::tempdir() . '/program.json';
	PostgreSQL::Test::Utils::append_to_file($program,
		encode_json([ [ s =>
			"SELECT replroute_wait_for_replay('$lsn', '5min'); SELECT count(*) FROM t WHERE v = 6" ] ]));
	my $h = IPC::Run::start(
		[ '/usr/bin/python3', "$FindBin::RealBin/param_status.py",
			's=' . $s1->connstr('postgres') ],
		'<', $program, '>', \$mout, '2>', \$merr);
	ok(wait_for_waiter($s1), 'a wait sent with its read in one query string is sleeping');
	$s1->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
	$h->finish or die "param_status.py failed: $merr";
	my @r = @{ decode_json($mout) };
	is($r[1]{rows}[0][0], '1', '... and the read after it, in the same string, sees the write');
}

# --- refused where the read after it could not see the write
($ret, $stdout, $stderr) = $s1->psql('postgres',
	"BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT replroute_wait_for_replay('$lsn')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/25001: replroute_wait_for_replay\(\) cannot be used inside a REPEATABLE READ or SERIALIZABLE transaction/,
	'REPEATABLE READ transaction: refused with 25001');
($ret, $stdout, $stderr) = $primary->psql('postgres',
	"BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT replroute_wait_for_replay('$lsn')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/25001: replroute_wait_for_replay\(\) cannot be used inside/,
	'SERIALIZABLE transaction (on the primary): refused with 25001');
is( $s1->safe_psql(
		'postgres',
		"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT replroute_wait_for_replay('$lsn', '60s'); COMMIT"
	),
	't',
	'a READ COMMITTED transaction block may wait');
is( $s1->safe_psql(
		'postgres',
		"SET default_transaction_isolation = 'repeatable read'; SELECT replroute_wait_for_replay('$lsn', '60s')"
	),
	't',
	'autocommit at REPEATABLE READ may wait (the read is a transaction of its own)');

# --- promoted during the wait.  Replay paused, the write received: the
# promotion replays what was received, so the position is reached: true.
pause_replay($s2);
$lsn = insert_lsn(4);
$s2->poll_query_until('postgres', "SELECT pg_last_wal_receive_lsn() >= '$lsn'")
  or die 'standby2 did not receive the write';
$bg = $s2->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/,
	"\\echo started\nSELECT replroute_wait_for_replay('$lsn', '5min');\n");
ok(wait_for_waiter($s2), 'a wait on standby2 (replay paused) is sleeping');
$s2->promote;
($res) = $bg->query('SELECT pg_is_in_recovery()');
is($res, "t\nf", 'promoted after receiving the write: the wait returns true');
$bg->quit;
is($s2->safe_psql('postgres', 'SELECT count(*) FROM t WHERE v = 4'), '1',
	'... and the write is there');

# A standby cut off from the primary before the write: the promotion ends
# recovery short of the position, which this server will never have: false,
# at once rather than after the timeout.
my $s3 = standby('standby3');
$primary->wait_for_catchup('standby3', 'replay', $primary->lsn('insert'));
$s3->safe_psql('postgres', "ALTER SYSTEM SET primary_conninfo = ''; SELECT pg_reload_conf()");
$s3->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_stat_wal_receiver')
  or die 'standby3 still receives';
$lsn = insert_lsn(5);
$bg = $s3->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/,
	"\\echo started\nSELECT replroute_wait_for_replay('$lsn', '5min');\n");
ok(wait_for_waiter($s3), 'a wait on standby3 (cut off) is sleeping');
$t0 = time;
$s3->promote;
($res) = $bg->query('SELECT pg_is_in_recovery()');
$took = time - $t0;
is($res, "f\nf", 'promoted short of the position: the wait returns false');
cmp_ok($took, '<', 300, "... without sitting out its timeout (${took}s)");
$bg->quit;
is($s3->safe_psql('postgres', 'SELECT count(*) FROM t WHERE v = 5'), '0',
	'... and indeed the write is not there');

$s3->stop;
$s2->stop;
$s1->stop;
$primary->stop;
done_testing();
