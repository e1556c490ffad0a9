# Security of the SQL surface: every function that changes or reads state
# through names runs with a pinned search_path (the routing functions, which
# look up no names, deliberately do not); a hostile search_path that shadows
# pg_catalog's operators and aggregates, or the registry table itself, does
# not change what the registry functions do; a role without replroute_admin
# or pg_monitor changes nothing and sees nothing but routing answers; and a
# standby's replication password appears nowhere replroute shows or logs.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;
use ReplrouteFaults;

my $password = 'Rr-S3cret-Pw-4711';
my $primary = new_faults_primary('primary');

# --- pinned search_path, no SECURITY DEFINER
my $unpinned = $primary->safe_psql(
	'postgres', q(
SELECT string_agg(p.proname, ',' ORDER BY p.proname)
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'replroute'
WHERE NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)));
is($unpinned, 'replroute_pick_reader,replroute_readers',
	'every function but pick_reader and readers pins search_path = pg_catalog, pg_temp');
is( $primary->safe_psql(
		'postgres', q(
SELECT count(*) FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'replroute'
WHERE p.prosecdef)), '0', 'no function is SECURITY DEFINER');

# --- a hostile search_path: operators and aggregates that shadow
# pg_catalog's, a fake registry table in a schema first on the path and in
# pg_temp.  Every shadowing function records its call.
$primary->safe_psql(
	'postgres', q(
CREATE ROLE rr_admin LOGIN IN ROLE replroute_admin;
CREATE SCHEMA evil;
GRANT ALL ON SCHEMA evil TO PUBLIC;
CREATE TABLE evil.calls(f text);
GRANT ALL ON evil.calls TO PUBLIC;
CREATE TABLE evil.replroute_node (LIKE public.replroute_node);
GRANT ALL ON evil.replroute_node TO PUBLIC;
CREATE FUNCTION evil.texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.calls VALUES ('='); RETURN false; END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
CREATE FUNCTION evil.or_step(boolean, boolean) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.calls VALUES ('bool_or'); RETURN false; END $$;
CREATE AGGREGATE evil.bool_or(boolean) (SFUNC = evil.or_step, STYPE = boolean);
CREATE FUNCTION evil.count_step(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN INSERT INTO evil.calls VALUES ('count'); RETURN 0; END $$;
CREATE AGGREGATE evil.count(*) (SFUNC = evil.count_step, STYPE = bigint, INITCOND = '0');
));
my $hostile = q(SET search_path = evil, pg_catalog, public;
CREATE TEMP TABLE replroute_node (LIKE public.replroute_node););
my ($ret, $out, $err) = $primary->psql(
	'postgres', qq(SET ROLE rr_admin;
$hostile
SELECT replroute_add_node('sec1', 'h1');
SELECT replroute_add_node('sec2', 'h2');
SELECT replroute_set_weight('sec1', 5);
SELECT replroute_drain('sec2');
SELECT replroute_remove_node('sec2');
SELECT replroute_add_node('sec1', 'again');
SELECT count(*) FROM pg_temp.replroute_node;),
	on_error_stop => 0);
like($err, qr/replroute node "sec1" already exists/,
	'hostile search_path: a duplicate is still found (42710, not the primary key)');
is( $primary->safe_psql('postgres',
		q(SELECT string_agg(name || ':' || weight || ':' || drained, ',' ORDER BY name) FROM public.replroute_node)),
	'sec1:5:false', "hostile search_path: the extension's registry changed as asked");
is($primary->safe_psql('postgres', 'SELECT count(*) FROM evil.replroute_node'),
	'0', 'hostile search_path: the fake registry in the first schema is untouched');
like($out, qr/^0$/m, 'hostile search_path: the registry in pg_temp is untouched');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM evil.calls'),
	'0', 'hostile search_path: no shadowing operator or aggregate was called');
($ret, $out, $err) = $primary->psql('postgres',
	qq($hostile SELECT pg_catalog.count(*) >= 0 FROM replroute_nodes; SELECT replroute_refresh();
SELECT pg_catalog.count(*) >= 0 FROM replroute_events; SELECT replroute_pick_reader() IS NULL;));
is($ret, 0, 'hostile search_path: views, refresh and pick work') or diag($err);
is($primary->safe_psql('postgres', 'SELECT count(*) FROM evil.calls'),
	'0', 'hostile search_path: the views call nothing of it either');
$primary->safe_psql('postgres', "SELECT replroute_remove_node('sec1')");

# --- privileges: a plain login role routes, and does nothing else
$primary->safe_psql('postgres', 'CREATE ROLE rr_plain LOGIN');
for my $sql (
	"SELECT replroute_add_node('p1', 'h')",
	"SELECT replroute_remove_node('p1')",
	"SELECT replroute_set_weight('p1', 1)",
	"SELECT replroute_drain('p1')",
	"SELECT replroute_undrain('p1')",
	'SELECT replroute_refresh()',
	'SELECT * FROM replroute_nodes',
	'SELECT * FROM replroute_node_status()',
	'SELECT * FROM replroute_events',
	'SELECT * FROM replroute_event_log()',
	'SELECT * FROM replroute_worker',
	'SELECT * FROM replroute_worker_status()',
	'SELECT * FROM replroute_node',
	"INSERT INTO replroute_node (name, host, port, weight, application_name) VALUES ('p1', 'h', 1, 1, 'p1')",
	'UPDATE replroute_node SET drained = true',
	'DELETE FROM replroute_node',
	'TRUNCATE replroute_node',
	"ALTER SYSTEM SET replroute.poll_interval = '1s'",
	"SELECT set_config('replroute.stale_after', '1h', false)")
{
	($ret, $out, $err) = $primary->psql('postgres', "SET ROLE rr_plain; $sql");
	like($err, qr/permission denied|must be superuser|cannot be changed now/,
		"a plain role is refused: $sql");
}
($ret, $out, $err) = $primary->psql('postgres',
	'SET ROLE rr_plain; SELECT replroute_pick_reader() IS NULL; SELECT count(*) FROM replroute_readers();
SELECT replroute_wait_for_replay(pg_current_wal_insert_lsn())');
is($ret, 0, 'a plain role routes and waits for replay') or diag($err);

# --- no password anywhere: a standby that authenticates with one
$primary->safe_psql(
	'postgres', qq(SET log_statement = 'none';
CREATE ROLE rr_repl LOGIN REPLICATION PASSWORD '$password';));
my $hba = $primary->data_dir . '/pg_hba.conf';
my $hba_text = slurp_file($hba);
open my $fh, '>', $hba or die;
print $fh "local replication rr_repl scram-sha-256\n$hba_text";
close $fh;
$primary->reload;
$primary->backup('b1');
$primary->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('standby1')");
my $standby = PostgreSQL::Test::Cluster->new('standby1');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
my ($host, $port) = ($primary->host, $primary->port);
$standby->append_conf('postgresql.conf', qq(
primary_conninfo = 'host=$host port=$port user=rr_repl password=$password application_name=standby1'
primary_slot_name = 'standby1'
));
$standby->start;
$primary->safe_psql('postgres',
	"SELECT replroute_add_node('standby1', '" . $standby->host . "', " . $standby->port . ')');
wait_routable($primary, 1);
is( $primary->safe_psql('postgres',
		"SELECT usename FROM pg_stat_replication WHERE application_name = 'standby1'"),
	'rr_repl', 'the standby streams as the role with a password');

my $shown = $primary->safe_psql(
	'postgres', q(
SELECT string_agg(x, E'\n') FROM (
	SELECT row_to_json(n)::text AS x FROM replroute_nodes n
	UNION ALL SELECT row_to_json(n)::text FROM replroute_node n
	UNION ALL SELECT row_to_json(e)::text FROM replroute_events e
	UNION ALL SELECT row_to_json(w)::text FROM replroute_worker w
	UNION ALL SELECT row_to_json(r)::text FROM replroute_readers() r
	UNION ALL SELECT row_to_json(s)::text FROM pg_settings s WHERE name LIKE 'replroute.%'
	UNION ALL SELECT row_to_json(a)::text FROM pg_stat_activity a
		WHERE backend_type NOT IN ('client backend', 'walsender')
	UNION ALL SELECT coalesce(p.proconfig::text, '') FROM pg_proc p WHERE p.proname LIKE 'replroute%'
) s));
like($shown, qr/standby1/, 'the views were read');
unlike($shown, qr/\Q$password\E/,
	'the password is in no view, registry row, event, setting or worker activity');
# Events and their NOTIFY: a round that logs a change, with a listener.
my ($lret, $listen, $lerr) = $primary->psql('postgres',
	"LISTEN replroute; SELECT replroute_drain('standby1'); SELECT replroute_refresh();
SELECT replroute_refresh(); SELECT 1");
# The second refresh waits for a round that began after the first one's
# commit, which sent the NOTIFY.
like($listen . $lerr, qr/Asynchronous notification "replroute" with payload ".*drained/,
	'the listener got the drain event');
unlike($listen . $lerr, qr/\Q$password\E/, 'the password is in no NOTIFY payload');
$primary->safe_psql('postgres', "SELECT replroute_undrain('standby1')");
wait_routable($primary, 1);
unlike(slurp_file($primary->logfile), qr/\Q$password\E/, "the password is not in the primary's log");
unlike(slurp_file($standby->logfile), qr/\Q$password\E/, "the password is not in the standby's log");

$standby->stop;
$primary->stop;
done_testing();
