import contextlib
import time
import unittest
from unittest import mock

from django.db import OperationalError
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from .fakes import FakePrimary, FixedRandom, fake_engine
from replroute_django import forget_writes, read_your_writes, remember_write, write_lsn
from replroute_django import hooks
from replroute_django.lsn import parse_lsn
from replroute_django.middleware import ReadYourWritesMiddleware
from replroute_django.router import ReplrouteRouter
from replroute_django.state import State, current_state, scoped_state

NODES = {"standby1": "replica1", "standby2": "replica2"}


class ApiTests(unittest.TestCase):
    def setUp(self):
        self.primary = FakePrimary(lsn=parse_lsn("0/2000"))
        self.primary.add("standby1", 100, parse_lsn("0/2000"))
        self.primary.add("standby2", 100, parse_lsn("0/1000"))

    def test_write_lsn_locates_pending_writes(self):
        with fake_engine(self.primary), scoped_state(State()):
            self.assertIsNone(write_lsn())
            remember_write()
            self.assertEqual(write_lsn(), "0/2000")

    def test_read_your_writes_scope_starts_from_given_lsn(self):
        router = ReplrouteRouter()
        with fake_engine(self.primary, rng=FixedRandom(0.9)), scoped_state(State()):
            with read_your_writes("0/1800"):
                self.assertEqual(router.db_for_read(None), "replica1")
            self.assertEqual(router.db_for_read(None), "replica2")

    def test_inner_scope_writes_flow_out(self):
        with fake_engine(self.primary), scoped_state(State()) as outer:
            with read_your_writes():
                remember_write()
            self.assertTrue(outer.pending)
            with read_your_writes():
                remember_write("0/5000")
            self.assertEqual(outer.lsn, parse_lsn("0/5000"))

    def test_inner_scope_inherits_requirement(self):
        with fake_engine(self.primary), scoped_state(State()):
            remember_write("0/1500")
            with read_your_writes() as inner:
                self.assertEqual(inner.lsn, parse_lsn("0/1500"))

    def test_forget_writes(self):
        with scoped_state(State()) as state:
            remember_write("0/10")
            forget_writes()
            self.assertIsNone(state.required_lsn())

    def test_threads_do_not_share_state(self):
        import threading

        seen = {}
        with scoped_state(State()):
            remember_write("0/10")

            def other():
                seen["lsn"] = current_state().required_lsn()

            t = threading.Thread(target=other)
            t.start()
            t.join()
        self.assertIsNone(seen["lsn"])


class FakeRaw:
    def __init__(self):
        self.closed = 0
        self.cursors = 0

    def cursor(self):
        self.cursors += 1
        return ("raw-cursor", self)


class FakeConn:
    def __init__(self, alias):
        self.alias = alias
        self.in_atomic_block = False
        self.autocommit = True
        self.connection = FakeRaw()
        self.closed_calls = 0
        self.wrap_database_errors = contextlib.nullcontext()

    def ensure_connection(self):
        if self.connection is None:
            self.connection = FakeRaw()

    def close(self):
        self.closed_calls += 1
        self.connection = None


class FakeCursorWrapper:
    def __init__(self):
        self.cursor = "original"


class RetryTests(unittest.TestCase):
    def setUp(self):
        self.primary = FakePrimary(lsn=parse_lsn("0/2000"))
        self.primary.add("standby1", 100, parse_lsn("0/2000"))
        self.primary.add("standby2", 100, parse_lsn("0/2000"))
        self.conns = {a: FakeConn(a) for a in ("default", "replica1", "replica2")}
        self.patch = mock.patch.object(hooks, "connections", self.conns)
        self.patch.start()
        self.addCleanup(self.patch.stop)

    def run_wrapped(self, sql, fail_with, conn_alias="replica1", many=False, break_conn=True):
        conn = self.conns[conn_alias]
        cw = FakeCursorWrapper()
        calls = []

        def execute(sql_, params, many_, context):
            calls.append(context["cursor"].cursor)
            if len(calls) == 1:
                if break_conn:
                    conn.connection.closed = 2
                raise fail_with
            return "rows"

        result = hooks.retry_reads(execute, sql, None, many, {"connection": conn, "cursor": cw})
        return result, calls, cw

    def test_read_on_dead_standby_is_rerun_elsewhere(self):
        with fake_engine(self.primary, rng=FixedRandom(0.0)) as eng, scoped_state(State()):
            with self.assertLogs("replroute_django", "WARNING"):
                result, calls, cw = self.run_wrapped("SELECT 1", OperationalError("server closed the connection"))
            self.assertEqual(result, "rows")
            self.assertEqual(calls[0], "original")
            self.assertEqual(calls[1], ("raw-cursor", self.conns["replica2"].connection))
            self.assertTrue(eng.down.is_down("replica1"))
            self.assertEqual(self.conns["replica1"].closed_calls, 1)

    def test_falls_back_to_primary_when_no_other_standby(self):
        self.primary.readers = self.primary.readers[:1]
        with fake_engine(self.primary), scoped_state(State()):
            with self.assertLogs("replroute_django", "WARNING"):
                _, calls, _ = self.run_wrapped("SELECT 1", OperationalError("gone"))
            self.assertIs(calls[1][1], self.conns["default"].connection)

    def test_writes_are_not_retried(self):
        with fake_engine(self.primary), scoped_state(State()):
            with self.assertRaises(OperationalError):
                self.run_wrapped("UPDATE t SET a = 1", OperationalError("gone"))

    def test_not_retried_inside_a_transaction(self):
        self.conns["replica1"].in_atomic_block = True
        with fake_engine(self.primary), scoped_state(State()):
            with self.assertRaises(OperationalError):
                self.run_wrapped("SELECT 1", OperationalError("gone"))

    def test_statement_errors_are_not_retried(self):
        exc = OperationalError("statement timeout")
        exc.__cause__ = type("E", (Exception,), {"pgcode": "57014"})()
        with fake_engine(self.primary), scoped_state(State()):
            with self.assertRaises(OperationalError):
                self.run_wrapped("SELECT 1", exc, break_conn=False)

    def test_recovery_conflict_is_retried_without_marking_down(self):
        exc = OperationalError("canceling statement due to conflict with recovery")
        exc.__cause__ = type("E", (Exception,), {"pgcode": "40001"})()
        with fake_engine(self.primary, rng=FixedRandom(0.0)) as eng, scoped_state(State()):
            with self.assertLogs("replroute_django", "WARNING"):
                result, _, _ = self.run_wrapped("SELECT 1", exc, break_conn=False)
            self.assertEqual(result, "rows")
            self.assertFalse(eng.down.is_down("replica1"))
            self.assertEqual(self.conns["replica1"].closed_calls, 0)

    def test_retry_respects_min_lsn(self):
        self.primary.readers[1] = ("standby2", 100, parse_lsn("0/1000"))
        with fake_engine(self.primary, rng=FixedRandom(0.9)), scoped_state(State()):
            remember_write("0/2000")
            with self.assertLogs("replroute_django", "WARNING"):
                _, calls, _ = self.run_wrapped("SELECT 1", OperationalError("gone"))
            self.assertIs(calls[1][1], self.conns["default"].connection)

    def test_retry_can_be_disabled(self):
        with override_settings(REPLROUTE={"NODES": NODES, "RETRY_READS": False}):
            with fake_engine(self.primary), scoped_state(State()):
                with self.assertRaises(OperationalError):
                    self.run_wrapped("SELECT 1", OperationalError("gone"))


class InstallTests(unittest.TestCase):
    def test_wrappers_go_first_and_once(self):
        conn = FakeConn("default")
        conn.execute_wrappers = ["app-wrapper"]
        hooks.install(conn)
        hooks.install(conn)
        self.assertEqual(conn.execute_wrappers, [hooks.track_writes, "app-wrapper"])
        standby = FakeConn("replica1")
        standby.execute_wrappers = []
        hooks.install(standby)
        self.assertEqual(standby.execute_wrappers, [hooks.retry_reads])
        other = FakeConn("elsewhere")
        other.execute_wrappers = []
        hooks.install(other)
        self.assertEqual(other.execute_wrappers, [])


class MiddlewareTests(unittest.TestCase):
    def setUp(self):
        self.factory = RequestFactory()
        self.primary = FakePrimary(lsn=parse_lsn("0/4000"))
        self.primary.add("standby1", 100, parse_lsn("0/4000"))
        self.primary.add("standby2", 100, parse_lsn("0/1000"))
        self.router = ReplrouteRouter()

    def run_request(self, view, cookies=None):
        request = self.factory.get("/")
        for name, value in (cookies or {}).items():
            request.COOKIES[name] = value
        return ReadYourWritesMiddleware(view)(request)

    def test_write_sets_cookie_and_next_request_honours_it(self):
        def writer(request):
            remember_write()
            return HttpResponse("ok")

        seen = []

        def reader(request):
            seen.append(self.router.db_for_read(None))
            return HttpResponse("ok")

        with fake_engine(self.primary, rng=FixedRandom(0.9)):
            response = self.run_request(writer)
            cookie = response.cookies["replroute_lsn"]
            self.assertTrue(cookie["httponly"])
            self.assertTrue(0 < int(cookie["max-age"]) <= 30)
            self.assertIn("0/4000", cookie.value)
            self.run_request(reader, {"replroute_lsn": cookie.value})
            self.run_request(reader)
        self.assertEqual(seen, ["replica1", "replica2"])

    def test_request_state_is_dropped_after_the_request(self):
        outside = current_state()

        def writer(request):
            remember_write("0/10")
            return HttpResponse("ok")

        with fake_engine(self.primary):
            self.run_request(writer)
        self.assertIs(current_state(), outside)
        self.assertIsNone(outside.required_lsn())

    def test_forged_cookie_is_ignored(self):
        seen = []

        def reader(request):
            seen.append(self.router.db_for_read(None))
            return HttpResponse("ok")

        with fake_engine(self.primary, rng=FixedRandom(0.9)):
            self.run_request(reader, {"replroute_lsn": "FFFFFFFF/FFFFFFFF@%d" % time.time()})
        self.assertEqual(seen, ["replica2"])

    def test_expired_cookie_is_ignored(self):
        from django.core import signing

        value = signing.get_cookie_signer(salt="replroute_lsn" + "replroute_django.lsn").sign(
            "0/3000@%.3f" % (time.time() - 31)
        )
        seen = []

        def reader(request):
            seen.append(self.router.db_for_read(None))
            return HttpResponse("ok")

        with fake_engine(self.primary, rng=FixedRandom(0.9)):
            response = self.run_request(reader, {"replroute_lsn": value})
        self.assertEqual(seen, ["replica2"])
        self.assertNotIn("replroute_lsn", response.cookies)

    def test_no_write_no_cookie(self):
        with fake_engine(self.primary):
            response = self.run_request(lambda r: HttpResponse("ok"))
        self.assertNotIn("replroute_lsn", response.cookies)
        self.assertEqual(self.primary.calls, 0)

    def test_primary_unreachable_at_end_pins_client_to_primary(self):
        def writer(request):
            remember_write()
            return HttpResponse("ok")

        self.primary.fail = RuntimeError("down")
        with fake_engine(self.primary):
            with self.assertLogs("replroute_django", "WARNING"):
                response = self.run_request(writer)
        self.assertIn("FFFFFFFF/FFFFFFFF", response.cookies["replroute_lsn"].value)

    def test_session_storage(self):
        def writer(request):
            remember_write()
            return HttpResponse("ok")

        with override_settings(REPLROUTE={"NODES": NODES, "RYW_STORAGE": "session"}):
            request = self.factory.get("/")
            request.session = {}
            with fake_engine(self.primary):
                ReadYourWritesMiddleware(writer)(request)
            self.assertTrue(request.session["_replroute_lsn"].startswith("0/4000@"))
            seen = []

            def reader(req):
                seen.append(self.router.db_for_read(None))
                return HttpResponse("ok")

            second = self.factory.get("/")
            second.session = dict(request.session)
            with fake_engine(self.primary, rng=FixedRandom(0.9)):
                ReadYourWritesMiddleware(reader)(second)
            self.assertEqual(seen, ["replica1"])


if __name__ == "__main__":
    unittest.main()
