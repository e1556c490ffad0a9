#!/usr/bin/python3
"""Runs SQL statements over real client connections and reports, after each,
the value of replroute.commit_lsn that the server sent in ParameterStatus
messages (what a driver sees with no query of its own).

Usage: param_status.py NAME=CONNSTR ...  <program.json
The program is a JSON list of [NAME, SQL] pairs, run in order; connections
open on first use, in autocommit mode, so that BEGIN/COMMIT/PREPARE are the
statements given.  Prints a JSON list with one object per statement:
{"conn", "sql", "reported", "error" (SQLSTATE or null), "rows"}.
"reported" is null when the server never sent the parameter.  In SQL,
{reported:NAME} stands for the value connection NAME last reported, so that a
program can pass a commit position from a primary to a standby as a client
would.
"""
import json
import sys

import psycopg2

PARAM = 'replroute.commit_lsn'


def main():
    connstrs = dict(arg.split('=', 1) for arg in sys.argv[1:])
    program = json.load(sys.stdin)
    conns = {}
    out = []
    for name, sql in program:
        if name not in conns:
            conns[name] = psycopg2.connect(connstrs[name])
            conns[name].autocommit = True
            out.append({'conn': name, 'sql': '(connect)', 'error': None, 'rows': None,
                        'reported': conns[name].get_parameter_status(PARAM)})
        conn = conns[name]
        for other, oconn in conns.items():
            sql = sql.replace('{reported:%s}' % other, oconn.get_parameter_status(PARAM) or '')
        error, rows = None, None
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                if cur.description is not None:
                    rows = [[None if v is None else str(v) for v in row] for row in cur.fetchall()]
        except psycopg2.Error as exc:
            error = exc.pgcode
        out.append({'conn': name, 'sql': sql, 'error': error, 'rows': rows,
                    'reported': conn.get_parameter_status(PARAM)})
    for conn in conns.values():
        conn.close()
    json.dump(out, sys.stdout, indent=1)


if __name__ == '__main__':
    main()
