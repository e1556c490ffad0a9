#!/usr/bin/python3
"""The tutorial's Django router and replroute_django's, side by side.

    scripts/rr-cluster start DIR --base-port P --standbys 2
    /usr/bin/python3 clients/django/bench/compare_routers.py --cluster-dir DIR --base-port P
    scripts/rr-cluster stop DIR

(clients/django/bench/compare-routers does the three steps, and stops the
cluster on failure too.) A benchmark, not a test: it prints figures and
asserts nothing.

One Django process, one cluster (a primary and two standbys), one workload,
two routers, switched between runs:

  tutorial   what the common tutorial describes: db_for_read picks at random
             among ['replica1', 'replica2', 'default'], checks that the
             connection opens (connections[alias].ensure_connection() in a
             try), falls back to the next alias on error; db_for_write ->
             'default'. Two replica aliases, one per standby.
  replroute  replroute_django.router.ReplrouteRouter, requests wrapped in its
             ReadYourWritesMiddleware (cookie storage), default settings.

The two use separate DATABASES aliases on the same three servers (tutorial:
default/replica1/replica2; replroute: rr_primary/rr_replica1/rr_replica2), so
replroute_django's execute wrappers never touch the tutorial's connections.
Every alias has CONN_MAX_AGE = 600 and connect_timeout = 2, and every request
is framed by Django's request_started/request_finished signals, which is what
closes a persistent connection that went bad, as under a real server.

Phases, each run once per router, the cluster restored in between (replay
resumed, standby restarted, until replroute_readers() lists both again):

  normal   nothing wrong
  paused   standby2's replay paused (pg_wal_replay_pause()) for the whole
           run, while the workload writes
  stopped  standby1 stopped with pg_ctl -m immediate --stop-after seconds
           into the run, when every thread holds persistent connections
  lagging  not timed: --lag-cycles write-then-read cycles in one thread,
           standby2 replaying --lag-ms behind (recovery_min_apply_delay)
           and standby1 drained, so that standby2 is the only standby
           replroute may use; counts stale reads

Workload: --threads threads (a threaded server's workers), each repeating
  POST  insert an Item, then read it back by pk through the router, in the
        same request (the poster's cookie jar is kept)
  GET   read the newest Item through the router (a plain read), twice; by
        other visitors without cookies, or with --gets-with-cookie by the
        poster, carrying the read-your-writes cookie of its POST
with no pause between requests, for --seconds per run or --max-cycles
cycles per thread, whichever ends first.

Figures, per router and phase:
  standby %     reads answered by a standby (every read asks its server for
                inet_server_port(), so a retried read counts where it ended;
                a read that found no row counts for the alias chosen)
  own write     POST reads that did not see the row their request just wrote
  > bound       plain reads that missed a row committed more than the lag
                bound before the read started (bound: the server's
                replroute.max_replay_lag unless --bound is given); "max"
                is the largest such staleness seen
  failed        reads that raised to the view (a 500 for the user)
  route µs      time inside db_for_read per read (time.perf_counter_ns
                around the router's method, summed over the calls one read
                makes): median and 99th percentile for the POST's read
                (right after its write), for the page views that carry
                the POST's position in their cookie (--gets-with-cookie),
                for both together, the median for plain reads (no
                position), and the 99th percentile of all. It includes any round trip
                the router makes (replroute: the wait on the standby for a
                read after a write, replroute_wait_for_replay(); the
                primary's WAL position when the commit did not report it;
                the readers list once per CACHE_TTL or event) and, with
                several threads, waits for the GIL. The detail lines also
                give each wait on a standby alone, as the client times it.
  replroute     the engine's counters per run: positions reported by the
                commit (ParameterStatus) or located by a query, waits that
                said true / false / missed their deadline.
"""

import argparse
import bisect
import collections
import contextlib
import os
import random
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(PACKAGE_ROOT, "tests"))
from rrcluster import ClusterBase  # noqa: E402

PORT_SELECT = {"served_port": "inet_server_port()"}
ALIAS_NODE = {"default": "primary", "replica1": "standby1", "replica2": "standby2",
              "rr_primary": "primary", "rr_replica1": "standby1", "rr_replica2": "standby2"}


# -- the cluster ----------------------------------------------------------


class Cluster(ClusterBase):
    def readers(self):
        try:
            return self.sql("primary", "SELECT count(*) FROM replroute_readers()")[0][0]
        except self.psycopg2.Error:
            return -1

    def wait_readers(self, want=2, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            n = self.readers()
            if n == want:
                return
            if time.monotonic() >= deadline:
                rows = self.sql("primary", "SELECT name, state, reason FROM replroute_nodes ORDER BY name")
                raise RuntimeError("replroute_readers() lists %s standbys after %.0f s, not %d: %s"
                                   % (n, timeout, want, rows))
            time.sleep(0.1)

    def max_replay_lag(self):
        """replroute.max_replay_lag in seconds, None when switched off."""
        ms = int(self.sql("primary", "SELECT setting FROM pg_settings WHERE name = 'replroute.max_replay_lag'")[0][0])
        return None if ms < 0 else ms / 1000.0

    def is_running(self, node):
        return os.path.exists(os.path.join(self.dir, node, "postmaster.pid"))


# -- Django ---------------------------------------------------------------


def configure_django(base_port):
    sys.path[:0] = [PACKAGE_ROOT, os.path.join(PACKAGE_ROOT, "example")]
    from django.conf import settings

    def db(port):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "CONN_MAX_AGE": 600,
            "OPTIONS": {"connect_timeout": 2},
        }

    settings.configure(
        SECRET_KEY="compare-routers-not-secret",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=["replroute_django", "shop"],
        DATABASES={
            # The tutorial's aliases.
            "default": db(base_port),
            "replica1": db(base_port + 1),
            "replica2": db(base_port + 2),
            # replroute_django's, on the same servers.
            "rr_primary": db(base_port),
            "rr_replica1": db(base_port + 1),
            "rr_replica2": db(base_port + 2),
        },
        DATABASE_ROUTERS=[SWITCH],
        REPLROUTE={
            "PRIMARY": "rr_primary",
            "NODES": {"standby1": "rr_replica1", "standby2": "rr_replica2"},
        },
        LOGGING={
            "version": 1,
            "handlers": {"null": {"class": "logging.NullHandler"}},
            # Its retry and skip warnings would interleave with the tables.
            "loggers": {"replroute_django": {"handlers": ["null"], "propagate": False}},
        },
    )
    import django

    django.setup()


class TutorialRouter:
    """The router the common tutorial builds, with two replicas."""

    choices = ["replica1", "replica2", "default"]

    def db_for_read(self, model, **hints):
        from django.db import connections

        order = random.sample(self.choices, len(self.choices))
        for alias in order:
            try:
                connections[alias].ensure_connection()
                return alias
            except Exception:
                continue
        return "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"


class SwitchRouter:
    """Delegates to the router of the current run and times db_for_read."""

    def __init__(self):
        self.active = None
        self.local = threading.local()

    def db_for_read(self, model, **hints):
        start = time.perf_counter_ns()
        alias = None
        try:
            alias = self.active.db_for_read(model, **hints)
            return alias
        finally:
            self.local.ns = getattr(self.local, "ns", 0) + time.perf_counter_ns() - start
            self.local.alias = alias

    def db_for_write(self, model, **hints):
        return self.active.db_for_write(model, **hints)

    def allow_relation(self, obj1, obj2, **hints):
        return self.active.allow_relation(obj1, obj2, **hints)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"


SWITCH = SwitchRouter()


# -- one run --------------------------------------------------------------


class Run:
    def __init__(self, cluster):
        self.cluster = cluster
        self.lock = threading.Lock()
        self.wait_ns = []                      # replroute: each wait on a standby, client side
        self.served = collections.Counter()   # node name -> reads
        self.route_ns = {"write": [], "cookie": [], "plain": []}   # per read, by kind
        self.failed = 0
        self.failed_writes = 0
        self.errors = collections.Counter()
        self.ryw_reads = 0
        self.ryw_missed = 0
        self.plain = []                        # (started, newest id seen)
        self.writes = []                       # (id, committed by)

    def read(self, kind, query):
        """Run one read through the router; returns the object or raises."""
        SWITCH.local.ns = 0
        SWITCH.local.alias = None
        try:
            obj = query()
        except Exception as exc:
            with self.lock:
                self.failed += 1
                self.errors[type(exc).__name__ + ": " + str(exc).strip().splitlines()[0][:80]] += 1
                self.route_ns[kind].append(SWITCH.local.ns)
            raise
        with self.lock:
            self.route_ns[kind].append(SWITCH.local.ns)
            if obj is not None:
                self.served[self.cluster.names.get(obj.served_port, obj.served_port)] += 1
            else:
                # No row, no inet_server_port(): the server is the one of the
                # alias the router chose (the primary never misses a
                # committed row, so it is a standby either way).
                self.served[ALIAS_NODE.get(SWITCH.local.alias, "standby?")] += 1
        return obj


def make_views(run):
    from django.http import HttpResponse, HttpResponseServerError
    from shop.models import Item

    def post(request):
        try:
            item = Item.objects.create(name=request.POST["name"], count=random.randint(0, 100),
                                       is_available=True, average=random.random())
        except Exception:
            with run.lock:
                run.failed_writes += 1
            return HttpResponseServerError("write failed")
        committed = time.monotonic()
        with run.lock:
            run.writes.append((item.pk, committed))
        try:
            obj = run.read("write", lambda: Item.objects.extra(select=PORT_SELECT).filter(pk=item.pk).first())
        except Exception:
            return HttpResponseServerError("read failed")
        with run.lock:
            run.ryw_reads += 1
            if obj is None:
                run.ryw_missed += 1
        return HttpResponse(status=303)

    def get(request):
        started = time.monotonic()
        kind = "cookie" if request.COOKIES else "plain"
        try:
            obj = run.read(kind, lambda: Item.objects.extra(select=PORT_SELECT).order_by("-id").first())
        except Exception:
            return HttpResponseServerError("read failed")
        with run.lock:
            run.plain.append((started, obj.pk if obj is not None else 0))
        return HttpResponse("ok")

    def dispatch(request):
        return post(request) if request.method == "POST" else get(request)

    return dispatch


def browser(handler, deadline, max_cycles, stop, tag, gets_with_cookie):
    """One thread: a user who posts an item, then two page views.

    The page views are other visitors' (no cookie) unless gets_with_cookie:
    then they are the poster's own, carrying the read-your-writes cookie the
    POST's response set, as a browser following the redirect would.
    """
    from django.core.signals import request_finished, request_started
    from django.db import connections
    from django.test import RequestFactory

    factory = RequestFactory()
    jar = {}
    try:
        for cycle in range(max_cycles):
            if stop.is_set() or time.monotonic() >= deadline:
                break
            for step in range(3):
                if step == 0:
                    request = factory.post("/items/new", {"name": "%s-%d" % (tag, cycle)})
                else:
                    request = factory.get("/items/")
                request.COOKIES = dict(jar) if (step == 0 or gets_with_cookie) else {}
                # What WSGIHandler does around every request: among others,
                # close_old_connections() drops a persistent connection that
                # had an error and no longer answers.
                request_started.send(sender=None, environ=request.META)
                try:
                    response = handler(request)
                finally:
                    request_finished.send(sender=None)
                if step == 0 or gets_with_cookie:
                    for name, morsel in response.cookies.items():
                        if morsel.value and morsel["max-age"] != 0:
                            jar[name] = morsel.value
                        else:
                            jar.pop(name, None)
    finally:
        connections.close_all()


def run_once(cluster, router_name, routers, phase, args):
    from replroute_django.middleware import ReadYourWritesMiddleware
    from replroute_django.router import engine

    cluster.wait_readers(2)
    SWITCH.active = routers[router_name]
    if router_name == "replroute":
        # Down marks and the cached list of the previous run do not carry over.
        engine().reset()
    run = Run(cluster)
    view = make_views(run)
    handler = ReadYourWritesMiddleware(view) if router_name == "replroute" else view

    if phase == "paused":
        cluster.sql("standby2", "SELECT pg_wal_replay_pause()")
    stop = threading.Event()
    started = time.monotonic()
    deadline = started + args.seconds
    threads = [threading.Thread(target=browser, name="browser%d" % k,
                                args=(handler, deadline, args.max_cycles, stop, "%s-%s-%d" % (router_name, phase, k),
                                      args.gets_with_cookie))
               for k in range(args.threads)]
    fault = None
    waits = timed_waits(run, router_name)
    waits.__enter__()
    try:
        for t in threads:
            t.start()
        if phase == "stopped":
            time.sleep(min(args.stop_after, args.seconds / 2))
            cluster.pg_ctl("standby1", "-m", "immediate", "stop")
            fault = time.monotonic() - started
        for t in threads:
            t.join(timeout=max(1.0, deadline - time.monotonic()) + 30)
        if any(t.is_alive() for t in threads):
            stop.set()
            for t in threads:
                t.join(timeout=10)
            if any(t.is_alive() for t in threads):
                raise RuntimeError("a workload thread did not finish")
    finally:
        stop.set()
        waits.__exit__(None, None, None)
        elapsed = time.monotonic() - started
        restore(cluster, phase)
    counts = dict(engine().counts) if router_name == "replroute" else None
    return summarize(run, router_name, phase, elapsed, fault, args, counts)


@contextlib.contextmanager
def timed_waits(run, router_name):
    """Times every Engine.wait_on (the wait on a standby, as the client sees it)."""
    from replroute_django.engine import engine

    if router_name != "replroute":
        yield
        return
    eng = engine()
    real = eng.wait_on

    def wait_on(*args, **kwargs):
        start = time.perf_counter_ns()
        try:
            return real(*args, **kwargs)
        finally:
            ns = time.perf_counter_ns() - start
            with run.lock:
                run.wait_ns.append(ns)

    eng.wait_on = wait_on
    try:
        yield
    finally:
        del eng.wait_on


def lag_run(cluster, router_name, routers, args):
    """--lag-cycles POST cycles (insert, read back) in one thread, standby2
    replaying --lag-ms behind and standby1 drained: standby2 is the only
    standby replroute may use, and every read after a write meets its lag."""
    from django.core.signals import request_finished, request_started
    from django.db import connections
    from django.test import RequestFactory
    from replroute_django.engine import engine
    from replroute_django.middleware import ReadYourWritesMiddleware

    cluster.wait_readers(2)
    SWITCH.active = routers[router_name]
    run = Run(cluster)
    view = make_views(run)
    handler = ReadYourWritesMiddleware(view) if router_name == "replroute" else view
    factory = RequestFactory()
    cluster.sql("standby2", "ALTER SYSTEM SET recovery_min_apply_delay = '%dms'" % args.lag_ms)
    cluster.sql("standby2", "SELECT pg_reload_conf()")
    cluster.sql("primary", "SELECT replroute_drain('standby1')")
    started = time.monotonic()
    try:
        cluster.wait_readers(1)
        if router_name == "replroute":
            engine().reset()
        started = time.monotonic()
        with timed_waits(run, router_name):
            for cycle in range(args.lag_cycles):
                request = factory.post("/items/new", {"name": "lag-%s-%d" % (router_name, cycle)})
                request_started.send(sender=None, environ=request.META)
                try:
                    handler(request)
                finally:
                    request_finished.send(sender=None)
    finally:
        elapsed = time.monotonic() - started
        connections.close_all()
        cluster.sql("primary", "SELECT replroute_undrain('standby1')")
        cluster.sql("standby2", "ALTER SYSTEM RESET recovery_min_apply_delay")
        cluster.sql("standby2", "SELECT pg_reload_conf()")
        cluster.wait_readers(2)
    counts = dict(engine().counts) if router_name == "replroute" else None
    return summarize(run, router_name, "lagging", elapsed, None, args, counts)


def restore(cluster, phase):
    if phase == "paused":
        cluster.sql("standby2", "SELECT pg_wal_replay_resume()")
    if phase == "stopped" and not cluster.is_running("standby1"):
        cluster.pg_ctl("standby1", "-l", os.path.join(cluster.dir, "standby1.log"), "-w", "-t", "60", "start")
    cluster.wait_readers(2)


# -- figures --------------------------------------------------------------


def staleness(run):
    """For each plain read: how long before it started was the oldest row it missed committed."""
    writes = sorted(run.writes)
    ids = [w[0] for w in writes]
    suffix_min = [0.0] * len(writes)
    low = float("inf")
    for i in range(len(writes) - 1, -1, -1):
        low = min(low, writes[i][1])
        suffix_min[i] = low
    out = []
    for started, newest in run.plain:
        i = bisect.bisect_right(ids, newest)
        if i < len(ids) and suffix_min[i] < started:
            out.append(started - suffix_min[i])
        else:
            out.append(0.0)
    return out


def percentile(values, q):
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median_us(values):
    return statistics.median(values) / 1000.0 if values else 0.0


def summarize(run, router_name, phase, elapsed, fault, args, counts=None):
    reads = sum(run.served.values()) + run.failed
    after_write = run.route_ns["write"] + run.route_ns["cookie"]
    standby = run.served["standby1"] + run.served["standby2"]
    stale = staleness(run)
    over = [s for s in stale if args.bound is not None and s > args.bound]
    return {
        "router": router_name,
        "phase": phase,
        "elapsed": elapsed,
        "fault": fault,
        "reads": reads,
        "served": dict(run.served),
        "standby_pct": 100.0 * standby / reads if reads else 0.0,
        "ryw": (run.ryw_missed, run.ryw_reads),
        "over": (len(over), len(stale)),
        "max_stale": max(stale) if stale else 0.0,
        "failed": run.failed,
        "failed_writes": run.failed_writes,
        "errors": dict(run.errors),
        "median_write_us": median_us(run.route_ns["write"]),
        "p99_write_us": percentile(run.route_ns["write"], 0.99) / 1000.0,
        "median_cookie_us": median_us(run.route_ns["cookie"]),
        "p99_cookie_us": percentile(run.route_ns["cookie"], 0.99) / 1000.0,
        "median_after_write_us": median_us(after_write),
        "p99_after_write_us": percentile(after_write, 0.99) / 1000.0,
        "median_plain_us": median_us(run.route_ns["plain"]),
        "p99_us": percentile(after_write + run.route_ns["plain"], 0.99) / 1000.0,
        "counts": counts or {},
        "waits": len(run.wait_ns),
        "median_wait_us": median_us(run.wait_ns),
        "p99_wait_us": percentile(run.wait_ns, 0.99) / 1000.0,
    }


def print_table(results, args):
    bound = "off" if args.bound is None else "%g s" % args.bound
    print()
    print("| phase | router | reads | by standbys | own write missed | plain reads > bound (%s) | max staleness |"
          " failed reads | route µs, POST's read: median | p99 | GET with cookie: median | p99 |"
          " both: median | p99 | plain read: median | all: p99 |" % bound)
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        miss, ryw = r["ryw"]
        over, plain = r["over"]
        print("| %s | %s | %d | %.1f %% | %d of %d (%.1f %%) | %d of %d | %.2f s | %d | %.0f | %.0f | %.0f | %.0f"
              " | %.0f | %.0f | %.0f | %.0f |" % (
                  r["phase"], r["router"], r["reads"], r["standby_pct"], miss, ryw,
                  100.0 * miss / ryw if ryw else 0.0, over, plain, r["max_stale"], r["failed"],
                  r["median_write_us"], r["p99_write_us"], r["median_cookie_us"], r["p99_cookie_us"],
                  r["median_after_write_us"], r["p99_after_write_us"], r["median_plain_us"], r["p99_us"]))
    print()
    for r in results:
        served = ", ".join("%s %d" % kv for kv in sorted(r["served"].items()))
        extra = ""
        if r["fault"] is not None:
            extra += "; standby1 stopped at %.1f s" % r["fault"]
        if r["failed_writes"]:
            extra += "; %d failed writes" % r["failed_writes"]
        c = r["counts"]
        if c:
            extra += ("; positions: %d reported, %d by query; waits: %d true, %d false, %d missed the deadline"
                      % (c.get("reported", 0), c.get("position_queries", 0), c.get("wait_true", 0),
                         c.get("wait_false", 0), c.get("wait_missed", 0)))
        if r["waits"]:
            extra += "; a wait as the client sees it: median %.0f µs, p99 %.0f µs" % (
                r["median_wait_us"], r["p99_wait_us"])
        print("- %s / %s: %.1f s; served by %s%s" % (r["phase"], r["router"], r["elapsed"], served, extra))
        for err, n in sorted(r["errors"].items()):
            print("    %dx %s" % (n, err))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster-dir", required=True, help="the DIR of scripts/rr-cluster start")
    parser.add_argument("--base-port", type=int, default=25432)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one run (one router, one phase)")
    parser.add_argument("--max-cycles", type=int, default=3000, help="POST+GET+GET cycles per thread and run, at most")
    parser.add_argument("--stop-after", type=float, default=2.0, help="seconds into a 'stopped' run")
    parser.add_argument("--bound", type=float, default=None,
                        help="lag bound in seconds for plain reads (default: replroute.max_replay_lag)")
    parser.add_argument("--gets-with-cookie", action="store_true",
                        help="the page views are the poster's, with its read-your-writes cookie")
    parser.add_argument("--phases", default="normal,paused,stopped,lagging")
    parser.add_argument("--lag-cycles", type=int, default=1000, help="write-then-read cycles of the 'lagging' phase")
    parser.add_argument("--lag-ms", type=int, default=20, help="standby2's replay delay in the 'lagging' phase")
    parser.add_argument("--routers", default="tutorial,replroute")
    args = parser.parse_args()
    if not (1 <= args.threads <= 32 and 0 < args.seconds <= 60 and 1 <= args.max_cycles <= 100000):
        parser.error("keep --threads in 1..32, --seconds in (0, 60], --max-cycles in 1..100000")

    cluster = Cluster(args.cluster_dir, args.base_port)
    cluster.wait_readers(2)
    if args.bound is None:
        args.bound = cluster.max_replay_lag()
    configure_django(args.base_port)
    from django.db import connections
    from replroute_django.router import ReplrouteRouter
    from shop.models import Item

    routers = {"tutorial": TutorialRouter(), "replroute": ReplrouteRouter()}
    with connections["default"].cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS shop_item")
    with connections["default"].schema_editor() as editor:
        editor.create_model(Item)
    connections.close_all()

    print("compare_routers: %d threads, %.0f s per run, POST (insert + read back) + 2 GET (%s) per cycle; "
          "lag bound %s; Django %s" % (args.threads, args.seconds,
                                        "the poster's, with its cookie" if args.gets_with_cookie else "other visitors",
                                        "off" if args.bound is None else "%g s" % args.bound,
                                        __import__("django").get_version()), flush=True)
    results = []
    for phase in args.phases.split(","):
        for router_name in args.routers.split(","):
            if phase == "lagging":
                r = lag_run(cluster, router_name, routers, args)
            else:
                r = run_once(cluster, router_name, routers, phase, args)
            results.append(r)
            print("  %-8s %-9s %5d reads, %5.1f %% by standbys, %d own-write misses, %d failed" % (
                phase, router_name, r["reads"], r["standby_pct"], r["ryw"][0], r["failed"]), flush=True)
    print_table(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
