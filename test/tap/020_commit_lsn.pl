# replroute.commit_lsn: the end of the session's latest commit record,
# reported to the client in a ParameterStatus message (checked through
# psycopg2's get_parameter_status, i.e. what a driver sees without a query),
# for every kind of transaction: autocommit, explicit COMMIT, ROLLBACK, read
# only, savepoints, COMMIT inside a procedure, two-phase commit, a failing
# commit, a parallel query, and on a primary that was a standby until its
# promotion.  Every reported position is checked against the WAL itself
# (pg_walinspect): a commit record of the right transaction ends there.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;

my $primary = new_primary('primary', max_prepared_transactions => 10);
$primary->safe_psql(
	'postgres', q(
CREATE EXTENSION pg_walinspect;
CREATE TABLE t (v int, xid text DEFAULT pg_current_xact_id()::text);
CREATE TABLE d (id int UNIQUE DEFERRABLE INITIALLY DEFERRED);
CREATE PROCEDURE p(n int) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..n LOOP
		INSERT INTO t (v) VALUES (100 + i);
		COMMIT;
	END LOOP;
END $$;
));
$primary->backup('b1');

# Runs [conn, sql] pairs through test/tap/param_status.py; returns its list
# of {conn, sql, reported, error, rows}, one per statement (and per connect).
sub client
{
	my ($conns, @program) = @_;
	my ($out, $err);
	my @cmd = ('/usr/bin/python3', "$FindBin::RealBin/param_status.py",
		map { "$_=$conns->{$_}" } sort keys %$conns);
	IPC::Run::run(\@cmd, '<', \encode_json(\@program), '>', \$out, '2>', \$err)
	  or die "param_status.py failed: $err";
	return decode_json($out);
}

# "record_type xid" of the WAL record that ends exactly at $lsn, searched
# from $from (a position before it: where the batch of statements began).
# The xid is the committed transaction's: for COMMIT_PREPARED that is the
# prepared one, which the description begins with (the record's own xid is
# the committing session's, none).
my $from;
sub record_ending_at
{
	my ($node, $lsn) = @_;
	return $node->safe_psql(
		'postgres', qq(
SELECT record_type || ' ' || CASE record_type
	WHEN 'COMMIT_PREPARED' THEN split_part(description, ':', 1)
	ELSE xid::text END
FROM pg_get_wal_records_info('$from', pg_current_wal_flush_lsn())
WHERE end_lsn = '$lsn'));
}

sub xid_of
{
	my ($node, $v) = @_;
	return $node->safe_psql('postgres', "SELECT xid FROM t WHERE v = $v");
}

my %c = (a => $primary->connstr('postgres'), b => $primary->connstr('postgres'));
$from = $primary->lsn('insert');
my @r = @{
	client(
		\%c,
		[ a => 'SHOW replroute.commit_lsn' ],                     # 0 connect, 1
		[ a => 'SELECT 1' ],                                      # 2
		[ a => 'INSERT INTO t (v) VALUES (1)' ],                  # 3
		[ a => 'SELECT count(*) FROM t' ],                        # 4
		[ a => 'BEGIN READ ONLY' ],                               # 5
		[ a => 'SELECT count(*) FROM t' ],                        # 6
		[ a => 'COMMIT' ],                                        # 7
		[ a => 'BEGIN' ],                                         # 8
		[ a => 'INSERT INTO t (v) VALUES (2)' ],                  # 9
		[ a => 'COMMIT' ],                                        # 10
		[ a => 'BEGIN' ],                                         # 11
		[ a => 'INSERT INTO t (v) VALUES (3)' ],                  # 12
		[ a => 'ROLLBACK' ],                                      # 13
		[ a => 'BEGIN' ],                                         # 14
		[ a => 'SAVEPOINT s' ],                                   # 15
		[ a => 'INSERT INTO t (v) VALUES (4)' ],                  # 16
		[ a => 'RELEASE s' ],                                     # 17
		[ a => 'COMMIT' ],                                        # 18
		[ a => 'BEGIN' ],                                         # 19
		[ a => 'SAVEPOINT s' ],                                   # 20
		[ a => 'SELECT count(*) FROM t' ],                        # 21
		[ a => 'RELEASE s' ],                                     # 22
		[ a => 'COMMIT' ],                                        # 23
		[ a => 'BEGIN' ],                                         # 24
		[ a => 'SAVEPOINT s' ],                                   # 25
		[ a => 'INSERT INTO t (v) VALUES (5)' ],                  # 26
		[ a => 'ROLLBACK TO s' ],                                 # 27
		[ a => 'COMMIT' ],                                        # 28
		[ a => 'CALL p(3)' ],                                     # 29
		[ a => 'BEGIN' ],                                         # 30
		[ a => 'INSERT INTO t (v) VALUES (6)' ],                  # 31
		[ a => "PREPARE TRANSACTION 'rr1'" ],                     # 32
		[ b => "COMMIT PREPARED 'rr1'" ],                         # 33 connect, 34
		[ a => 'SELECT 1' ],                                      # 35
		[ a => 'BEGIN' ],                                         # 36
		[ a => 'INSERT INTO t (v) VALUES (7)' ],                  # 37
		[ a => "PREPARE TRANSACTION 'rr2'" ],                     # 38
		[ a => "ROLLBACK PREPARED 'rr2'" ],                       # 39
		[ b => "COMMIT PREPARED 'rr-none'" ],                     # 40
		[ a => 'BEGIN' ],                                         # 41
		[ a => 'INSERT INTO d VALUES (1), (1)' ],                 # 42
		[ a => 'COMMIT' ],                                        # 43
		[ a => "SET replroute.commit_lsn = '0/1'" ],              # 44
		[ a => "SELECT set_config('replroute.commit_lsn', '0/1', false)" ], # 45
		[ a => "SELECT current_setting('replroute.commit_lsn')" ], # 46
	)
};

is($r[0]{reported}, '', 'a new session is told an empty position');
is($r[1]{rows}[0][0], '', 'SHOW gives the same empty value');
is($r[2]{reported}, '', 'a read does not set it');

my $l1 = $r[3]{reported};
like($l1, qr{^[0-9A-F]+/[0-9A-F]+$}, "an autocommit INSERT reports its commit ($l1)");
is(record_ending_at($primary, $l1), 'COMMIT ' . xid_of($primary, 1),
	'... the end of its own commit record');
is($r[4]{reported}, $l1, 'a read afterwards leaves it');
is($r[7]{reported}, $l1, 'a READ ONLY transaction leaves it');

is($r[9]{reported}, $l1, 'an INSERT inside BEGIN reports nothing before COMMIT');
my $l2 = $r[10]{reported};
isnt($l2, $l1, 'COMMIT of an explicit transaction reports');
is(record_ending_at($primary, $l2), 'COMMIT ' . xid_of($primary, 2),
	'... the end of its commit record');

is($r[12]{reported}, $l2, 'a write inside BEGIN ... ');
is($r[13]{reported}, $l2, '... that is rolled back reports nothing');

is($r[17]{reported}, $l2, 'RELEASE of a savepoint that wrote reports nothing');
my $l3 = $r[18]{reported};
isnt($l3, $l2, 'COMMIT after a released savepoint that wrote reports');
is(record_ending_at($primary, $l3), 'COMMIT ' . xid_of($primary, 4),
	'... its commit record (the subtransaction folds into it)');

is($r[23]{reported}, $l3, 'a read-only transaction with a savepoint leaves it');

my $l4 = $r[28]{reported};
isnt($l4, $l3,
	'COMMIT after ROLLBACK TO a savepoint that wrote reports: the transaction has an id and commits it'
);
like(record_ending_at($primary, $l4), qr/^COMMIT \d+$/, '... with a commit record');

my $l5 = $r[29]{reported};
is($r[29]{error}, undef, 'CALL with three COMMITs inside ran');
is(record_ending_at($primary, $l5), 'COMMIT ' . xid_of($primary, 103),
	"CALL reports the procedure's last COMMIT");

is($r[31]{reported}, $l5, 'a write before PREPARE TRANSACTION ...');
is($r[32]{reported}, $l5, '... PREPARE TRANSACTION reports nothing (no commit record)');
is($r[33]{reported}, '', 'a second session starts empty');
my $lb = $r[34]{reported};
is($r[34]{error}, undef, 'COMMIT PREPARED ran');
is(record_ending_at($primary, $lb), 'COMMIT_PREPARED ' . xid_of($primary, 6),
	'COMMIT PREPARED reports the prepared commit record, to the session that ran it');
is($r[35]{reported}, $l5, 'the preparing session keeps its own value');
is($r[39]{reported}, $l5, 'ROLLBACK PREPARED reports nothing');
is($r[40]{error}, '42704', 'COMMIT PREPARED of an unknown transaction fails ...');
is($r[40]{reported}, $lb, '... and reports nothing');

is($r[43]{error}, '23505', 'a COMMIT that fails on a deferred unique constraint ...');
is($r[43]{reported}, $l5, '... reports nothing');

is($r[44]{error}, '55P02', 'SET replroute.commit_lsn is refused (55P02)');
is($r[45]{error}, '55P02', 'set_config() is refused too');
is($r[46]{rows}[0][0], $l5, 'current_setting() gives the reported value');

# --- the extended query protocol (Parse/Bind/Execute/Sync), as pgjdbc and
# other drivers send statements: the report comes before ReadyForQuery too.
$from = $primary->lsn('insert');
@r = @{
	client(
		\%c,
		[ a => 'extended:INSERT INTO t (v) VALUES (400)' ],   # 0 connect, 1
		[ a => 'extended:SELECT count(*) FROM t' ],          # 2
	)
};
is($r[1]{error}, undef, 'an INSERT over the extended protocol ran');
is(record_ending_at($primary, $r[1]{reported}), 'COMMIT ' . xid_of($primary, 400),
	'... and reported its commit record');
is($r[2]{reported}, $r[1]{reported}, 'a read over the extended protocol leaves it');

# --- a parallel query: the leader reports, its workers change nothing.
my $parallel = q(SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0; SET force_parallel_mode = on);
$from = $primary->lsn('insert');
@r = @{
	client(
		\%c,
		[ a => $parallel ],                                                   # 0, 1
		[ a => 'EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM t' ],        # 2
		[ a => 'EXPLAIN (ANALYZE, COSTS OFF) CREATE TABLE ct AS SELECT v FROM t' ], # 3
		[ a => 'SELECT DISTINCT xmin FROM ct' ],                              # 4
	)
};
my $plan_read = join "\n", map { $_->[0] } @{ $r[2]{rows} };
my $plan_write = join "\n", map { $_->[0] } @{ $r[3]{rows} };
like($plan_read, qr/Workers Launched: [1-9]/, 'the read ran with parallel workers');
is($r[2]{reported}, '', '... and reported nothing');
like($plan_write, qr/Workers Launched: [1-9]/, 'CREATE TABLE AS ran with parallel workers');
is(record_ending_at($primary, $r[3]{reported}), 'COMMIT ' . $r[4]{rows}[0][0],
	'... and reported its commit record');

# --- a standby promoted to primary, with a session that began in recovery.
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;
$from = $primary->lsn('insert');
$primary->wait_for_catchup('standby', 'replay', $from);
@r = @{
	client(
		{ s => $standby->connstr('postgres') },
		[ s => 'SELECT pg_is_in_recovery()' ],           # 0 connect, 1
		[ s => 'SELECT count(*) FROM t' ],               # 2
		[ s => 'SELECT pg_promote()' ],                  # 3
		[ s => 'SELECT pg_is_in_recovery()' ],           # 4
		[ s => 'INSERT INTO t (v) VALUES (300)' ],       # 5
	)
};
is($r[1]{rows}[0][0], 'True', 'the session began on a standby');
is($r[2]{reported}, '', '... reads there report nothing');
is($r[4]{rows}[0][0], 'False', '... the server was promoted');
like(record_ending_at($standby, $r[5]{reported}), qr/^COMMIT \d+$/,
	"... and the session's first write on the new primary reports its commit record");
is(record_ending_at($standby, $r[5]{reported}), 'COMMIT ' . xid_of($standby, 300),
	'... of its own transaction');
@r = @{ client({ n => $standby->connstr('postgres') },
		[ n => 'INSERT INTO t (v) VALUES (301)' ]) };
is(record_ending_at($standby, $r[1]{reported}), 'COMMIT ' . xid_of($standby, 301),
	'a new session on the promoted primary reports too');

$standby->stop;
$primary->stop;
done_testing();
