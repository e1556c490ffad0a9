"""The cluster that scripts/rr-cluster starts, as the Django integration test
and the router comparison see it: a primary on base_port and standby1..2 on
the next ports, all on 127.0.0.1, superuser postgres."""

import os
import pwd
import subprocess


class ClusterBase:
    def __init__(self, directory, base_port):
        import psycopg2  # not needed by the unit tests that share this folder

        self.psycopg2 = psycopg2
        self.dir = os.path.abspath(directory)
        self.base = base_port
        self.ports = {"primary": base_port, "standby1": base_port + 1, "standby2": base_port + 2}
        self.names = {port: name for name, port in self.ports.items()}
        self.bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                     check=True).stdout.strip()

    def sql(self, node, query, params=None):
        conn = self.psycopg2.connect(host="127.0.0.1", port=self.ports[node], user="postgres",
                                     dbname="postgres", connect_timeout=5)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def pg_ctl(self, node, *args):
        """pg_ctl as the owner of the data directory (root cannot run a server)."""
        datadir = os.path.join(self.dir, node)
        cmd = [os.path.join(self.bindir, "pg_ctl"), "-D", datadir] + list(args)
        owner = os.stat(datadir).st_uid
        if os.geteuid() == 0 and owner != 0:
            cmd = ["runuser", "-u", pwd.getpwuid(owner).pw_name, "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd="/")
