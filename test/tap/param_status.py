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
would.  SQL that starts with "extended:" is sent with the extended query
protocol instead (libpq's PQexecParams on the same connection: Parse, Bind,
Execute, Sync), as drivers such as pgjdbc do; its rows are not returned.
"""
import ctypes
import ctypes.util
import json
import sys

import psycopg2

libpq = ctypes.CDLL(ctypes.util.find_library('pq'))
libpq.PQexecParams.restype = ctypes.c_void_p
libpq.PQexecParams.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p,
                               ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
libpq.PQresultStatus.argtypes = [ctypes.c_void_p]
libpq.PQresultErrorField.restype = ctypes.c_char_p
libpq.PQresultErrorField.argtypes = [ctypes.c_void_p, ctypes.c_int]
libpq.PQclear.argtypes = [ctypes.c_void_p]
PGRES_FATAL_ERROR = 7
PG_DIAG_SQLSTATE = ord('C')


def exec_extended(conn, sql):
    """Runs sql with the extended protocol; returns its SQLSTATE or None."""
    res = libpq.PQexecParams(conn.pgconn_ptr, sql.encode(), 0, None, None, None, None, 0)
    try:
        if libpq.PQresultStatus(res) == PGRES_FATAL_ERROR:
            return libpq.PQresultErrorField(res, PG_DIAG_SQLSTATE).decode()
        return None
    finally:
        libpq.PQclear(res)

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
        if sql.startswith('extended:'):
            error = exec_extended(conn, sql[len('extended:'):])
            out.append({'conn': name, 'sql': sql, 'error': error, 'rows': None,
                        'reported': conn.get_parameter_status(PARAM)})
            continue
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
