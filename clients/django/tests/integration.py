#!/usr/bin/python3
"""replroute_django against a real primary with two standbys (scripts/rr-cluster).

    scripts/rr-cluster start DIR --base-port P
    /usr/bin/python3 clients/django/tests/integration.py --cluster-dir DIR --base-port P

Runs as any user: SQL goes over TCP as `postgres`; pg_ctl runs as the owner
of the data directories. Every read asks the server it landed on for
inet_server_port(), so "served by" is what happened, retries included, not
what the router meant to do. Changes to replroute GUCs are undone at the end.
Closes with `N passed, N failed`.
"""

import argparse
import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from rrcluster import ClusterBase  # noqa: E402

RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print("%s  %s%s" % ("PASS" if ok else "FAIL", name, ("  (" + detail + ")") if detail else ""), flush=True)
    return ok


def info(text):
    print("      " + text, flush=True)


class Cluster(ClusterBase):
    def __init__(self, directory, base_port):
        super().__init__(directory, base_port)
        self._saved_gucs = {}

    def refresh(self):
        self.sql("primary", "SELECT replroute_refresh()")

    def node(self, name):
        self.refresh()
        rows = self.sql("primary", "SELECT state, routable, reason, lag_bytes FROM replroute_nodes WHERE name = %s",
                        [name])
        return rows[0] if rows else None

    def wait(self, what, predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                info("gave up waiting for " + what)
                return False
            time.sleep(0.1)

    def routable(self, name):
        row = self.node(name)
        return bool(row and row[1])

    def set_guc(self, name, value):
        if name not in self._saved_gucs:
            self._saved_gucs[name] = self.sql("primary", "SELECT current_setting(%s), source FROM pg_settings "
                                              "WHERE name = %s", [name, name])[0]
        self.sql("primary", "ALTER SYSTEM SET %s = '%s'" % (name, value))
        self.sql("primary", "SELECT pg_reload_conf()")

    def restore_gucs(self):
        for name, (value, source) in self._saved_gucs.items():
            if source == "default":
                self.sql("primary", "ALTER SYSTEM RESET %s" % name)
            else:
                self.sql("primary", "ALTER SYSTEM SET %s = '%s'" % (name, value))
        self._saved_gucs.clear()
        self.sql("primary", "SELECT pg_reload_conf()")

    def wait_replayed_everywhere(self):
        lsn = self.sql("primary", "SELECT pg_current_wal_insert_lsn()")[0][0]
        for name in ("standby1", "standby2"):
            self.wait("%s to replay %s" % (name, lsn), lambda: self.sql(
                name, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])[0][0])


def server_pids(cl, node):
    """The postmaster of node and every process it started."""
    with open(os.path.join(cl.dir, node, "postmaster.pid")) as f:
        postmaster = int(f.readline())
    pids = [postmaster]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            pids.append(int(entry))
    return pids


@contextlib.contextmanager
def frozen(cl, node, limit=30):
    """SIGSTOP every process of node; SIGCONT on exit, and at the latest
    after `limit` seconds from a guard process of its own, should this
    script be killed meanwhile."""
    pids = server_pids(cl, node)
    guard = subprocess.Popen(["sh", "-c", "sleep %d; kill -CONT %s" % (limit, " ".join(map(str, pids)))],
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        info("%s stopped (SIGSTOP to %d processes)" % (node, len(pids)))
        yield pids
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        guard.kill()
        guard.wait()
        info("%s continued" % node)


def setup_django(base_port):
    os.environ["RR_BASE_PORT"] = str(base_port)
    os.environ["RR_STANDBYS"] = "2"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exampleproject.settings")
    sys.path[:0] = [PACKAGE_ROOT, os.path.join(PACKAGE_ROOT, "example")]
    import django

    django.setup()


def served(qs):
    """The row and the port of the server that returned it (None if no row)."""
    obj = qs.extra(select={"served_port": "inet_server_port()"}).first()
    return obj, (obj.served_port if obj is not None else None)


def reset_router():
    from replroute_django.router import engine

    engine().reset()


def test_spread(cl, Item):
    from replroute_django import forget_writes

    item = Item.objects.create(name="spread")
    cl.wait_replayed_everywhere()
    cl.refresh()
    reset_router()
    forget_writes()
    by = collections.Counter()
    for _ in range(400):
        obj, port = served(Item.objects.filter(pk=item.pk))
        by[cl.names.get(port, port) if obj else "missing"] += 1
    info("400 reads served by %s" % dict(by))
    check("reads spread over both standbys",
          by["standby1"] >= 100 and by["standby2"] >= 100, str(dict(by)))
    check("no read needed the primary while both standbys are healthy", by["primary"] == 0 and by["missing"] == 0,
          str(dict(by)))
    return item


def test_paused_standby_avoided(cl, Item, item):
    from replroute_django import forget_writes

    cl.set_guc("replroute.max_lag_bytes", "64kB")
    cl.sql("standby2", "SELECT pg_wal_replay_pause()")
    try:
        def lagging():
            cl.sql("primary", "INSERT INTO shop_item (name, count, is_available, average, date_created) "
                              "SELECT 'padding', g, false, 0, now() FROM generate_series(1, 500) g")
            return not cl.routable("standby2")

        went_lagging = cl.wait("standby2 to be reported lagging", lagging, timeout=30)
        check("standby with replay paused is reported not routable", went_lagging, str(cl.node("standby2")))
        # Let the router's cached list (1 s) expire rather than reset it:
        # this is what a running application sees.
        time.sleep(1.1)
        forget_writes()
        by = collections.Counter()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            obj, port = served(Item.objects.filter(pk=item.pk))
            by[cl.names.get(port, port) if obj else "missing"] += 1
        info("reads while standby2 lags: %s" % dict(by))
        check("lagging standby gets no reads", by["standby2"] == 0 and by["missing"] == 0, str(dict(by)))
        check("the healthy standby still serves reads", by["standby1"] > 0, str(dict(by)))
    finally:
        cl.sql("standby2", "SELECT pg_wal_replay_resume()")
        cl.restore_gucs()
    check("standby2 routable again after resume", cl.wait("standby2 routable", lambda: cl.routable("standby2")))


def replroute_settings(**changes):
    from django.conf import settings
    from django.test import override_settings

    return override_settings(REPLROUTE=dict(settings.REPLROUTE, **changes))


def test_reported_position(cl, Item, cycles=300):
    """The commit position arrives as ParameterStatus: a read after a write
    waits on a standby, without a query to the primary. Every third cycle
    writes inside atomic(): the position is the one reported at COMMIT."""
    from django.conf import settings
    from django.db import connections, transaction
    from django.db.models import F
    from replroute_django import read_your_writes
    from replroute_django.engine import engine

    cl.wait_replayed_everywhere()
    reset_router()
    eng = engine()
    primary_sql = []

    def spy(execute, sql, params, many, context):
        primary_sql.append(sql)
        return execute(sql, params, many, context)

    by = collections.Counter()
    stale = 0
    started = time.monotonic()
    with connections["default"].execute_wrapper(spy):
        for i in range(cycles):
            with read_your_writes():
                if i % 3 == 2:
                    # The position reported at the COMMIT of an atomic() block.
                    with transaction.atomic():
                        new = Item.objects.create(name="reported-%d" % i)
                        Item.objects.filter(pk=new.pk).update(count=F("count") + 1)
                else:
                    new = Item.objects.create(name="reported-%d" % i)
                obj, port = served(Item.objects.filter(pk=new.pk))
            if obj is None:
                stale += 1
            by[cl.names.get(port, port) if obj else "missing"] += 1
    elapsed = time.monotonic() - started
    counts = dict(eng.counts)
    positions = sum(1 for q in primary_sql if "pg_current_wal_insert_lsn" in q and "replroute_readers" not in q)
    lists = sum(1 for q in primary_sql if "replroute_readers" in q)
    reported = connections["default"].connection.get_parameter_status("replroute.commit_lsn")
    waits = counts.get("wait_true", 0) + counts.get("wait_false", 0)
    info("%d cycles in %.1f s; reads served by %s; engine: %s" % (cycles, elapsed, dict(by), counts))
    info("replroute.commit_lsn as psycopg2 sees it: %r; waits: %d, mean %.2f ms" % (
        reported, waits, counts.get("wait_us", 0) / 1000.0 / max(1, waits)))
    check("the primary reported the commit position of every write",
          counts.get("reported", 0) == cycles and counts.get("unreported", 0) == 0, str(counts))
    check("no position query to the primary after a reported write", positions == 0, "%d" % positions)
    ttl = settings.REPLROUTE.get("CACHE_TTL", 1.0)
    allowed = int(elapsed / ttl) + 2 + counts.get("events", 0)
    check("the readers list fetched at most once per CACHE_TTL or event", lists <= allowed,
          "%d fetches, %d allowed" % (lists, allowed))
    check("%d reads after writes: zero stale" % cycles, stale == 0, "%d stale" % stale)
    standby = by["standby1"] + by["standby2"]
    # Most, not all: a wait that says false (replay slower than RYW_WAIT on a
    # loaded machine) sends its read to the primary. The share is a figure
    # of the benchmark (compare-routers), not of this test.
    check("reads after writes served by standbys (>= 75 %)", standby >= 0.75 * cycles, str(dict(by)))


def test_listen(cl, Item, item):
    """LISTEN replroute drops the cached list at once (CACHE_TTL 60 s here)."""
    from replroute_django import forget_writes
    from replroute_django.engine import engine

    def reads(n=200):
        forget_writes()
        by = collections.Counter()
        for _ in range(n):
            obj, port = served(Item.objects.filter(pk=item.pk))
            by[cl.names.get(port, port) if obj else "missing"] += 1
        return by

    def heard(before, timeout=3.0, started=None):
        started = time.monotonic() if started is None else started
        while eng.counts["events"] <= before:
            if time.monotonic() - started > timeout:
                return None
            time.sleep(0.001)
        return time.monotonic() - started

    with replroute_settings(CACHE_TTL=60):
        reset_router()
        eng = engine()
        reads(1)
        listener = eng.listener
        connected = listener is not None and listener.connected.wait(10)
        if not check("the LISTEN thread connected", connected):
            return
        by = reads()
        check("both standbys read before the drain", by["standby1"] > 0 and by["standby2"] > 0, str(dict(by)))
        try:
            before = eng.counts["events"]
            t0 = time.monotonic()
            cl.sql("primary", "SELECT replroute_drain('standby2')")
            delay = heard(before, started=t0)
            check("the drain reached the process by NOTIFY", delay is not None,
                  "%.1f ms after the call to replroute_drain()" % (1000 * delay) if delay is not None else "not within 3 s")
            by = reads()
            info("reads after the drain: %s" % dict(by))
            check("a drained standby gets no reads at once, CACHE_TTL notwithstanding",
                  by["standby2"] == 0 and by["missing"] == 0, str(dict(by)))
        finally:
            before = eng.counts["events"]
            cl.sql("primary", "SELECT replroute_undrain('standby2')")
        heard(before)
        cl.wait("standby2 routable", lambda: cl.routable("standby2"))
        heard(eng.counts["events"], timeout=2.0)
        by = reads()
        check("the undrained standby gets reads again", by["standby2"] > 0, str(dict(by)))

        connects = listener.connects
        cl.sql("primary", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
               ["replroute_django listener"])
        ok = cl.wait("the listener to reconnect", lambda: listener.connects > connects and listener.connected.is_set(),
                     timeout=10)
        check("the LISTEN connection is made again after it was killed", ok,
              "%d connects, %d failures" % (listener.connects, listener.failures))
        before = eng.counts["events"]
        cl.sql("primary", "SELECT replroute_drain('standby1')")
        try:
            delay = heard(before)
            check("events reach the process after the reconnect", delay is not None)
        finally:
            cl.sql("primary", "SELECT replroute_undrain('standby1')")
        cl.wait("standby1 routable", lambda: cl.routable("standby1"))
    reset_router()


def open_standby_connections():
    from django.db import connections

    for alias in ("replica1", "replica2"):
        connections[alias].close()
        connections[alias].ensure_connection()


def close_standby_connections():
    from django.db import connections

    for alias in ("replica1", "replica2"):
        try:
            connections[alias].close()
        except Exception:
            pass


def test_frozen_standby_wait(cl, Item):
    """A read after a write whose wait lands on a SIGSTOPped standby: the
    client's deadline discards that connection and the read goes elsewhere."""
    from django.db import connections
    from replroute_django import read_your_writes
    from replroute_django.conf import get_config
    from replroute_django.engine import engine

    # The list keeps listing the frozen standby (no events, a long TTL): only
    # the client-side deadline stands between the read and the frozen server.
    with replroute_settings(CACHE_TTL=60, LISTEN=False, DOWN_TTL=30):
        config = get_config()
        bound = config.ryw_wait + config.deadline_margin
        cl.wait_replayed_everywhere()
        reset_router()
        eng = engine()
        open_standby_connections()
        times, by, errors, stale = [], collections.Counter(), [], 0
        with frozen(cl, "standby2"):
            for i in range(30):
                try:
                    with read_your_writes():
                        new = Item.objects.create(name="frozen-%d" % i)
                        t0 = time.monotonic()
                        obj, port = served(Item.objects.filter(pk=new.pk))
                        times.append(time.monotonic() - t0)
                    if obj is None:
                        stale += 1
                    by[cl.names.get(port, port) if obj else "missing"] += 1
                except Exception as exc:
                    errors.append(repr(exc))
                if eng.counts["wait_missed"] >= 1 and i >= 9:
                    break
            discarded = connections["replica2"].connection is None
        close_standby_connections()
    info("reads after writes with standby2 stopped: %s; slowest %.0f ms; engine: %s" % (
        dict(by), 1000 * max(times or [0]), dict(eng.counts)))
    for e in errors[:3]:
        info("error: " + e)
    check("a wait on the stopped standby missed its deadline", eng.counts["wait_missed"] >= 1, str(dict(eng.counts)))
    check("that connection was discarded", discarded)
    check("every read after a write answered, none stale", not errors and stale == 0 and by["standby2"] == 0,
          "%d errors, %d stale, %s" % (len(errors), stale, dict(by)))
    check("no read after a write waited past RYW_WAIT + DEADLINE_MARGIN (+0.5 s)",
          max(times or [0]) < bound + 0.5, "slowest %.0f ms, bound %.0f ms" % (1000 * max(times or [0]), 1000 * bound))
    reset_router()


def test_frozen_standby_read_deadline(cl, Item, item):
    """READ_DEADLINE: plain reads on a SIGSTOPped standby are cut and re-run."""
    from replroute_django import forget_writes
    from replroute_django.engine import engine

    deadline = 0.2
    with replroute_settings(CACHE_TTL=60, LISTEN=False, DOWN_TTL=30, READ_DEADLINE=deadline):
        reset_router()
        eng = engine()
        open_standby_connections()
        forget_writes()
        times, by, errors = [], collections.Counter(), []
        with frozen(cl, "standby2"):
            for i in range(40):
                try:
                    t0 = time.monotonic()
                    obj, port = served(Item.objects.filter(pk=item.pk))
                    times.append(time.monotonic() - t0)
                    by[cl.names.get(port, port) if obj else "missing"] += 1
                except Exception as exc:
                    errors.append(repr(exc))
                if eng.counts["read_deadline_missed"] >= 1 and i >= 9:
                    break
        close_standby_connections()
    info("plain reads with standby2 stopped: %s; slowest %.0f ms; engine: %s" % (
        dict(by), 1000 * max(times or [0]), dict(eng.counts)))
    for e in errors[:3]:
        info("error: " + e)
    check("a plain read on the stopped standby hit READ_DEADLINE", eng.counts["read_deadline_missed"] >= 1,
          str(dict(eng.counts)))
    check("every plain read answered elsewhere", not errors and by["missing"] == 0 and by["standby2"] == 0,
          "%d errors, %s" % (len(errors), dict(by)))
    check("no plain read took longer than READ_DEADLINE (+0.5 s)", max(times or [0]) < deadline + 0.5,
          "slowest %.0f ms" % (1000 * max(times or [0])))
    reset_router()


def test_immediate_stop(cl, Item, item):
    from django.db import connections
    from replroute_django import read_your_writes

    stop = threading.Event()
    lock = threading.Lock()
    by = collections.Counter()
    errors = []

    def reader():
        with read_your_writes():
            try:
                while not stop.is_set():
                    try:
                        obj, port = served(Item.objects.filter(pk=item.pk))
                        key = cl.names.get(port, port) if obj else "missing"
                    except Exception as exc:  # a failed read is what we count
                        key = "error"
                        with lock:
                            errors.append(repr(exc))
                    with lock:
                        by[key] += 1
            finally:
                connections.close_all()

    reset_router()
    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    with lock:
        before = dict(by)
    cl.pg_ctl("standby1", "-m", "immediate", "stop")
    time.sleep(2.0)
    with lock:
        at_stop = collections.Counter(by)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    after = collections.Counter(by) - at_stop
    info("reads before the stop: %s; all: %s; in the last second: %s" % (before, dict(by), dict(after)))
    for e in errors[:5]:
        info("error: " + e)
    check("standby stopped with -m immediate: no failed read", by["error"] == 0 and by["missing"] == 0,
          "%d errors" % by["error"])
    check("reads went on after the stop", sum(after.values()) > 0 and after["standby1"] == 0, str(dict(after)))
    cl.pg_ctl("standby1", "-l", os.path.join(cl.dir, "standby1.log"), "-w", "-t", "60", "start")
    check("standby1 routable again after restart", cl.wait("standby1 routable", lambda: cl.routable("standby1"),
                                                           timeout=60))


def test_write_then_read(cl, Item, cycles):
    from django.db.models import F
    from django.test import Client
    from replroute_django import forget_writes, read_your_writes

    # Bounds off, so the paused standby stays routable: only read-your-writes
    # stands between a read and the stale standby.
    cl.set_guc("replroute.max_lag_bytes", "-1")
    cl.set_guc("replroute.max_replay_lag", "-1")
    cl.refresh()
    cl.sql("standby2", "SELECT pg_wal_replay_pause()")
    reset_router()
    try:
        ok = cl.wait("standby2 routable while paused", lambda: cl.routable("standby2"), timeout=10)
        check("paused standby2 stays routable with the bounds off", ok, str(cl.node("standby2")))

        # Control: the same cycle without read-your-writes. Not a pass/fail
        # criterion; it shows the setup can produce stale reads at all.
        control = collections.Counter()
        for i in range(200):
            new = Item.objects.create(name="control-%d" % i)
            forget_writes()
            obj, port = served(Item.objects.filter(pk=new.pk))
            control["stale" if obj is None else cl.names.get(port, port)] += 1
        info("control, 200 cycles without read-your-writes: %s" % dict(control))

        stale = 0
        by = collections.Counter()
        bumped = Item.objects.create(name="bumped", count=0)
        started = time.monotonic()
        for i in range(cycles):
            with read_your_writes():
                if i % 2 == 0:
                    new = Item.objects.create(name="ryw-%d" % i, count=i)
                    obj, port = served(Item.objects.filter(pk=new.pk))
                    good = obj is not None and obj.name == "ryw-%d" % i
                else:
                    Item.objects.filter(pk=bumped.pk).update(count=F("count") + 1)
                    obj, port = served(Item.objects.filter(pk=bumped.pk))
                    good = obj is not None and obj.count == (i + 1) // 2
            if not good:
                stale += 1
            by[cl.names.get(port, port) if obj else "missing"] += 1
        elapsed = time.monotonic() - started
        info("%d write-then-read cycles in %.1f s; reads served by %s" % (cycles, elapsed, dict(by)))
        check("%d write-then-read cycles with standby2 paused: zero stale reads" % cycles, stale == 0,
              "%d stale" % stale)
        check("no read-after-write landed on the paused standby", by["standby2"] == 0, str(dict(by)))

        # The same through HTTP: POST, redirect, GET in the next request, the
        # LSN carried by the middleware's signed cookie.
        client = Client()
        http_stale = 0
        http_cycles = max(50, cycles // 10)
        http_by = collections.Counter()
        for i in range(http_cycles):
            response = client.post("/items/new", {"name": "http-%d" % i, "count": "1"}, follow=True)
            if response.status_code != 200 or response.json().get("name") != "http-%d" % i:
                http_stale += 1
            else:
                http_by[response.json().get("db")] += 1
        info("GET after redirect served by alias: %s" % dict(http_by))
        check("%d POST/redirect/GET cycles: zero stale reads" % http_cycles, http_stale == 0,
              "%d stale" % http_stale)
        check("no GET after redirect landed on the paused standby", http_by["replica2"] == 0, str(dict(http_by)))
    finally:
        cl.sql("standby2", "SELECT pg_wal_replay_resume()")
        cl.restore_gucs()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster-dir", required=True)
    parser.add_argument("--base-port", type=int, default=25432)
    parser.add_argument("--cycles", type=int, default=1000)
    args = parser.parse_args()

    setup_django(args.base_port)
    from django.db import connection
    from shop.models import Item

    cl = Cluster(args.cluster_dir, args.base_port)
    try:
        ready = cl.wait("both standbys routable",
                        lambda: cl.routable("standby1") and cl.routable("standby2"), timeout=30)
        if not check("cluster up, both standbys routable", ready):
            return 1
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS shop_item")
        with connection.schema_editor() as editor:
            editor.create_model(Item)

        item = test_spread(cl, Item)
        test_reported_position(cl, Item)
        test_listen(cl, Item, item)
        test_frozen_standby_wait(cl, Item)
        test_frozen_standby_read_deadline(cl, Item, item)
        test_paused_standby_avoided(cl, Item, item)
        test_immediate_stop(cl, Item, item)
        test_write_then_read(cl, Item, args.cycles)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        check("integration run completed", False, repr(exc))
    finally:
        try:
            cl.restore_gucs()
        except Exception:
            pass
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
