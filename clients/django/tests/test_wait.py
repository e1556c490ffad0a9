"""Reads after writes wait on the standby; deadlines; the socket check; LISTEN.

The deadline and socket tests use real sockets (socketpair): a peer that
never answers is exactly what a SIGSTOPped server looks like to a client.
"""

import contextlib
import datetime
import os
import resource
import select
import socket
import threading
import time
import unittest
from unittest import mock

from django.db import OperationalError
from django.test import override_settings

from .fakes import FakePrimary, FixedRandom, fake_engine
from replroute_django import engine as engine_mod
from replroute_django import hooks, remember_write
from replroute_django.conf import get_config
from replroute_django.conncheck import Deadlines, socket_readable
from replroute_django.listener import Listener
from replroute_django.lsn import parse_lsn
from replroute_django.router import ReplrouteRouter
from replroute_django.state import State, current_state, scoped_state

NODES = {"standby1": "replica1", "standby2": "replica2"}


class DeadlineTests(unittest.TestCase):
    def setUp(self):
        self.a, self.b = socket.socketpair()
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)
        self.deadlines = Deadlines()

    def test_a_query_past_its_deadline_sees_eof(self):
        started = time.monotonic()
        with self.deadlines.guard(self.a, 0.1) as guard:
            data = self.a.recv(10)  # the peer never answers
        elapsed = time.monotonic() - started
        self.assertEqual(data, b"")
        self.assertTrue(guard.fired)
        self.assertGreaterEqual(elapsed, 0.09)
        self.assertLess(elapsed, 2.0)

    def test_a_query_within_its_deadline_is_left_alone(self):
        self.b.send(b"x")
        with self.deadlines.guard(self.a, 0.1) as guard:
            self.assertEqual(self.a.recv(10), b"x")
        time.sleep(0.2)
        self.assertFalse(guard.fired)
        self.b.send(b"y")
        self.assertEqual(self.a.recv(10), b"y", "the socket must still work after the deadline passed")
        self.assertEqual(self.deadlines.pending(), 0)

    def test_an_earlier_deadline_wakes_the_watchdog(self):
        c, d = socket.socketpair()
        self.addCleanup(c.close)
        self.addCleanup(d.close)
        long_guard = self.deadlines.register(c.fileno(), 30.0)
        started = time.monotonic()
        with self.deadlines.guard(self.a, 0.1) as guard:
            self.a.recv(10)
        self.assertTrue(guard.fired)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertFalse(self.deadlines.finish(long_guard))


class HighDescriptorTests(unittest.TestCase):
    """The socket check for a connection whose descriptor is >= 1024."""

    def test_socket_check_above_1024(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 1200
        if soft < want:
            if hard != resource.RLIM_INFINITY and hard < want:
                self.skipTest("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        opened = []
        try:
            while True:
                fd = os.open(os.devnull, os.O_RDONLY)
                opened.append(fd)
                if fd >= 1030:
                    break
            a, b = socket.socketpair()
            try:
                self.assertGreaterEqual(a.fileno(), 1024)
                with self.assertRaises(ValueError):
                    select.select([a.fileno()], [], [], 0)  # why select() cannot do
                self.assertFalse(socket_readable(a), "an idle connection must check out")
                b.send(b"E")
                self.assertTrue(socket_readable(a))
                a.recv(1)
                b.close()
                self.assertTrue(socket_readable(a), "a closed peer shows as readable (EOF)")
            finally:
                a.close()
                b.close()
        finally:
            for fd in opened:
                os.close(fd)


_SOCKETS = []


def tearDownModule():
    for sock in _SOCKETS:
        sock.close()


class FrozenRaw:
    """A psycopg2 connection stand-in whose server never answers (or answers `result`)."""

    def __init__(self, result=None, error=None):
        self.sock, self.peer = socket.socketpair()
        _SOCKETS.extend((self.sock, self.peer))
        self.closed = 0
        self.result = result
        self.error = error
        self.queries = []
        self.params = {}

    def fileno(self):
        return self.sock.fileno()

    def get_parameter_status(self, name):
        return self.params.get(name)

    def cursor(self):
        raw = self

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, sql, params=None):
                raw.queries.append((sql, params))
                if raw.error is not None:
                    raise raw.error
                if raw.result is None:
                    if raw.sock.recv(1) == b"":
                        raw.closed = 2
                        raise OperationalError("server closed the connection unexpectedly")

            def fetchone(self):
                return (raw.result,)

        return Cursor()

    def close(self):
        self.closed = 1
        self.sock.close()
        self.peer.close()


class FakeConn:
    def __init__(self, alias, raw):
        self.alias = alias
        self.connection = raw
        self.in_atomic_block = False
        self.autocommit = True
        self.closed_calls = 0

    def close(self):
        self.closed_calls += 1
        if self.connection is not None:
            self.connection.close()
        self.connection = None


class PgError(Exception):
    def __init__(self, pgcode):
        super().__init__("error %s" % pgcode)
        self.pgcode = pgcode


class WaitOnTests(unittest.TestCase):
    """Engine.wait_on against connections that answer, refuse or freeze."""

    def run_wait(self, raw, lsn="0/5000"):
        conn = FakeConn("replica1", raw)
        eng = engine_mod.Engine()
        with mock.patch.object(engine_mod, "connections", {"replica1": conn}), scoped_state(State()):
            started = time.monotonic()
            result = eng.wait_on("replica1", parse_lsn(lsn), get_config())
            elapsed = time.monotonic() - started
        return result, eng, conn, elapsed

    def test_true_false(self):
        result, eng, conn, _ = self.run_wait(FrozenRaw(result=True))
        self.assertEqual(result, engine_mod.REPLAYED)
        sql, params = conn.connection.queries[0]
        self.assertIn("replroute_wait_for_replay(%s::pg_lsn, %s::interval)", sql)
        self.assertEqual(params, ("0/5000", datetime.timedelta(milliseconds=50)))
        self.assertEqual(eng.confirmed["replica1"][0], parse_lsn("0/5000"))
        result, eng, conn, _ = self.run_wait(FrozenRaw(result=False))
        self.assertEqual(result, engine_mod.BEHIND)
        self.assertTrue(eng.behind.is_down("replica1"))
        self.assertFalse(eng.down.is_down("replica1"))
        self.assertEqual(conn.closed_calls, 0)

    def test_frozen_standby_misses_the_deadline_and_is_discarded(self):
        with override_settings(REPLROUTE={"NODES": NODES, "RYW_WAIT": 0.05, "DEADLINE_MARGIN": 0.05}):
            result, eng, conn, elapsed = self.run_wait(FrozenRaw())
        self.assertEqual(result, engine_mod.MISSED)
        self.assertGreaterEqual(elapsed, 0.09)
        self.assertLess(elapsed, 1.0, "the wait outlived its deadline")
        self.assertEqual(conn.closed_calls, 1, "a connection that missed its deadline is discarded")
        self.assertTrue(eng.down.is_down("replica1"))
        self.assertEqual(eng.counts["wait_missed"], 1)

    def test_standby_without_the_function(self):
        result, eng, conn, _ = self.run_wait(FrozenRaw(error=PgError("42883")))
        self.assertEqual(result, engine_mod.NO_WAIT)
        self.assertIn("replica1", eng.no_wait)
        self.assertEqual(conn.closed_calls, 0)

    def test_no_wait_inside_a_transaction(self):
        raw = FrozenRaw(result=True)
        conn = FakeConn("replica1", raw)
        conn.in_atomic_block = True
        eng = engine_mod.Engine()
        with mock.patch.object(engine_mod, "connections", {"replica1": conn}):
            self.assertEqual(eng.wait_on("replica1", 1, get_config()), engine_mod.NO_WAIT)
        self.assertEqual(raw.queries, [])


class WaitRoutingTests(unittest.TestCase):
    def setUp(self):
        self.router = ReplrouteRouter()
        # The list is older than the write: neither standby shows it replayed.
        self.primary = FakePrimary(lsn=parse_lsn("0/3000"))
        self.primary.add("standby1", 100, parse_lsn("0/2000"))
        self.primary.add("standby2", 100, parse_lsn("0/2000"))
        # ... but both have replayed it by the time they are asked.
        self.primary.actual = {"standby1": parse_lsn("0/3000"), "standby2": parse_lsn("0/3000")}

    def read(self):
        return self.router.db_for_read(None)

    def test_reported_position_costs_no_round_trip_to_the_primary(self):
        primary_conn = FakeConn("default", FrozenRaw())
        primary_conn.connection.params["replroute.commit_lsn"] = "0/2F00"
        with fake_engine(self.primary, rng=FixedRandom(0.0)) as eng, scoped_state(State()) as state:
            self.read()  # the list, once
            self.assertEqual(self.primary.calls, 1)

            def execute(*args):
                primary_conn.connection.params["replroute.commit_lsn"] = "0/3000"

            hooks.track_writes(execute, "INSERT INTO t VALUES (1)", None, False, {"connection": primary_conn})
            self.assertFalse(state.pending)
            self.assertEqual(state.lsn, parse_lsn("0/3000"))
            self.assertEqual(self.read(), "replica1")
            self.assertEqual(eng.waits, [("replica1", parse_lsn("0/3000"))])
            self.assertEqual((self.primary.calls, self.primary.position_calls), (1, 0))
            self.assertEqual(eng.counts["reported"], 1)
            # Confirmed once: the next read needing it does not wait again.
            self.assertEqual(self.read(), "replica1")
            self.assertEqual(len(eng.waits), 1)

    def test_unchanged_report_falls_back_to_one_query(self):
        primary_conn = FakeConn("default", FrozenRaw())
        with fake_engine(self.primary, rng=FixedRandom(0.0)) as eng, scoped_state(State()) as state:
            hooks.track_writes(lambda *a: None, "UPDATE t SET a = 1", None, False, {"connection": primary_conn})
            self.assertTrue(state.pending)
            self.assertEqual(self.read(), "replica1")
            self.assertEqual(self.primary.position_calls, 1)
            self.assertEqual(eng.waits, [("replica1", parse_lsn("0/3000"))])
            self.assertEqual(eng.counts["unreported"], 1)

    def test_position_reported_for_a_hidden_write(self):
        primary_conn = FakeConn("default", FrozenRaw())

        def execute(*args):
            primary_conn.connection.params["replroute.commit_lsn"] = "0/3000"

        with fake_engine(self.primary), scoped_state(State()) as state:
            hooks.track_writes(execute, "SELECT archive_old_orders()", None, False, {"connection": primary_conn})
            self.assertEqual(state.lsn, parse_lsn("0/3000"))
            self.assertFalse(state.pending)

    def test_position_reported_at_commit_of_atomic_block(self):
        primary_conn = FakeConn("default", FrozenRaw())
        primary_conn.in_atomic_block = True
        primary_conn.run_on_commit = []
        primary_conn.on_commit = lambda func: primary_conn.run_on_commit.append((set(), func))
        with fake_engine(self.primary), scoped_state(State()) as state:
            hooks.track_writes(lambda *a: None, "INSERT INTO t VALUES (1)", None, False,
                               {"connection": primary_conn})
            primary_conn.connection.params["replroute.commit_lsn"] = "0/3000"  # the COMMIT's report
            primary_conn.in_atomic_block = False
            for _, func in primary_conn.run_on_commit:
                func()
            self.assertEqual(state.lsn, parse_lsn("0/3000"))
            self.assertFalse(state.pending)

    def test_caught_up_in_the_list_needs_no_wait(self):
        self.primary.readers[1] = ("standby2", 100, parse_lsn("0/3000"))
        with fake_engine(self.primary, rng=FixedRandom(0.0)) as eng, scoped_state(State()):
            remember_write("0/3000")
            self.assertEqual(self.read(), "replica2")
            self.assertEqual(eng.waits, [])

    def test_false_sends_the_read_to_the_primary_after_one_wait(self):
        self.primary.actual = {"standby1": parse_lsn("0/2000"), "standby2": parse_lsn("0/2000")}
        with fake_engine(self.primary, rng=FixedRandom(0.0)) as eng, scoped_state(State()):
            remember_write("0/3000")
            self.assertEqual(self.read(), "default")
            self.assertEqual(len(eng.waits), 1, "at most one wait per read")
            # The standby that said false is skipped for a while; the other is asked.
            self.assertEqual(self.read(), "default")
            self.assertEqual([a for a, _ in eng.waits], ["replica1", "replica2"])
            # Neither left: the primary at once, no wait.
            self.assertEqual(self.read(), "default")
            self.assertEqual(len(eng.waits), 2)
            # An event (LISTEN) forgets the false answers.
            eng.on_event()
            self.read()
            self.assertEqual(len(eng.waits), 3)

    def test_paused_standby_the_other_one_serves(self):
        self.primary.actual = {"standby1": parse_lsn("0/2000"), "standby2": parse_lsn("0/3000")}
        with fake_engine(self.primary, rng=FixedRandom(0.0)) as eng, scoped_state(State()):
            remember_write("0/3000")
            self.assertEqual(self.read(), "default")  # standby1 drawn first, said false
            for _ in range(5):
                self.assertEqual(self.read(), "replica2")
            self.assertEqual([a for a, _ in eng.waits], ["replica1", "replica2"])

    def test_frozen_standby_the_read_goes_elsewhere(self):
        self.primary.actual["standby1"] = "frozen"
        with fake_engine(self.primary, rng=FixedRandom(0.0)) as eng, scoped_state(State()):
            remember_write("0/3000")
            self.assertEqual(self.read(), "replica2")
            self.assertEqual([a for a, _ in eng.waits], ["replica1", "replica2"])
            self.assertTrue(eng.down.is_down("replica1"))
            # Plain reads skip the frozen standby too, until DOWN_TTL.
            with scoped_state(State()):
                self.assertEqual(self.read(), "replica2")

    def test_waits_off(self):
        with override_settings(REPLROUTE={"NODES": NODES, "RYW_WAIT": None}):
            with fake_engine(self.primary) as eng, scoped_state(State()):
                remember_write("0/3000")
                self.assertEqual(self.read(), "default")
                self.assertEqual(eng.waits, [])

    def test_no_position_no_wait(self):
        with fake_engine(self.primary) as eng, scoped_state(State()):
            self.assertIn(self.read(), ("replica1", "replica2"))
            self.assertEqual(eng.waits, [])


class ReadDeadlineTests(unittest.TestCase):
    """READ_DEADLINE: a plain read on a frozen standby is cut and re-run elsewhere."""

    def test_frozen_read_is_retried_elsewhere(self):
        frozen = FrozenRaw()
        conns = {"replica1": FakeConn("replica1", frozen), "replica2": FakeConn("replica2", FrozenRaw(result=1))}
        conns["replica1"].wrap_database_errors = contextlib.nullcontext()
        conns["replica2"].wrap_database_errors = contextlib.nullcontext()
        conns["replica2"].ensure_connection = lambda: None
        primary = FakePrimary(lsn=parse_lsn("0/3000"))
        primary.add("standby1", 100, parse_lsn("0/3000"))
        primary.add("standby2", 100, parse_lsn("0/3000"))

        class CursorWrapper:
            cursor = "original"

        calls = []

        def execute(sql, params, many, context):
            calls.append(context["cursor"].cursor)
            if len(calls) == 1:
                frozen.cursor().execute(sql)  # blocks until the deadline
            return "rows"

        settings = {"NODES": NODES, "READ_DEADLINE": 0.1}
        with override_settings(REPLROUTE=settings), mock.patch.object(hooks, "connections", conns), \
                fake_engine(primary, rng=FixedRandom(0.0)) as eng, scoped_state(State()):
            started = time.monotonic()
            with self.assertLogs("replroute_django", "WARNING"):
                result = hooks.retry_reads(execute, "SELECT 1", None, False,
                                           {"connection": conns["replica1"], "cursor": CursorWrapper()})
            elapsed = time.monotonic() - started
        self.assertEqual(result, "rows")
        self.assertLess(elapsed, 1.0)
        self.assertEqual(len(calls), 2)
        self.assertEqual(eng.counts["read_deadline_missed"], 1)
        self.assertTrue(eng.down.is_down("replica1"))

    def test_off_by_default(self):
        self.assertIsNone(get_config().read_deadline)


class FakeListenConn:
    """What Listener needs of a psycopg2 connection; notifications on demand."""

    def __init__(self):
        self.sock, self.peer = socket.socketpair()
        _SOCKETS.extend((self.sock, self.peer))
        self.notifies = []
        self.autocommit = False
        self.executed = []
        self.closed = False

    def fileno(self):
        return self.sock.fileno()

    def cursor(self):
        conn = self

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, sql):
                conn.executed.append(sql)

            def fetchone(self):
                return ("postgres", "postgres")

        return Cursor()

    def poll(self):
        data = self.sock.recv(100) if socket_readable(self.sock) else b"x"
        if data == b"":
            raise OperationalError("server closed the connection unexpectedly")

    def notify(self):
        self.notifies.append(("replroute", "{}"))
        self.peer.send(b"n")

    def close(self):
        self.closed = True
        self.sock.close()
        self.peer.close()


class ListenerTests(unittest.TestCase):
    def wait_for(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def test_events_drop_the_list_and_reconnects_follow_failures(self):
        conns = []
        attempts = []

        def connect(**params):
            attempts.append(params)
            if len(attempts) == 1:
                raise OperationalError("connection refused")
            conn = FakeListenConn()
            conns.append(conn)
            return conn

        events = []
        listener = Listener(lambda: {"database": "app", "host": "h"}, lambda: events.append(time.monotonic()),
                            connect=connect, poll_seconds=0.05)
        with self.assertLogs("replroute_django", "WARNING"):
            listener.ensure_started()
            self.assertTrue(self.wait_for(lambda: listener.connected.is_set()), "never reconnected")
        try:
            self.assertEqual(listener.failures, 1)
            self.assertIn("LISTEN replroute", conns[0].executed)
            self.assertEqual(attempts[1]["keepalives"], 1)
            before = len(events)
            sent = time.monotonic()
            conns[0].notify()
            self.assertTrue(self.wait_for(lambda: len(events) > before))
            self.assertLess(events[-1] - sent, 0.5, "an event must drop the list at once")
            # The server goes away: the thread reconnects and drops the list.
            before = len(events)
            conns[0].peer.close()
            self.assertTrue(self.wait_for(lambda: len(conns) == 2 and listener.connected.is_set()))
            self.assertGreater(len(events), before)
            self.assertTrue(listener.alive())
        finally:
            listener.stop()
        self.assertFalse(listener.alive())

    def test_starting_never_blocks(self):
        gate = threading.Event()

        def connect(**params):
            gate.wait(5)
            raise OperationalError("too late")

        listener = Listener(lambda: {}, lambda: None, connect=connect)
        started = time.monotonic()
        listener.ensure_started()
        listener.ensure_started()
        self.assertLess(time.monotonic() - started, 0.5)
        gate.set()
        listener.stop()

    def test_engine_event_drops_the_cached_list(self):
        primary = FakePrimary()
        primary.add("standby1", 100, 1)
        with fake_engine(primary) as eng, scoped_state(State()):
            ReplrouteRouter().db_for_read(None)
            self.assertIsNotNone(eng.cache.peek())
            eng.on_event()
            self.assertIsNone(eng.cache.peek())
            ReplrouteRouter().db_for_read(None)
            self.assertEqual(primary.calls, 2)


if __name__ == "__main__":
    unittest.main()
