--
-- Bad input gets an error with a fitting SQLSTATE and changes nothing.
--
-- try() runs a statement and shows SQLSTATE, message and detail, so that one
-- line per case pins the error code.
CREATE FUNCTION pg_temp.try(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	detail text;
BEGIN
	EXECUTE statement;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
	RETURN SQLSTATE || ': ' || SQLERRM
		|| CASE WHEN detail <> '' THEN ' [' || detail || ']' ELSE '' END;
END
$$;

SELECT replroute_add_node('ok1', 'db1.example.com');

-- NULL in each argument (22004); application_name NULL means "the name".
SELECT pg_temp.try($$SELECT replroute_add_node(NULL, 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', NULL)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', NULL)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, NULL)$$);
SELECT pg_temp.try($$SELECT replroute_remove_node(NULL)$$);
SELECT pg_temp.try($$SELECT replroute_set_weight(NULL, 1)$$);
SELECT pg_temp.try($$SELECT replroute_set_weight('ok1', NULL)$$);
SELECT pg_temp.try($$SELECT replroute_drain(NULL)$$);
SELECT pg_temp.try($$SELECT replroute_undrain(NULL)$$);

-- Names (22023): empty, too long, characters that are not allowed.
SELECT pg_temp.try($$SELECT replroute_add_node('', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node(repeat('a', 64), 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('a''b', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('a;b', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('a b', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('-a', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('a"b', 'h')$$);
SELECT pg_temp.try($$SELECT replroute_set_weight('a;b', 1)$$);
SELECT pg_temp.try($$SELECT replroute_drain('')$$);
SELECT pg_temp.try($$SELECT replroute_remove_node('a b')$$);
-- 63 bytes is the longest name.
SELECT pg_temp.try($$SELECT replroute_add_node(repeat('a', 63), 'h')$$);
SELECT replroute_remove_node(repeat('a', 63));

-- Hosts that would smuggle conninfo keywords or break quoting (22023).
SELECT pg_temp.try($$SELECT replroute_add_node('n', '')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'a b')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'x password=y')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h''q')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'host=evil')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h"q')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', E'h\\q')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', E'h\nq')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', repeat('h', 256))$$);

-- Ports outside 1..65535, weights outside 0..1000000 (22023).
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 0)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 65536)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', -1)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, -1)$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, 1000001)$$);
SELECT pg_temp.try($$SELECT replroute_set_weight('ok1', -1)$$);

-- application_name (22023): empty, quotes, too long.
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, 1, '')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, 1, 'a''b')$$);
SELECT pg_temp.try($$SELECT replroute_add_node('n', 'h', 5432, 1, repeat('a', 64))$$);

-- A duplicate (42710).
SELECT pg_temp.try($$SELECT replroute_add_node('ok1', 'other.example.com')$$);

-- An unknown node (42704); removing one just says false.
SELECT pg_temp.try($$SELECT replroute_set_weight('nope', 1)$$);
SELECT pg_temp.try($$SELECT replroute_drain('nope')$$);
SELECT pg_temp.try($$SELECT replroute_undrain('nope')$$);
SELECT replroute_remove_node('nope');

-- More nodes than replroute.max_nodes (53400); test/regress.conf sets 4.
SHOW replroute.max_nodes;
SELECT replroute_add_node('ok2', 'h2');
SELECT replroute_add_node('ok3', 'h3');
SELECT replroute_add_node('ok4', 'h4');
SELECT pg_temp.try($$SELECT replroute_add_node('ok5', 'h5')$$);

-- Once more with the full message and hint.
SELECT replroute_add_node('ok5', 'h5');
SELECT replroute_add_node('n', 'x password=y');
SELECT replroute_add_node(NULL, 'h');

-- Nothing above changed the registry.
SELECT name, host, port, weight, application_name, drained FROM replroute_node ORDER BY name;

SELECT replroute_remove_node(name) FROM replroute_node ORDER BY name;
