# Helpers of the fault suites (01x_*.pl): a client load that records every
# pick with the time it was made, and the checks run over that record.
#
# The load is a few forked Perl processes, each running psql in batches
# against the primary (and one read per batch on the standby picked), so that
# a client whose server restarts simply connects again in its next batch.
# Every pick is recorded as (epoch, name, rounds): epoch is clock_timestamp()
# taken in the query, before the pick, and rounds is the worker's published
# round count read after it.  All servers run on this machine, so the
# primary's clock is the clock of every record.
#
# "Known bad" is measured the same way: wait_unroutable() wakes the worker
# (replroute_refresh) until a round has published the node unroutable, and
# returns the primary's clock at that moment.  A pick whose epoch is later
# than that, and earlier than the moment the test starts repairing the fault,
# routed to a node replroute had already published as bad.
package ReplrouteFaults;

use strict;
use warnings;
use Exporter 'import';
use File::Temp ();
use IPC::Run;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;

our @EXPORT = qw(new_faults_primary start_load stop_load
  check_load picks_of primary_now wait_unroutable wait_routable_node
  load_until event_mark check_events);

# Every client ever started, so that a test that dies stops them too.
my @all_pids;
END { kill 'TERM', @all_pids if @all_pids; }

# The longest a load may run, whatever happens to the test: the children
# stop by themselves after this.
my $LOAD_LIMIT_S = 240;

# A primary as ReplrouteTest's, plus 1 MB WAL segments (a slot can be lost
# with a few MB of WAL), prepared transactions (a registry lock that survives
# a restart), and %conf.
sub new_faults_primary
{
	my ($name, %conf) = @_;
	return new_primary(
		$name,
		initdb_extra => ['--wal-segsize=1'],
		max_prepared_transactions => 5,
		min_wal_size => '2MB',
		max_wal_size => '8MB',
		%conf);
}

# The primary's clock, as epoch seconds.
sub primary_now
{
	my ($primary) = @_;
	return $primary->safe_psql('postgres',
		'SELECT extract(epoch FROM clock_timestamp())');
}

# Wakes the worker round after round until one has published $name as not
# routable (or, with $state, in that state).  Returns (ok, state, reason,
# epoch of the primary's clock once that round was seen); bounded by
# $PostgreSQL::Test::Utils::timeout_default.
sub wait_unroutable
{
	my ($primary, $name, $state) = @_;
	my $want = defined $state ? "r.state = '$state'" : 'NOT r.routable';
	my $limit = $PostgreSQL::Test::Utils::timeout_default;
	my $out = $primary->safe_psql(
		'postgres', qq(
CREATE FUNCTION pg_temp.wait_bad() RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
	r record;
	deadline timestamptz := clock_timestamp() + interval '$limit s';
BEGIN
	-- Bounded by time, not by count: a woken worker publishes rounds back
	-- to back, and a fault may take seconds to show.
	WHILE clock_timestamp() < deadline LOOP
		PERFORM replroute_refresh('100ms');
		SELECT state, reason, routable INTO r FROM replroute_nodes WHERE name = '$name';
		IF FOUND AND $want THEN
			RETURN r.state || '|' || r.reason || '|' || extract(epoch FROM clock_timestamp());
		END IF;
		-- Rounds back to back would keep a core busy for nothing.
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN 'timeout|' || coalesce(r.state, '') || ' ' || coalesce(r.reason, '') || '|0';
END
\$\$;
SELECT pg_temp.wait_bad();));
	my ($got, $reason, $epoch) = split /\|/, $out, 3;
	my $ok = $got ne 'timeout';
	ok($ok, "$name published " . ($state // 'unroutable') . " ($got: $reason)");
	return ($ok, $got, $reason, $epoch);
}

sub wait_routable_node
{
	my ($primary, $name) = @_;
	ok( $primary->poll_query_until(
			'postgres',
			"SELECT count(*) = 1 FROM replroute_readers() WHERE name = '$name'"),
		"$name routable");
}

# Starts $opt{clients} (default 3) load clients against $primary.
# $opt{standbys}: name => node, for the read on the standby picked.
# $opt{setup}: SQL run before every batch (e.g. SET replroute.fallback).
# Returns a handle for stop_load.
sub start_load
{
	my ($primary, %opt) = @_;
	my $dir = File::Temp::tempdir('rr_load_XXXX', DIR => $PostgreSQL::Test::Utils::tmp_check, CLEANUP => 1);
	my $clients = $opt{clients} // 3;
	my %standby_conn =
	  map { $_ => $opt{standbys}{$_}->connstr('postgres') } keys %{ $opt{standbys} // {} };
	my $primary_conn = $primary->connstr('postgres');
	my $setup = $opt{setup} // '';
	my @pids;
	for my $c (1 .. $clients)
	{
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			# prove waits for whoever holds the test's stdout
			open STDOUT, '>', '/dev/null';
			open STDERR, '>', '/dev/null';
			load_client("$dir/client$c.log", "$dir/stop", $primary_conn, \%standby_conn, $setup);
			# Not exit: the parent's END blocks (the framework's) must not
			# run in the child.
			POSIX::_exit(0);
		}
		push @pids, $pid;
		push @all_pids, $pid;
	}
	# Let every client record something before the fault.
	for my $c (1 .. $clients)
	{
		my $log = "$dir/client$c.log";
		for (1 .. $PostgreSQL::Test::Utils::timeout_default * 10)
		{
			last if -s $log && slurp_file($log) =~ /^pick\|/m;
			select(undef, undef, undef, 0.1);
		}
	}
	return { dir => $dir, pids => \@pids, clients => $clients };
}

sub load_client
{
	my ($log, $stop, $primary_conn, $standby_conn, $setup) = @_;
	my $pick = q{SELECT 'pick', extract(epoch FROM clock_timestamp()),
coalesce(replroute_pick_reader(), '(null)'),
(SELECT rounds FROM replroute_worker_status())};
	my @cmd = ('psql', '-X', '-A', '-t', '-q', '-F', '|', '-d', $primary_conn);
	push @cmd, '-c', $setup if $setup ne '';
	push @cmd, ('-c', $pick) x 20;
	my $deadline = time + $LOAD_LIMIT_S;
	local $ENV{PGCONNECT_TIMEOUT} = 5;
	open my $fh, '>>', $log or die "$log: $!";
	$fh->autoflush(1);
	my $parent = getppid();
	while (!-e $stop && time < $deadline && getppid() == $parent)
	{
		my ($out, $err) = ('', '');
		IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err,
			IPC::Run::timeout(60));
		my $last;
		for my $line (split /\n/, $out)
		{
			next unless $line =~ /^pick\|/;
			print $fh "$line\n";
			my (undef, undef, $name) = split /\|/, $line;
			$last = $name if $name ne '(null)';
		}
		print $fh "stderr|$_\n" for grep { /\S/ } split /\n/, $err;
		next unless defined $last && exists $standby_conn->{$last};
		my ($rout, $rerr) = ('', '');
		IPC::Run::run(
			[
				'psql', '-X', '-A', '-t', '-q', '-d', $standby_conn->{$last},
				'-c', 'SELECT pg_is_in_recovery()'
			],
			'<', \undef, '>', \$rout, '2>', \$rerr, IPC::Run::timeout(60));
		chomp $rout;
		$rerr =~ s/\n/ /g;
		print $fh "read|$last|" . ($rout eq 't' ? 'ok' : "failed: $rout $rerr") . "\n";
	}
	close $fh;
}

# Waits until the clients have made $n picks (default: 10 per client) later
# than $epoch, so that a window after a fault holds picks to check.
sub load_until
{
	my ($load, $epoch, $n) = @_;
	$n //= 10 * $load->{clients};
	my $seen = 0;
	for (1 .. $PostgreSQL::Test::Utils::timeout_default * 10)
	{
		$seen = 0;
		for my $c (1 .. $load->{clients})
		{
			my $log = "$load->{dir}/client$c.log";
			next unless -e $log;
			$seen += grep { (split /\|/)[1] > $epoch } grep { /^pick\|/ } split /\n/, slurp_file($log);
		}
		return 1 if $seen >= $n;
		select(undef, undef, undef, 0.1);
	}
	ok(0, "load made $n picks after $epoch (only $seen)");
	return 0;
}

# Stops the load; returns { picks => [[epoch, name, rounds]...],
# errors => [stderr lines with ERROR], stderr => [all stderr lines],
# reads => [[name, result]...] }.
sub stop_load
{
	my ($load) = @_;
	open my $fh, '>', "$load->{dir}/stop" or die;
	close $fh;
	waitpid($_, 0) for @{ $load->{pids} };
	my %r = (picks => [], errors => [], stderr => [], reads => []);
	for my $c (1 .. $load->{clients})
	{
		my $log = "$load->{dir}/client$c.log";
		next unless -e $log;
		for my $line (split /\n/, slurp_file($log))
		{
			my ($kind, @f) = split /\|/, $line, -1;
			if ($kind eq 'pick') { push @{ $r{picks} }, [@f]; }
			elsif ($kind eq 'read') { push @{ $r{reads} }, [@f]; }
			elsif ($kind eq 'stderr')
			{
				my $text = join('|', @f);
				push @{ $r{stderr} }, $text;
				push @{ $r{errors} }, $text if $text =~ /\bERROR:/;
			}
		}
	}
	return \%r;
}

# Picks of $name made strictly between the epochs $from and $to.
sub picks_of
{
	my ($r, $name, $from, $to) = @_;
	return grep { $_->[1] eq $name && $_->[0] > $from && $_->[0] < $to } @{ $r->{picks} };
}

# The checks every fault makes: the load ran, no call failed with an error,
# $bad (if given) was not picked between $from and $to, reads on the
# standby picked failed only on $bad.
sub check_load
{
	my ($r, $label, %opt) = @_;
	my $n = scalar @{ $r->{picks} };
	ok($n > 0, "$label: the load made $n picks");
	is(scalar @{ $r->{errors} }, 0, "$label: no call failed")
	  or diag(join("\n", @{ $r->{errors} }[0 .. min(9, $#{ $r->{errors} })]));
	if (defined $opt{bad})
	{
		my @wrong = picks_of($r, $opt{bad}, $opt{from}, $opt{to});
		my $during = grep { $_->[0] > $opt{from} && $_->[0] < $opt{to} } @{ $r->{picks} };
		is(scalar @wrong, 0,
			"$label: $opt{bad} not picked once published bad ($during picks meanwhile)")
		  or diag("first: $wrong[0][0], published bad at $opt{from}");
		# Otherwise the check above would hold for a load that never
		# picked it at all.
		my $before = picks_of($r, $opt{bad}, 0, $opt{from});
		ok($before > 0, "$label: $opt{bad} was picked before the fault ($before picks)");
	}
	my @failed_reads = grep { $_->[1] ne 'ok' } @{ $r->{reads} };
	my @wrong_reads = grep { !defined $opt{bad} || $_->[0] ne $opt{bad} } @failed_reads;
	my $reads = grep { $_->[1] eq 'ok' } @{ $r->{reads} };
	is(scalar @wrong_reads, 0,
		"$label: reads on the standby picked succeed ($reads ok, "
		  . scalar(@failed_reads) . " failed on the faulted node)")
	  or diag($wrong_reads[0][0] . ': ' . $wrong_reads[0][1]);
}

# The newest event's seq (0 when the log is empty).
sub event_mark
{
	my ($primary) = @_;
	return $primary->safe_psql('postgres',
		'SELECT coalesce(max(seq), 0) FROM replroute_events');
}

# The events of node $name after seq $mark: seq and time in order, each
# starting from the state the one before it ended in, and @want (to_state
# values) among them in this order.  $opt{published_by}: the event into
# $want[0] is dated no later than this epoch (the round that published it
# ran before the test saw it).  Returns the list of to_states.
sub check_events
{
	my ($primary, $mark, $name, $label, $want, %opt) = @_;
	my $out = $primary->safe_psql(
		'postgres', qq(
SELECT seq, extract(epoch FROM at), coalesce(from_state, '(none)'), to_state
FROM replroute_events WHERE seq > $mark AND node = '$name' ORDER BY seq));
	my @ev = map { [ split /\|/ ] } grep { /\S/ } split /\n/, $out;
	my ($in_order, $chained) = (1, 1);
	for my $i (1 .. $#ev)
	{
		$in_order = 0 unless $ev[$i][0] > $ev[ $i - 1 ][0] && $ev[$i][1] >= $ev[ $i - 1 ][1];
		# a node removed and added again first appears anew
		$chained = 0
		  unless $ev[$i][2] eq $ev[ $i - 1 ][3]
		  || ($ev[ $i - 1 ][3] eq 'removed' && $ev[$i][2] eq '(none)');
	}
	my @to = map { $_->[3] } @ev;
	ok($in_order, "$label: events of $name in seq and time order (@to)");
	ok($chained, "$label: each event of $name starts where the one before ended");
	my $j = 0;
	for my $e (@ev)
	{
		if ($j < @$want && $e->[3] eq $want->[$j])
		{
			if ($j == 0 && defined $opt{published_by})
			{
				ok($e->[1] <= $opt{published_by},
					"$label: the event into $want->[0] is dated before the test saw it");
			}
			$j++;
		}
	}
	is($j, scalar @$want, "$label: events of $name include @$want in order");
	return @to;
}

sub min { return $_[0] < $_[1] ? $_[0] : $_[1]; }

1;
