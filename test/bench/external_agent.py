#!/usr/bin/python3
"""The external agent replroute's listener replaces, for comparison in
test/bench/haproxy.py: a separate process that answers HAProxy's agent check
from replroute_nodes over one persistent connection to the primary, as a new
user would write it.

    external_agent.py PORT DSN
"""
import socketserver
import sys
import threading

import psycopg2

port, dsn = int(sys.argv[1]), sys.argv[2]
conn = psycopg2.connect(dsn)
conn.autocommit = True
lock = threading.Lock()


class Agent(socketserver.StreamRequestHandler):
    def handle(self):
        name = self.rfile.readline(128).decode(errors="replace").strip()
        try:
            with lock, conn.cursor() as cur:
                cur.execute("SELECT state, routable, drained, weight, reason "
                            "FROM replroute_nodes WHERE name = %s", (name,))
                row = cur.fetchone()
        except Exception as e:
            row, reason = None, str(e).splitlines()[0]
        else:
            reason = "no such node"
        if row is None:
            reply = f"down #{reason}"
        elif row[1]:
            reply = f"up ready {min(row[3], 256)}%"
        elif row[2]:
            reply = "drain"
        else:
            reply = f"down #{row[0]}: {(row[4] or '').splitlines()[0] if row[4] else ''}"
        self.wfile.write((reply + "\n").encode())


socketserver.ThreadingTCPServer.allow_reuse_address = True
with socketserver.ThreadingTCPServer(("127.0.0.1", port), Agent) as server:
    server.serve_forever()
