#!/usr/bin/python3
"""replroute_django with the primary behind a real PgBouncer (transaction pooling).

    scripts/rr-cluster start DIR --base-port P
    /usr/bin/python3 clients/django/tests/behind_pgbouncer.py --cluster-dir DIR --base-port P

Starts Debian's pgbouncer on 127.0.0.1:P+10 (--pgbouncer-port), in front of
the primary, pool_mode = transaction, two server connections, and stops it
at the end, also on failure. PgBouncer refuses to run as root: run as root,
it runs as the owner of the cluster's data directories. The standbys are
reached directly; the LISTEN connection goes to the primary directly too
(LISTEN cannot work through transaction pooling).

PgBouncer 1.18 forwards only the parameters it knows to the client, so
replroute.commit_lsn does not arrive and the router falls back to one
query, SELECT pg_current_wal_insert_lsn(), after each write. The checks
hold whichever way the position arrives; the script reports which way it
did. Standby2's replay is paused with the lag bounds off, so it stays
routable and stale: only read-your-writes stands between a read and it.
Closes with `N passed, N failed`.
"""

import argparse
import collections
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from integration import RESULTS, Cluster, check, info, served  # noqa: E402

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class PgBouncer:
    def __init__(self, cluster, port):
        self.cluster = cluster
        self.port = port
        self.dir = None
        self.proc = None

    def start(self, timeout=15.0):
        owner = os.stat(os.path.join(self.cluster.dir, "primary")).st_uid
        self.dir = tempfile.mkdtemp(prefix="rr-pgbouncer.")
        os.chmod(self.dir, 0o755)
        conf = os.path.join(self.dir, "pgbouncer.ini")
        users = os.path.join(self.dir, "userlist.txt")
        with open(users, "w") as f:
            f.write('"postgres" ""\n')
        with open(conf, "w") as f:
            f.write("""[databases]
postgres = host=127.0.0.1 port=%d dbname=postgres user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
ignore_startup_parameters = extra_float_digits
logfile = %s
server_check_delay = 0
""" % (self.cluster.ports["primary"], self.port, users, os.path.join(self.dir, "pgbouncer.log")))
        cmd = [PGBOUNCER, conf]
        if os.geteuid() == 0:
            user = pwd.getpwuid(owner).pw_name if owner != 0 else "replroute"
            os.chown(self.dir, pwd.getpwnam(user).pw_uid, -1)
            for path in (conf, users):
                os.chown(path, pwd.getpwnam(user).pw_uid, -1)
            cmd = ["runuser", "-u", user, "--"] + cmd
        self.proc = subprocess.Popen(cmd, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pgbouncer exited with %s: %s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("pgbouncer did not listen on %d within %.0f s: %s" % (self.port, timeout, self.log()))

    def log(self):
        try:
            with open(os.path.join(self.dir, "pgbouncer.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            # runuser passes SIGTERM on to pgbouncer; the whole session goes.
            try:
                os.killpg(self.proc.pid, 15)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def configure_django(base_port, bouncer_port):
    sys.path[:0] = [PACKAGE_ROOT, os.path.join(PACKAGE_ROOT, "example")]
    from django.conf import settings

    def db(port, **extra):
        return dict({"ENGINE": "django.db.backends.postgresql", "NAME": "postgres", "USER": "postgres",
                     "HOST": "127.0.0.1", "PORT": str(port), "OPTIONS": {"connect_timeout": 2}}, **extra)

    settings.configure(
        SECRET_KEY="pgbouncer-test-not-secret",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF="exampleproject.urls",
        INSTALLED_APPS=["replroute_django", "shop"],
        MIDDLEWARE=["replroute_django.middleware.ReadYourWritesMiddleware"],
        DATABASES={
            # Transaction pooling: no server-side cursors (they live in a
            # session), as Django's documentation says for PgBouncer.
            "default": db(bouncer_port, DISABLE_SERVER_SIDE_CURSORS=True),
            "direct": db(base_port),
            "replica1": db(base_port + 1),
            "replica2": db(base_port + 2),
        },
        DATABASE_ROUTERS=["replroute_django.router.ReplrouteRouter"],
        REPLROUTE={
            "PRIMARY": "default",
            "NODES": {"standby1": "replica1", "standby2": "replica2"},
            "LISTEN": "direct",
        },
        LOGGING={"version": 1, "handlers": {"console": {"class": "logging.StreamHandler"}},
                 "loggers": {"replroute_django": {"handlers": ["console"], "level": "WARNING"}}},
    )
    import django

    django.setup()


def cycles_in_threads(cl, Item, threads, per_thread):
    """write-then-read cycles in several threads (so that PgBouncer hands
    their transactions to shared server connections); returns counters."""
    from django.db import connections
    from django.db.models import F
    from replroute_django import read_your_writes

    lock = threading.Lock()
    by = collections.Counter()
    stale = []
    errors = []

    def worker(k):
        try:
            bumped = Item.objects.create(name="bumped-%d" % k, count=0)
            for i in range(per_thread):
                with read_your_writes():
                    if i % 2 == 0:
                        new = Item.objects.create(name="pgb-%d-%d" % (k, i), count=i)
                        obj, port = served(Item.objects.filter(pk=new.pk))
                        good = obj is not None and obj.name == "pgb-%d-%d" % (k, i)
                    else:
                        Item.objects.filter(pk=bumped.pk).update(count=F("count") + 1)
                        obj, port = served(Item.objects.filter(pk=bumped.pk))
                        good = obj is not None and obj.count == (i + 1) // 2
                with lock:
                    if not good:
                        stale.append(i)
                    by[cl.names.get(port, port) if obj else "missing"] += 1
        except Exception as exc:
            with lock:
                errors.append(repr(exc))
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)
    return by, stale, errors


def run(cl, args):
    from replroute_django.conf import get_config
    from django.test import override_settings

    phases = [("as reported", {})]
    phases.append(("by the fallback query (REPORTED_POSITION False)", {"REPORTED_POSITION": False}))
    prepare(cl, args)
    for name, changes in phases:
        from django.conf import settings

        with override_settings(REPLROUTE=dict(settings.REPLROUTE, **changes)):
            info("-- positions %s" % name)
            ryw(cl, args, name, get_config())


def prepare(cl, args):
    from django.db import connection
    from shop.models import Item

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS shop_item")
    with connection.schema_editor() as editor:
        editor.create_model(Item)

    # What arrives of replroute.commit_lsn through PgBouncer: at connect
    # time (PgBouncer sends the client its own fixed set of parameters) and
    # with the reply to a commit (relayed from the server).
    through = cl.psycopg2.connect(host="127.0.0.1", port=args.pgbouncer_port, user="postgres", dbname="postgres")
    through.autocommit = True
    at_connect = through.get_parameter_status("replroute.commit_lsn")
    with through.cursor() as cursor:
        cursor.execute("INSERT INTO shop_item (name, count, is_available, average, date_created) "
                       "VALUES ('probe', 0, true, 0, now())")
    at_commit = through.get_parameter_status("replroute.commit_lsn")
    through.close()
    info("replroute.commit_lsn through PgBouncer: at connect %r, after a commit %r" % (at_connect, at_commit))


def ryw(cl, args, phase, config):
    from django.db import connections
    from django.test import Client
    from replroute_django.engine import engine
    from shop.models import Item

    # Bounds off: the paused standby stays routable.
    cl.set_guc("replroute.max_lag_bytes", "-1")
    cl.set_guc("replroute.max_replay_lag", "-1")
    cl.refresh()
    cl.sql("standby2", "SELECT pg_wal_replay_pause()")
    try:
        ok = cl.wait("standby2 routable while paused", lambda: cl.routable("standby2"), timeout=10)
        check("paused standby2 stays routable with the bounds off", ok, str(cl.node("standby2")))
        engine().reset()
        started = time.monotonic()
        by, stale, errors = cycles_in_threads(cl, Item, args.threads, args.cycles // args.threads)
        elapsed = time.monotonic() - started
        counts = dict(engine().counts)
        info("%d write-then-read cycles in %d threads through PgBouncer in %.1f s; reads served by %s" % (
            args.cycles, args.threads, elapsed, dict(by)))
        info("how the positions arrived: %d reported (ParameterStatus), %d by the fallback query; engine: %s" % (
            counts.get("reported", 0), counts.get("position_queries", 0), counts))
        for e in errors[:5]:
            info("error: " + e)
        check("write-then-read cycles behind PgBouncer, positions %s: no error" % phase, not errors,
              "%d errors" % len(errors))
        check("write-then-read cycles behind PgBouncer, positions %s: zero stale reads" % phase,
              not stale and by["missing"] == 0, "%d stale" % len(stale))
        if config.reported_position:
            check("positions arrived as ParameterStatus through PgBouncer", counts.get("reported", 0) > 0,
                  str(counts))
        else:
            check("positions located by the fallback query through PgBouncer",
                  counts.get("reported", 0) == 0 and counts.get("position_queries", 0) > 0, str(counts))
        check("every write's position was known (reported or located)",
              counts.get("reported", 0) + counts.get("position_queries", 0) >= sum(by.values()), str(counts))
        check("no read after a write landed on the paused standby", by["standby2"] == 0, str(dict(by)))
        check("reads after writes went to the standby that replays", by["standby1"] > 0, str(dict(by)))

        # POST, redirect, GET in the next request: the position in the cookie.
        client = Client()
        http_stale = 0
        http_by = collections.Counter()
        for i in range(args.http_cycles):
            response = client.post("/items/new", {"name": "http-%d" % i, "count": "1"}, follow=True)
            if response.status_code != 200 or response.json().get("name") != "http-%d" % i:
                http_stale += 1
            else:
                http_by[response.json().get("db")] += 1
        connections.close_all()
        info("GET after redirect served by alias: %s" % dict(http_by))
        check("%d POST/redirect/GET cycles behind PgBouncer, positions %s: zero stale reads"
              % (args.http_cycles, phase), http_stale == 0, "%d stale" % http_stale)
        check("no GET after redirect landed on the paused standby", http_by["replica2"] == 0, str(dict(http_by)))
    finally:
        cl.sql("standby2", "SELECT pg_wal_replay_resume()")
        cl.restore_gucs()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster-dir", required=True)
    parser.add_argument("--base-port", type=int, default=25432)
    parser.add_argument("--pgbouncer-port", type=int, default=None, help="default: base port + 10")
    parser.add_argument("--cycles", type=int, default=400)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--http-cycles", type=int, default=50)
    args = parser.parse_args()
    port = args.pgbouncer_port = args.pgbouncer_port or args.base_port + 10

    cl = Cluster(args.cluster_dir, args.base_port)
    bouncer = PgBouncer(cl, port)
    try:
        ready = cl.wait("both standbys routable",
                        lambda: cl.routable("standby1") and cl.routable("standby2"), timeout=30)
        if check("cluster up, both standbys routable", ready):
            bouncer.start()
            check("pgbouncer (%s) listening on 127.0.0.1:%d, pool_mode = transaction" % (PGBOUNCER, port), True)
            configure_django(args.base_port, port)
            run(cl, args)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        check("pgbouncer run completed", False, repr(exc))
    finally:
        try:
            cl.restore_gucs()
        except Exception:
            pass
        bouncer.stop()
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
