# ALTER EXTENSION replroute UPDATE from 1.0 gives exactly what a fresh 1.1
# install gives: the same member objects, function signatures, definitions,
# settings and privileges, view definitions, table columns, constraints,
# triggers, comments and configuration-dump registration, compared between
# two databases of one server (roles are cluster-wide, so the ACLs name the
# same roles).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ReplrouteTest;

my $node = new_primary('primary');
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');

is( $node->safe_psql(
		'upgraded', q(CREATE EXTENSION replroute VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'replroute')),
	'1.0', 'installed 1.0');
is( $node->safe_psql('upgraded', q(SELECT count(*) FROM pg_proc WHERE proname = 'replroute_wait_for_replay')),
	'0', '1.0 has no replroute_wait_for_replay');
# A registered node must survive the update.
$node->safe_psql('upgraded', q(INSERT INTO replroute_node (name, host, port, weight, application_name)
VALUES ('kept', 'h', 5432, 1, 'kept')));
is( $node->safe_psql(
		'upgraded', q(ALTER EXTENSION replroute UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'replroute')),
	'1.1', 'ALTER EXTENSION replroute UPDATE goes to 1.1');
is($node->safe_psql('upgraded', 'SELECT name FROM replroute_node'), 'kept',
	'the registry kept its rows');
is( $node->safe_psql(
		'fresh', q(CREATE EXTENSION replroute;
SELECT extversion FROM pg_extension WHERE extname = 'replroute')),
	'1.1', 'a fresh CREATE EXTENSION installs 1.1');

# Each query describes one aspect of the extension, one line per object, in
# a stable order, with no OIDs in it.
my $members = q(
	SELECT d.classid, d.objid, d.objsubid
	FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	  AND e.extname = 'replroute');
my %aspects = (
	'member objects' => qq(
SELECT pg_describe_object(classid, objid, objsubid) FROM ($members) m ORDER BY 1),
	'functions' => qq(
SELECT p.oid::regprocedure::text, pg_get_function_arguments(p.oid),
	pg_get_function_result(p.oid), p.prokind, p.provolatile, p.proparallel,
	p.proisstrict, p.prosecdef, p.proleakproof, p.procost, p.prorows,
	p.prosrc, p.probin, p.proconfig, p.proacl, l.lanname,
	obj_description(p.oid, 'pg_proc')
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.oid IN (SELECT objid FROM ($members) m WHERE classid = 'pg_proc'::regclass)
ORDER BY 1),
	'relations' => qq(
SELECT c.oid::regclass::text, c.relkind, c.relacl, c.relpersistence,
	pg_get_viewdef(c.oid), obj_description(c.oid, 'pg_class')
FROM pg_class c
WHERE c.oid IN (SELECT objid FROM ($members) m WHERE classid = 'pg_class'::regclass)
ORDER BY 1),
	'columns' => qq(
SELECT a.attrelid::regclass::text, a.attnum, a.attname,
	format_type(a.atttypid, a.atttypmod), a.attnotnull,
	pg_get_expr(ad.adbin, ad.adrelid), a.attacl, col_description(a.attrelid, a.attnum)
FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE a.attrelid IN (SELECT objid FROM ($members) m WHERE classid = 'pg_class'::regclass)
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY 1, 2),
	'constraints, indexes, triggers' => qq(
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conrelid IN (SELECT objid FROM ($members) m WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT indrelid::regclass::text, indexrelid::regclass::text, pg_get_indexdef(indexrelid)
FROM pg_index
WHERE indrelid IN (SELECT objid FROM ($members) m WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
FROM pg_trigger
WHERE tgrelid IN (SELECT objid FROM ($members) m WHERE classid = 'pg_class'::regclass)
  AND NOT tgisinternal
ORDER BY 1, 2, 3),
	'extension' => q(
SELECT e.extname, e.extversion, e.extrelocatable, n.nspname,
	(SELECT array_agg(c::regclass::text ORDER BY c::regclass::text) FROM unnest(e.extconfig) c),
	e.extcondition
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'replroute'),
	'roles' => q(
SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname LIKE 'replroute%' ORDER BY 1),
);

for my $aspect (sort keys %aspects)
{
	my $upgraded = $node->safe_psql('upgraded', $aspects{$aspect});
	my $fresh = $node->safe_psql('fresh', $aspects{$aspect});
	isnt($fresh, '', "$aspect: the query finds something");
	is($upgraded, $fresh, "$aspect: the update from 1.0 equals a fresh 1.1 install");
}

# The comparison covers the new function itself, with its privileges.
like( $node->safe_psql('upgraded', $aspects{functions}),
	qr/^replroute_wait_for_replay\(pg_lsn,interval\)\|lsn pg_lsn, timeout interval DEFAULT '00:00:00\.05'::interval\|boolean\|.*\{"search_path=pg_catalog, pg_temp"\}\|\{=X\//m,
	'the updated extension has replroute_wait_for_replay, pinned and executable by PUBLIC');

# The comparison sees a difference of privileges (it is not blind to ACLs).
$node->safe_psql('upgraded', 'GRANT EXECUTE ON FUNCTION replroute_refresh(interval) TO PUBLIC');
isnt($node->safe_psql('upgraded', $aspects{functions}),
	$node->safe_psql('fresh', $aspects{functions}),
	'a privilege granted in one database alone makes the functions differ');

# Both can be dropped and the function goes with the extension.
$node->safe_psql('upgraded', 'DROP EXTENSION replroute');
is($node->safe_psql('upgraded', q(SELECT count(*) FROM pg_proc WHERE proname LIKE 'replroute%')),
	'0', 'DROP EXTENSION after the update leaves no function behind');

$node->stop;
done_testing();
