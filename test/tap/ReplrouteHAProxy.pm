# Helpers of the listener suites (02x_*.pl): asking replroute's agent and
# HTTP ports directly, and running Debian's haproxy in front of the standbys
# with the agent check of docs/haproxy.md.
package ReplrouteHAProxy;

use strict;
use warnings;
use Exporter 'import';
use IO::Socket::INET;
use IO::Socket::UNIX;
use IPC::Run;
use Time::HiRes ();
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(agent_ask http_get haproxy_config start_haproxy stop_haproxy
  haproxy_servers wait_haproxy_status server_of);

my @haproxies;
END { kill 'TERM', map { $_->{pid} } @haproxies if @haproxies; }

# Sends $line to the agent port, returns the reply (undef if none came).
sub agent_ask
{
	my ($port, $line) = @_;
	my $sock = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $port,
		Proto => 'tcp',
		Timeout => 5) or return undef;
	$sock->autoflush(1);
	print $sock $line;
	my $reply = '';
	my $rin = '';
	vec($rin, fileno($sock), 1) = 1;
	my $deadline = Time::HiRes::time() + 5;
	for (;;)
	{
		my $left = $deadline - Time::HiRes::time();
		last if $left <= 0;
		my $rout = $rin;
		last unless select($rout, undef, undef, $left) > 0;
		my $got = sysread($sock, my $buf, 65536);
		last if !$got;
		$reply .= $buf;
	}
	close $sock;
	return $reply;
}

# GET $path (or a raw request) from the HTTP port; returns (status, headers, body).
sub http_get
{
	my ($port, $path, %opt) = @_;
	my $request = $opt{raw} // "GET $path HTTP/1.1\r\nHost: test\r\n\r\n";
	my $reply = agent_ask($port, $request) // '';
	my ($head, $body) = split /\r\n\r\n/, $reply, 2;
	my ($status) = ($head // '') =~ m{^HTTP/1\.1 (\d{3}) };
	return ($status // 0, $head // '', $body // '');
}

# The configuration docs/haproxy.md documents, for $standbys (name => node)
# with their agent on 127.0.0.1:$agent_port and $primary as the backup.
sub haproxy_config
{
	my (%o) = @_;
	my $servers = '';
	for my $name (sort keys %{ $o{standbys} })
	{
		my $node = $o{standbys}{$name};
		$servers .=
		    "    server $name 127.0.0.1:"
		  . $node->port
		  . " weight 100 check agent-check agent-addr 127.0.0.1 agent-port $o{agent_port}"
		  . " agent-send \"$name\\n\" agent-inter 100ms\n";
	}
	$servers .= "    server primary 127.0.0.1:" . $o{primary}->port . " backup check\n";
	return <<"EOF";
global
    stats socket $o{dir}/haproxy.sock mode 600 level admin
    log stdout format raw local0 info

defaults
    mode tcp
    log global
    timeout connect 1s
    timeout client 1m
    timeout server 1m
    timeout check 1s

listen replroute_reads
    bind 127.0.0.1:$o{read_port}
    balance roundrobin
    option redispatch 1
$servers
EOF
}

# Starts haproxy -db (foreground) with the config in $dir; returns a handle.
sub start_haproxy
{
	my (%o) = @_;
	my $cfg = "$o{dir}/haproxy.cfg";
	open my $fh, '>', $cfg or die "$cfg: $!";
	print $fh haproxy_config(%o);
	close $fh;
	my $log = "$o{dir}/haproxy.log";
	my $h = IPC::Run::start([ '/usr/sbin/haproxy', '-db', '-f', $cfg ], '<', \undef, '>', $log, '2>&1');
	my $self = { run => $h, pid => $h->{KIDS}[0]{PID}, dir => $o{dir}, log => $log };
	push @haproxies, $self;
	for (1 .. 100)
	{
		last if -S "$o{dir}/haproxy.sock";
		Time::HiRes::sleep(0.1);
	}
	return $self;
}

sub stop_haproxy
{
	my ($self) = @_;
	$self->{run}->signal('TERM');
	$self->{run}->finish;
	@haproxies = grep { $_ != $self } @haproxies;
}

# name => { status => UP|DOWN|DRAIN|..., weight => N, check => agent status }
# from the stats socket's `show stat`.
sub haproxy_servers
{
	my ($self) = @_;
	my $sock = IO::Socket::UNIX->new(Peer => "$self->{dir}/haproxy.sock", Type => SOCK_STREAM)
	  or return {};
	print $sock "show stat\n";
	my @lines = <$sock>;
	close $sock;
	my @cols = split /,/, ((shift @lines) // '') =~ s/^# //r;
	my %servers;
	for my $line (@lines)
	{
		chomp $line;
		next if $line eq '';
		my %row;
		@row{@cols} = split /,/, $line, -1;
		next if !defined $row{svname} || $row{svname} =~ /^(FRONTEND|BACKEND)$/;
		$servers{ $row{svname} } = \%row;
	}
	return \%servers;
}

# Polls until server $name's status matches $re; returns (ok, seconds waited, row).
sub wait_haproxy_status
{
	my ($self, $name, $re, $limit) = @_;
	$limit //= 30;
	my $t0 = Time::HiRes::time();
	my $row = {};
	while (Time::HiRes::time() - $t0 < $limit)
	{
		$row = haproxy_servers($self)->{$name} // {};
		return (1, Time::HiRes::time() - $t0, $row) if ($row->{status} // '') =~ $re;
		Time::HiRes::sleep(0.02);
	}
	return (0, Time::HiRes::time() - $t0, $row);
}

# Which server answered a new connection through HAProxy's read port:
# (its port, or undef with the error).
sub server_of
{
	my ($read_port) = @_;
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(
		[
			'psql', '-X', '-At', '-h', '127.0.0.1', '-p', $read_port,
			'-d', 'postgres', '-c', 'SELECT inet_server_port()'
		],
		'>', \$stdout, '2>', \$stderr);
	chomp $stdout;
	return $ok ? ($stdout, '') : (undef, $stderr);
}

1;
