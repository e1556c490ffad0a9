"""What a read costs in round trips to the primary, and that threads never
wait for each other's round trips.

The fake clocks here move at every reading (step), as real ones do between
two calls; a clock that stands still hid a second fetch per read after a
write, and a single thread cannot show a queue.
"""

import threading
import time
import unittest

from django.http import HttpResponse
from django.test import RequestFactory

from .fakes import FakePrimary, FixedRandom, fake_engine, without_waits
from replroute_django import remember_write
from replroute_django.lsn import parse_lsn
from replroute_django.middleware import ReadYourWritesMiddleware
from replroute_django.router import ReplrouteRouter
from replroute_django.state import State, scoped_state

STEP = 0.0001  # 100 µs per clock reading
WAIT = 2.0     # seconds a thread may take before it counts as queued


class FetchesPerReadTests(unittest.TestCase):
    """With RYW_WAIT off: the position and the list in one query."""

    def setUp(self):
        without_waits(self)
        self.router = ReplrouteRouter()
        self.primary = FakePrimary(lsn=parse_lsn("0/3000"))
        self.primary.add("standby1", 100, parse_lsn("0/2000"))
        self.primary.add("standby2", 100, parse_lsn("0/1000"))

    def read(self):
        return self.router.db_for_read(None)

    def test_read_after_write_costs_one_fetch(self):
        # No standby has replayed the write: the read goes to the primary,
        # after the one round trip that located the write, not two.
        with fake_engine(self.primary, step=STEP), scoped_state(State()) as state:
            for cycle in range(1, 101):
                self.primary.lsn += 0x100
                remember_write()
                self.assertEqual(self.read(), "default")
                self.assertFalse(state.pending)
                self.assertEqual(self.primary.calls, cycle, "fetches after %d writes" % cycle)

    def test_read_after_write_on_a_caught_up_standby_costs_one_fetch(self):
        self.primary.readers[0] = ("standby1", 100, parse_lsn("0/3000"))
        with fake_engine(self.primary, rng=FixedRandom(0.9), step=STEP), scoped_state(State()):
            remember_write()
            self.assertEqual(self.read(), "replica1")
            for _ in range(10):
                self.assertEqual(self.read(), "replica1")
            self.assertEqual(self.primary.calls, 1)

    def test_next_request_with_the_cookie_fetches_nothing(self):
        # The cookie keeps the capture time to the millisecond, rounded: it
        # can read as later than the list fetched in the same round trip.
        factory = RequestFactory()

        def writer(request):
            remember_write()
            return HttpResponse("ok")

        seen = []

        def reader(request):
            seen.append(self.read())
            return HttpResponse("ok")

        with fake_engine(self.primary, step=STEP) as eng:
            eng.wall.now = float(int(time.time())) + 0.0006
            request = factory.get("/")
            response = ReadYourWritesMiddleware(writer)(request)
            self.assertEqual(self.primary.calls, 1)
            second = factory.get("/")
            second.COOKIES["replroute_lsn"] = response.cookies["replroute_lsn"].value
            ReadYourWritesMiddleware(reader)(second)
        self.assertEqual(seen, ["default"])
        self.assertEqual(self.primary.calls, 1)


class Gate:
    """Blocks the fetches of the thread named `name` until opened."""

    def __init__(self, name):
        self.name = name
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self):
        if threading.current_thread().name == self.name:
            self.entered.set()
            if not self.opened.wait(10):
                raise RuntimeError("gate never opened")


class NoQueueTests(unittest.TestCase):
    """While one thread's fetch hangs, another thread's read returns at once (RYW_WAIT off)."""

    def setUp(self):
        without_waits(self)
        self.router = ReplrouteRouter()
        self.primary = FakePrimary(lsn=parse_lsn("0/2000"))
        self.primary.add("standby1", 100, parse_lsn("0/2000"))
        self.primary.add("standby2", 100, parse_lsn("0/1000"))
        self.gate = Gate("slow")
        self.primary.gate = self.gate
        self.results = {}

    def start(self, name, body):
        def run():
            try:
                with scoped_state(State()):
                    self.results[name] = body()
            except BaseException as exc:  # reported by the test thread
                self.results[name] = exc

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    def run_pair(self, slow_body, fast_body):
        """Start slow (held in its fetch), then fast; return fast's result."""
        slow = self.start("slow", slow_body)
        try:
            self.assertTrue(self.gate.entered.wait(WAIT), "the slow thread never fetched")
            fast = self.start("fast", fast_body)
            fast.join(WAIT)
            self.assertFalse(fast.is_alive(), "the second thread queued behind the first one's fetch")
            self.assertTrue(slow.is_alive())
        finally:
            self.gate.opened.set()
            slow.join(WAIT)
        self.assertFalse(slow.is_alive())
        for name, value in self.results.items():
            if isinstance(value, BaseException):
                raise AssertionError("thread %s raised %r" % (name, value))
        return self.results["fast"]

    def write_then_read(self, lsn=None):
        def body():
            remember_write(lsn)
            return self.router.db_for_read(None)

        return body

    def test_reads_after_writes_do_not_queue(self):
        with fake_engine(self.primary, rng=FixedRandom(0.0), step=STEP):
            self.router.db_for_read(None)  # a list in the cache already
            fast = self.run_pair(self.write_then_read(), self.write_then_read())
        # Each write located by its own round trip, none waiting for another.
        self.assertEqual(fast, "replica1")
        self.assertEqual(self.results["slow"], "replica1")
        self.assertEqual(self.primary.calls, 3)

    def test_refresh_for_a_newer_position_does_not_queue(self):
        # Both threads carry a position (a cookie) newer than the cached list:
        # one fetches again, the other reads the primary meanwhile.
        with fake_engine(self.primary, step=STEP) as eng:
            self.router.db_for_read(None)
            eng.tick(0.1)
            self.primary.lsn = parse_lsn("0/3000")
            fast = self.run_pair(self.write_then_read("0/3000"), self.write_then_read("0/3000"))
        self.assertEqual(fast, "default")
        self.assertEqual(self.results["slow"], "default")
        self.assertEqual(self.primary.calls, 2)

    def test_first_fetch_does_not_queue(self):
        plain = lambda: self.router.db_for_read(None)  # noqa: E731
        with fake_engine(self.primary, rng=FixedRandom(0.0), step=STEP):
            fast = self.run_pair(plain, plain)
        self.assertEqual(fast, "default", "no list yet, another thread fetching it: the primary")
        self.assertEqual(self.results["slow"], "replica1")
        self.assertEqual(self.primary.calls, 1)

    def test_expired_list_is_used_while_another_thread_refreshes(self):
        plain = lambda: self.router.db_for_read(None)  # noqa: E731
        with fake_engine(self.primary, rng=FixedRandom(0.0), step=STEP) as eng:
            self.router.db_for_read(None)
            eng.tick(1.5)
            fast = self.run_pair(plain, plain)
        self.assertEqual(fast, "replica1")
        self.assertEqual(self.primary.calls, 2)


if __name__ == "__main__":
    unittest.main()
