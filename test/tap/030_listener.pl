# The listener: HAProxy's agent check and the HTTP endpoints, served by the
# primary's "replroute listener" worker; Debian's haproxy in front of two
# standbys with the agent check as docs/haproxy.md documents it, faults that
# change where HAProxy sends new connections, hostile clients, a restart of
# the listener, a port in use, and a promotion.
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use ReplrouteTest;
use ReplrouteFaults;
use ReplrouteHAProxy;

plan skip_all => 'haproxy not installed' unless -x '/usr/sbin/haproxy';

my $agent_port = PostgreSQL::Test::Cluster::get_free_port();
my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my $read_port = PostgreSQL::Test::Cluster::get_free_port();

my $primary = new_faults_primary(
	'primary',
	'replroute.agent_port' => $agent_port,
	'replroute.http_port' => $http_port,
	'replroute.agent_listen_addresses' => '127.0.0.1',
	'replroute.listen_max_connections' => 16,
	'replroute.listen_timeout' => '1s',
	'replroute.probe_timeout' => '1s',
	'replroute.max_lag_bytes' => '1MB',
	# HAProxy connects over TCP (the framework listens on a socket only);
	# the standbys' copies of postgresql.conf take this over.
	'listen_addresses' => '127.0.0.1');
$primary->safe_psql('postgres', 'CREATE TABLE t (id int, v text)');
$primary->backup('b');
my %standby;
for my $name (qw(standby1 standby2))
{
	$standby{$name} = add_standby($primary, $name, 'b');
	# The standby's copy of postgresql.conf has the primary's ports: its own
	# listener takes ports of its own.
	my $a = PostgreSQL::Test::Cluster::get_free_port();
	my $h = PostgreSQL::Test::Cluster::get_free_port();
	$standby{$name}->append_conf('postgresql.conf',
		"replroute.agent_port = $a\nreplroute.http_port = $h\n");
	$standby{$name}->reload;
	$standby{$name}{rr_agent_port} = $a;
}
wait_routable($primary, 2);
my %name_of_port = map { $standby{$_}->port => $_ } keys %standby;
$name_of_port{ $primary->port } = 'primary';

# --- the agent protocol, asked directly
is(agent_ask($agent_port, "standby1\n"), "up ready 100%\n", 'agent: a routable node is up ready 100%');
$primary->safe_psql('postgres', "SELECT replroute_set_weight('standby2', 50)");
refresh($primary);
is(agent_ask($agent_port, "standby2\n"), "up ready 50%\n", 'agent: the weight maps onto the percentage');
$primary->safe_psql('postgres', "SELECT replroute_set_weight('standby2', 100)");
like(agent_ask($agent_port, "nosuch\n"), qr/^down #replroute: no node named nosuch is registered\n\z/,
	'agent: an unknown name is down and says so');
like(agent_ask($agent_port, "no such\n"), qr/^down #replroute: not a node name/,
	'agent: a malformed name is down and says so');
my $on_standby = agent_ask($standby{standby1}{rr_agent_port}, "standby2\n") // '';
for (1 .. 50)
{
	last if $on_standby =~ /standby/;
	Time::HiRes::sleep(0.2);
	$on_standby = agent_ask($standby{standby1}{rr_agent_port}, "standby2\n") // '';
}
like($on_standby, qr/^down #replroute: this server is a standby: ask the replroute of the primary\n\z/,
	"agent on a standby: this server is not the one to ask");

# --- HTTP, asked directly
my ($status, $head, $body) = http_get($http_port, '/node/standby1');
is($status, 200, 'http: /node/standby1 is 200');
like($body, qr/"routable":true,"state":"healthy"/, 'http: state in the JSON body');
($status, undef, $body) = http_get($http_port, '/node/standby1?max_lag_bytes=0&max_lag=1h');
ok($status == 200 || $status == 503, "http: bounds in the query are read ($status)");
($status) = http_get($http_port, '/node/nosuch');
is($status, 404, 'http: an unknown node is 404');
($status, undef, $body) = http_get($http_port, '/readers');
is($status, 200, 'http: /readers is 200');
like($body, qr/"name":"standby1".*"name":"standby2"/, 'http: /readers lists both standbys');
($status, $head, $body) = http_get($http_port, '/metrics');
is($status, 200, 'http: /metrics is 200');
like($head, qr{Content-Type: text/plain; version=0\.0\.4}, 'http: /metrics in Prometheus text format');
like($body, qr/^replroute_node_routable\{node="standby1"\} 1$/m, 'http: /metrics has the node series');
like($body, qr/^replroute_worker_rounds_total \d+$/m, 'http: /metrics has the worker rounds');
($status) = http_get($http_port, undef, raw => "POST /readers HTTP/1.0\r\n\r\n");
is($status, 405, 'http: POST is refused');
($status) = http_get($http_port, '/etc/passwd');
is($status, 404, 'http: unknown path is 404');

# --- HAProxy in front of the standbys
my $hdir = PostgreSQL::Test::Utils::tempdir('haproxy');
my $haproxy = start_haproxy(
	dir => $hdir,
	read_port => $read_port,
	agent_port => $agent_port,
	standbys => \%standby,
	primary => $primary);
for my $name (qw(standby1 standby2))
{
	my ($ok, undef, $row) = wait_haproxy_status($haproxy, $name, qr/^UP$/);
	ok($ok, "haproxy: $name UP (" . ($row->{status} // 'no row') . ')');
}

# $n new connections through HAProxy: name => count, plus failures.
sub spread
{
	my ($n) = @_;
	my %count;
	for (1 .. $n)
	{
		my ($port, $err) = server_of($read_port);
		$count{ defined $port ? ($name_of_port{$port} // $port) : 'failed' }++;
	}
	return \%count;
}

sub counts_text { my ($c) = @_; return join ', ', map { "$_=$c->{$_}" } sort keys %$c; }

my $c = spread(10);
ok(($c->{standby1} // 0) > 0 && ($c->{standby2} // 0) > 0 && !$c->{failed},
	'haproxy: reads spread over both standbys (' . counts_text($c) . ')');

# pgbench through HAProxy, a new connection per transaction.
$primary->safe_psql('postgres', 'CREATE TABLE pgbench_probe AS SELECT 1 AS x');
sub pgbench_through
{
	my ($seconds) = @_;
	my $script = "$hdir/select.sql";
	open my $fh, '>', $script or die;
	print $fh "SELECT x FROM pgbench_probe;\n";
	close $fh;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[
			'pgbench', '-n', '-C', '-c', '2', '-T', $seconds, '-f', $script,
			'-h', '127.0.0.1', '-p', $read_port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	my ($done) = $out =~ /number of transactions actually processed: (\d+)/;
	return ($ok, $done // 0, $failed // -1, $err);
}
my ($bok, $done, $failed, $berr) = pgbench_through(2);
ok($bok && $done > 0 && $failed == 0, "pgbench through haproxy: $done transactions, $failed failed")
  or diag $berr;

# --- faults change where HAProxy sends new connections
my $s1 = $standby{standby1};
my $s2 = $standby{standby2};

# Immediate stop.
$s1->stop('immediate');
my ($ok, $waited, $row) = wait_haproxy_status($haproxy, 'standby1', qr/^DOWN/);
ok($ok, sprintf('crash: haproxy took standby1 DOWN after %.2f s (%s)', $waited, $row->{last_agt} // $row->{check_desc} // ''));
$c = spread(10);
is_deeply($c, { standby2 => 10 }, 'crash: new connections go to standby2 only (' . counts_text($c) . ')');
($bok, $done, $failed, $berr) = pgbench_through(1);
ok($bok && $failed == 0, "crash: pgbench through haproxy, $done transactions, $failed failed") or diag $berr;
$s1->start;
wait_routable_node($primary, 'standby1');
($ok) = wait_haproxy_status($haproxy, 'standby1', qr/^UP$/);
ok($ok, 'crash repaired: standby1 UP again in haproxy');

# Hung: every process of standby1 stopped.
{
	my $postmaster = (split /\n/, slurp_file($s1->data_dir . '/postmaster.pid'))[0];
	my @pids = ($postmaster, children_of($postmaster));
	kill 'STOP', @pids;
	$primary->safe_psql('postgres', "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g");
	($ok, $waited, $row) = wait_haproxy_status($haproxy, 'standby1', qr/^DOWN/);
	ok($ok, sprintf('hung: haproxy took standby1 DOWN after %.2f s', $waited));
	$c = spread(6);
	is_deeply($c, { standby2 => 6 }, 'hung: new connections go to standby2 only (' . counts_text($c) . ')');
	kill 'CONT', @pids;
}
wait_routable_node($primary, 'standby1');
($ok) = wait_haproxy_status($haproxy, 'standby1', qr/^UP$/);
ok($ok, 'hung repaired: standby1 UP again in haproxy');

# Past the lag bound: replay paused on standby2, 2 MB of WAL on the primary.
$s2->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$primary->safe_psql('postgres', "SELECT pg_logical_emit_message(true, 'rr', repeat('x', 2 * 1024 * 1024))");
($ok, $waited, $row) = wait_haproxy_status($haproxy, 'standby2', qr/^DOWN/);
ok($ok, sprintf('lag: haproxy took standby2 DOWN after %.2f s', $waited));
like(agent_ask($agent_port, "standby2\n"), qr/^down #lagging: /, 'lag: the agent says lagging and why');
# standby1 receives the same 2 MB and may be past the bound for a moment too.
wait_routable_node($primary, 'standby1');
($ok) = wait_haproxy_status($haproxy, 'standby1', qr/^UP$/);
ok($ok, 'lag: standby1 UP in haproxy');
$c = spread(6);
is_deeply($c, { standby1 => 6 }, 'lag: new connections go to standby1 only (' . counts_text($c) . ')');
$s2->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
wait_routable_node($primary, 'standby2');
($ok) = wait_haproxy_status($haproxy, 'standby2', qr/^UP$/);
ok($ok, 'lag repaired: standby2 UP again in haproxy');

# Drained: HAProxy drains it too.
$primary->safe_psql('postgres', "SELECT replroute_drain('standby2')");
($ok, $waited, $row) = wait_haproxy_status($haproxy, 'standby2', qr/^DRAIN/);
ok($ok, sprintf('drain: haproxy shows standby2 DRAIN after %.2f s (%s)', $waited, $row->{status} // ''));
$c = spread(6);
is_deeply($c, { standby1 => 6 }, 'drain: new connections go to standby1 only (' . counts_text($c) . ')');

# Every standby out: the backup (the primary) answers the reads.
$primary->safe_psql('postgres', "SELECT replroute_drain('standby1')");
($ok) = wait_haproxy_status($haproxy, 'standby1', qr/^DRAIN/);
ok($ok, 'drain: standby1 DRAIN too');
$c = spread(4);
is_deeply($c, { primary => 4 }, 'both drained: the backup server answers (' . counts_text($c) . ')');
$primary->safe_psql('postgres', "SELECT replroute_undrain('standby1'), replroute_undrain('standby2')");
for my $name (qw(standby1 standby2))
{
	($ok) = wait_haproxy_status($haproxy, $name, qr/^UP$/);
	ok($ok, "undrained: $name UP again in haproxy");
}

# A stuck observing worker: past replroute.stale_after (2 s) the agent says
# its data is stale, HAProxy takes every standby out and the backup answers.
{
	my $worker = $primary->safe_psql('postgres', 'SELECT pid FROM replroute_worker_status()');
	kill 'STOP', $worker;
	my $stale = '';
	for (1 .. 100)
	{
		$stale = agent_ask($agent_port, "standby1\n") // '';
		last if $stale =~ /older than replroute.stale_after/;
		Time::HiRes::sleep(0.1);
	}
	like($stale, qr/^down #replroute: replroute's health data is .* old, older than replroute.stale_after/,
		'stale: a stuck worker makes the agent say its data is stale');
	for my $name (qw(standby1 standby2))
	{
		($ok) = wait_haproxy_status($haproxy, $name, qr/^DOWN/);
		ok($ok, "stale: haproxy takes $name out");
	}
	$c = spread(2);
	is_deeply($c, { primary => 2 }, 'stale: the backup answers (' . counts_text($c) . ')');
	kill 'CONT', $worker;
	for my $name (qw(standby1 standby2))
	{
		($ok) = wait_haproxy_status($haproxy, $name, qr/^UP$/);
		ok($ok, "stale over: $name UP again");
	}
}

# --- hostile clients: the listener keeps serving
# The listener has no database connection, so it is not in pg_stat_activity:
# found among the postmaster's children by its process title.
sub listener_pid
{
	my ($node) = @_;
	my $postmaster = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
	for my $pid (children_of($postmaster))
	{
		open my $fh, '<', "/proc/$pid/cmdline" or next;
		my $cmd = <$fh> // '';
		return $pid if $cmd =~ /replroute listener/;
	}
	return '';
}
my $listener_pid = listener_pid($primary);
ok($listener_pid =~ /^\d+$/, "the listener runs as its own process ($listener_pid)");

sub raw_send
{
	my ($port, $bytes) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
	  or return '';
	$sock->autoflush(1);
	local $SIG{PIPE} = 'IGNORE';
	syswrite($sock, $bytes);
	# Done sending: the listener answers what it got without waiting for its
	# deadline (the flood below tests the deadline).
	shutdown($sock, 1);
	my $reply = '';
	my $rin = '';
	vec($rin, fileno($sock), 1) = 1;
	while (select(my $rout = $rin, undef, undef, 3) > 0)
	{
		my $got = sysread($sock, my $buf, 65536);
		last if !$got;
		$reply .= $buf;
	}
	close $sock;
	return $reply;
}

# Fuzz: random bytes, oversized lines, broken requests to both ports.
srand(20261129);
my ($agent_lines, $http_statuses) = (0, 0);
for my $i (1 .. 60)
{
	my $len = int(rand(400)) + 1;
	my $junk = join '', map { chr(int(rand(256))) } 1 .. $len;
	$junk .= "\n" if $i % 2;
	$agent_lines++ if raw_send($agent_port, $junk) =~ /^(down|up|drain)[^\n]*\n\z/;
	my $r = raw_send($http_port, $junk . ($i % 3 ? "\r\n\r\n" : ''));
	$http_statuses++ if $r =~ m{^HTTP/1\.1 [45]\d\d };
}
is($agent_lines, 60, 'fuzz: every random agent request got one reply line');
is($http_statuses, 60, 'fuzz: every random HTTP request got a 4xx/5xx status');
like(raw_send($agent_port, 'x' x 100000), qr/^down #replroute: request longer than/,
	'fuzz: an oversized agent line is refused');
like(raw_send($http_port, 'GET /' . ('a' x 100000)), qr{^HTTP/1\.1 414 },
	'fuzz: an oversized request line is 414');
like(raw_send($http_port, "GET / HTTP/1.1\r\n" . ("X-A: b\r\n" x 2000)), qr{^HTTP/1\.1 431 },
	'fuzz: oversized headers are 431');

# Slowloris and a flood: more connections than slots, each trickling or
# silent; while they last a new client is refused at once, never kept
# waiting; once their deadline passes the listener serves again.
{
	my @socks;
	for (1 .. 40)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => ($_ % 2 ? $agent_port : $http_port), Proto => 'tcp');
		push @socks, $s if $s;
	}
	ok(@socks >= 30, 'flood: ' . scalar(@socks) . ' connections opened');
	for my $s (@socks) { local $SIG{PIPE} = 'IGNORE'; syswrite($s, 'G'); }
	my $t0 = Time::HiRes::time();
	my $busy = agent_ask($agent_port, "standby1\n") // '';
	my $took = Time::HiRes::time() - $t0;
	ok($busy eq "up ready 100%\n" || $busy =~ /^down #replroute: too many connections/,
		sprintf('flood: a client gets an answer or a refusal, at once (%.3f s: %s)', $took, $busy =~ s/\n//r));
	ok($took < 1.5, 'flood: nobody waits behind the flood');
	Time::HiRes::sleep(0.1);
	for my $s (@socks) { local $SIG{PIPE} = 'IGNORE'; syswrite($s, 'E'); }
	Time::HiRes::sleep(1.2);
	is(agent_ask($agent_port, "standby1\n"), "up ready 100%\n", 'flood over: the agent answers again');
	close $_ for @socks;
}
my ($s_flood) = http_get($http_port, '/metrics');
is($s_flood, 200, 'after the fuzz and the flood, HTTP still answers');
($status, undef, $body) = http_get($http_port, '/metrics');
like($body, qr/^replroute_listener_refused_total\{protocol="agent"\} [1-9]/m,
	'metrics: refusals counted');
like($body, qr/^replroute_listener_timeouts_total\{protocol="(agent|http)"\} [1-9]/m,
	'metrics: deadlines counted');
is(listener_pid($primary), $listener_pid, 'the listener survived all of it (same pid)');
is($primary->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'replroute worker'"),
	1, 'the observing worker is unaffected');

# --- the observing worker restarted: the listener carries on, and answers
# from the new worker's rounds
{
	my $worker = $primary->safe_psql('postgres', 'SELECT pid FROM replroute_worker_status()');
	$primary->safe_psql('postgres', "SELECT pg_terminate_backend($worker)");
	ok( $primary->poll_query_until('postgres',
			"SELECT pid IS NOT NULL AND pid <> $worker AND rounds > 0 FROM replroute_worker_status()"),
		'the observing worker is restarted');
	my $reply = '';
	for (1 .. 50)
	{
		$reply = agent_ask($agent_port, "standby1\n") // '';
		last if $reply eq "up ready 100%\n";
		Time::HiRes::sleep(0.1);
	}
	is($reply, "up ready 100%\n", 'after a worker restart the agent answers up again');
	is(listener_pid($primary), $listener_pid, 'the listener was not restarted with the worker');
}

# --- the listener restarted: HAProxy keeps its state meanwhile, the new one answers
kill 'TERM', $listener_pid;
my $new_pid = '';
for (1 .. 100)
{
	$new_pid = listener_pid($primary);
	last if $new_pid ne '' && $new_pid ne $listener_pid;
	Time::HiRes::sleep(0.1);
}
ok($new_pid ne '' && $new_pid ne $listener_pid, "a terminated listener is restarted ($listener_pid -> $new_pid)");
my $after = '';
for (1 .. 50)
{
	$after = agent_ask($agent_port, "standby1\n") // '';
	last if $after eq "up ready 100%\n";
	Time::HiRes::sleep(0.1);
}
is($after, "up ready 100%\n", 'the restarted listener answers on the same port');
($ok) = wait_haproxy_status($haproxy, 'standby1', qr/^UP$/);
ok($ok, 'haproxy: standby1 UP after the listener restart');

# --- a port in use: a clear log line, retries, and it takes the port once free
{
	my $busy_port = PostgreSQL::Test::Cluster::get_free_port();
	my $holder = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $busy_port, Listen => 5, ReuseAddr => 1)
	  or die "cannot hold port $busy_port: $!";
	my $log_offset = -s $primary->logfile;
	$primary->safe_psql('postgres', "ALTER SYSTEM SET replroute.http_port = $busy_port");
	$primary->reload;
	ok( $primary->wait_for_log(qr/replroute listener: could not listen for the HTTP on port $busy_port: .*Address already in use/, $log_offset),
		'port in use: a clear log line');
	close $holder;
	my $st = 0;
	for (1 .. 100)
	{
		($st) = http_get($busy_port, '/readers');
		last if $st == 200;
		Time::HiRes::sleep(0.1);
	}
	is($st, 200, 'port in use: served once the port is free (retried)');
	$primary->safe_psql('postgres', "ALTER SYSTEM RESET replroute.http_port");
	$primary->reload;
}

# --- promotion: the new primary's listener answers as a primary
stop_haproxy($haproxy);
$primary->stop('immediate');
$s1->promote;
my $promoted = '';
for (1 .. 100)
{
	$promoted = agent_ask($s1->{rr_agent_port}, "standby2\n") // '';
	last if $promoted ne '' && $promoted !~ /this server is a standby/;
	Time::HiRes::sleep(0.1);
}
unlike($promoted, qr/this server is a standby/, "after promotion standby1's listener answers as a primary ($promoted)" =~ s/\n//r);
like($promoted, qr/^(up|down|drain)/, 'and in the agent protocol');

$s1->stop;
$s2->stop;

sub children_of
{
	my ($parent) = @_;
	my @children;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open my $fh, '<', $stat or next;
		my $line = <$fh> // next;
		push @children, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $parent;
	}
	return @children;
}
done_testing();
