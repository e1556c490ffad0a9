import collections
import unittest

from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.test import override_settings

from .fakes import FakePrimary, FixedRandom, fake_engine, without_waits
from replroute_django import pin_primary, remember_write
from replroute_django.lsn import parse_lsn
from replroute_django.readers import DownMarks, Reader, ReadersCache, Snapshot, eligible, weighted_choice
from replroute_django.router import ReplrouteRouter
from replroute_django.state import State, scoped_state

NODES = {"standby1": "replica1", "standby2": "replica2"}


def fresh():
    return scoped_state(State())


class ReadersCacheTests(unittest.TestCase):
    def setUp(self):
        self.now = [100.0]
        self.cache = ReadersCache(clock=lambda: self.now[0], wall=lambda: 5000.0 + self.now[0])
        self.calls = 0

    def fetch(self):
        self.calls += 1
        return Snapshot([Reader("standby1", "replica1", 100, 10)], self.now[0], 5000.0 + self.now[0])

    def test_reuses_until_ttl(self):
        self.cache.get(self.fetch, 1.0)
        self.now[0] += 0.999
        self.cache.get(self.fetch, 1.0)
        self.assertEqual(self.calls, 1)
        self.now[0] += 0.001
        self.cache.get(self.fetch, 1.0)
        self.assertEqual(self.calls, 2)

    def test_ttl_zero_asks_every_time(self):
        for _ in range(3):
            self.cache.get(self.fetch, 0.0)
        self.assertEqual(self.calls, 3)

    def test_failure_is_cached_as_not_ok(self):
        def boom():
            self.calls += 1
            raise RuntimeError("primary down")

        snap = self.cache.get(boom, 1.0)
        self.assertFalse(snap.ok)
        self.assertEqual(snap.readers, ())
        self.cache.get(boom, 1.0)
        self.assertEqual(self.calls, 1, "a failed fetch must not be retried within the TTL")
        self.now[0] += 1.0
        self.assertTrue(self.cache.get(self.fetch, 1.0).ok)

    def test_refresh_ignores_age(self):
        self.cache.get(self.fetch, 10.0)
        self.cache.refresh(self.fetch)
        self.assertEqual(self.calls, 2)


class ChoiceTests(unittest.TestCase):
    readers = [
        Reader("standby1", "replica1", 100, parse_lsn("0/500")),
        Reader("standby2", "replica2", 300, parse_lsn("0/300")),
        Reader("standby3", "replica3", 100, None),
    ]

    def test_min_lsn_boundary_is_inclusive(self):
        self.assertEqual([r.name for r in eligible(self.readers, parse_lsn("0/300"))], ["standby1", "standby2"])
        self.assertEqual([r.name for r in eligible(self.readers, parse_lsn("0/301"))], ["standby1"])
        self.assertEqual([r.name for r in eligible(self.readers, parse_lsn("0/500"))], ["standby1"])
        self.assertEqual(eligible(self.readers, parse_lsn("0/501")), [])

    def test_unknown_replay_position_only_without_min_lsn(self):
        self.assertEqual(len(eligible(self.readers, None)), 3)

    def test_zero_weight_is_never_chosen(self):
        self.assertEqual(eligible([Reader("a", "a", 0, 10)], None), [])

    def test_down_aliases_are_skipped(self):
        down = DownMarks(clock=lambda: 0.0)
        down.mark("replica1", 5)
        self.assertEqual([r.name for r in eligible(self.readers, None, down)], ["standby2", "standby3"])

    def test_down_mark_expires(self):
        now = [0.0]
        down = DownMarks(clock=lambda: now[0])
        down.mark("replica1", 5)
        now[0] = 4.99
        self.assertTrue(down.is_down("replica1"))
        now[0] = 5.0
        self.assertFalse(down.is_down("replica1"))

    def test_weighted_choice_boundaries(self):
        two = self.readers[:2]  # weights 100 and 300
        self.assertEqual(weighted_choice(two, FixedRandom(0.0)).name, "standby1")
        self.assertEqual(weighted_choice(two, FixedRandom(0.2499)).name, "standby1")
        self.assertEqual(weighted_choice(two, FixedRandom(0.25)).name, "standby2")
        self.assertEqual(weighted_choice(two, FixedRandom(0.9999999)).name, "standby2")
        self.assertIsNone(weighted_choice([], FixedRandom(0.5)))

    def test_weighted_distribution(self):
        import random

        rng = random.Random(7)
        counts = collections.Counter(weighted_choice(self.readers[:2], rng).name for _ in range(20000))
        # Expected 25 % / 75 %; 20000 draws put 3 sigma near 0.9 %.
        self.assertAlmostEqual(counts["standby1"] / 20000, 0.25, delta=0.015)


class RouterTests(unittest.TestCase):
    def setUp(self):
        self.router = ReplrouteRouter()
        self.primary = FakePrimary(lsn=parse_lsn("0/1000"))
        self.primary.add("standby1", 100, parse_lsn("0/1000"))
        self.primary.add("standby2", 100, parse_lsn("0/1000"))

    def read(self, **hints):
        return self.router.db_for_read(None, **hints)

    def test_write_goes_to_primary(self):
        self.assertEqual(self.router.db_for_write(None), "default")

    def test_reads_go_to_standbys_by_weight(self):
        with fake_engine(self.primary, rng=FixedRandom(0.1, 0.9, 0.4, 0.6)), fresh():
            self.assertEqual([self.read() for _ in range(4)], ["replica1", "replica2", "replica1", "replica2"])
        self.assertEqual(self.primary.calls, 1, "reads within the TTL must not ask the primary")

    def test_cache_expiry_refetches(self):
        with fake_engine(self.primary) as eng, fresh():
            self.read()
            eng.tick(0.5)
            self.read()
            self.assertEqual(self.primary.calls, 1)
            eng.tick(0.5)
            self.read()
            self.assertEqual(self.primary.calls, 2)

    def test_cache_ttl_setting(self):
        with override_settings(REPLROUTE={"NODES": NODES, "CACHE_TTL": 5}):
            with fake_engine(self.primary) as eng, fresh():
                self.read()
                eng.tick(4.9)
                self.read()
                self.assertEqual(self.primary.calls, 1)

    def test_node_leaving_the_list_stops_getting_reads(self):
        with fake_engine(self.primary, rng=FixedRandom(0.9)) as eng, fresh():
            self.assertEqual(self.read(), "replica2")
            self.primary.readers = [r for r in self.primary.readers if r[0] != "standby2"]
            eng.tick(1.0)
            self.assertEqual(self.read(), "replica1")

    def test_unmapped_nodes_are_ignored(self):
        self.primary.readers = [("standby9", 100, 1)]
        with fake_engine(self.primary), fresh():
            self.assertEqual(self.read(), "default")

    def test_nothing_qualifies_means_primary(self):
        self.primary.readers = []
        with fake_engine(self.primary), fresh():
            self.assertEqual(self.read(), "default")

    def test_primary_unreachable_means_primary_and_no_storm(self):
        self.primary.fail = RuntimeError("connection refused")
        with fake_engine(self.primary) as eng, fresh():
            with self.assertLogs("replroute_django", "WARNING"):
                self.assertEqual(self.read(), "default")
            for _ in range(10):
                self.assertEqual(self.read(), "default")
            self.assertEqual(self.primary.calls, 1)
            self.primary.fail = None
            eng.tick(1.0)
            self.assertIn(self.read(), ("replica1", "replica2"))

    def test_unusable_standby_is_routed_around_and_marked_down(self):
        with fake_engine(self.primary, rng=FixedRandom(0.9)) as eng, fresh():
            eng.up.discard("replica2")
            self.assertEqual(self.read(), "replica1")
            self.assertTrue(eng.down.is_down("replica2"))
            eng.up.add("replica2")
            # Still skipped until DOWN_TTL passes, without another probe.
            self.assertEqual(self.read(), "replica1")
            eng.tick(5.0)
            self.assertEqual(self.read(), "replica2")

    def test_all_standbys_unusable_means_primary(self):
        with fake_engine(self.primary, up=()), fresh():
            self.assertEqual(self.read(), "default")

    def test_pin_primary(self):
        with fake_engine(self.primary), fresh():
            with pin_primary():
                self.assertEqual(self.read(), "default")
                with pin_primary():
                    self.assertEqual(self.read(), "default")
                self.assertEqual(self.read(), "default")
            self.assertIn(self.read(), ("replica1", "replica2"))

    def test_pin_primary_as_decorator(self):
        @pin_primary()
        def view():
            return self.read()

        with fake_engine(self.primary), fresh():
            self.assertEqual(view(), "default")

    def test_disabled(self):
        with override_settings(REPLROUTE={"NODES": NODES, "ENABLED": False}):
            with fake_engine(self.primary), fresh():
                self.assertEqual(self.read(), "default")
            self.assertEqual(self.primary.calls, 0)

    def test_primary_models(self):
        with override_settings(REPLROUTE={"NODES": NODES, "PRIMARY_MODELS": ["contenttypes"]}):
            with fake_engine(self.primary), fresh():
                self.assertEqual(self.router.db_for_read(ContentType), "default")
        with override_settings(REPLROUTE={"NODES": NODES, "PRIMARY_MODELS": ["contenttypes.ContentType"]}):
            with fake_engine(self.primary), fresh():
                self.assertEqual(self.router.db_for_read(ContentType), "default")
        with fake_engine(self.primary), fresh():
            self.assertNotEqual(self.router.db_for_read(ContentType), "default")

    def test_related_instance_keeps_its_standby(self):
        class Obj:
            class _state:
                db = "replica2"

        with fake_engine(self.primary, rng=FixedRandom(0.0)), fresh():
            self.assertEqual(self.read(instance=Obj()), "replica2")
            self.assertEqual(self.read(), "replica1")

    def test_sticky_within_a_request(self):
        with fake_engine(self.primary, rng=FixedRandom(0.9, 0.1, 0.1)), scoped_state(State(sticky=True)):
            self.assertEqual([self.read() for _ in range(3)], ["replica2"] * 3)

    def test_allow_relation(self):
        def obj(db):
            o = type("O", (), {})()
            o._state = type("S", (), {"db": db})()
            return o

        self.assertTrue(self.router.allow_relation(obj("default"), obj("replica1")))
        self.assertTrue(self.router.allow_relation(obj("replica2"), obj("replica1")))
        self.assertIsNone(self.router.allow_relation(obj("default"), obj("elsewhere")))

    def test_allow_migrate(self):
        self.assertIsNot(self.router.allow_migrate("default", "shop"), False)
        self.assertFalse(self.router.allow_migrate("replica1", "shop"))
        self.assertFalse(self.router.allow_migrate("replica2", "shop", model_name="item"))
        self.assertIsNone(self.router.allow_migrate("elsewhere", "shop"))

    def test_django_router_facade(self):
        # Through django.db.router, as the ORM calls it.
        from django.db import router

        with fake_engine(self.primary, rng=FixedRandom(0.0)), fresh():
            self.assertEqual(router.db_for_read(ContentType), "replica1")
            self.assertEqual(router.db_for_write(ContentType), "default")
            self.assertFalse(router.allow_migrate("replica1", "contenttypes"))
            self.assertTrue(router.allow_migrate("default", "contenttypes"))


class ReadYourWritesRoutingTests(unittest.TestCase):
    """With RYW_WAIT off: only standbys the list shows caught up qualify."""

    def setUp(self):
        without_waits(self)
        self.router = ReplrouteRouter()
        self.primary = FakePrimary(lsn=parse_lsn("0/2000"))
        self.primary.add("standby1", 100, parse_lsn("0/2000"))  # caught up
        self.primary.add("standby2", 100, parse_lsn("0/1000"))  # behind

    def read(self):
        return self.router.db_for_read(None)

    def test_pending_write_is_located_and_filters_readers(self):
        with fake_engine(self.primary, rng=FixedRandom(0.9)), fresh() as state:
            remember_write()
            self.assertEqual(self.read(), "replica1")
            self.assertFalse(state.pending)
            self.assertEqual(state.lsn, parse_lsn("0/2000"))
            self.assertEqual(self.primary.calls, 1, "locating the write also refreshes the list")
            # Later reads need no round trip and still avoid standby2.
            for _ in range(5):
                self.assertEqual(self.read(), "replica1")
            self.assertEqual(self.primary.calls, 1)

    def test_no_standby_caught_up_means_primary(self):
        self.primary.lsn = parse_lsn("0/3000")
        with fake_engine(self.primary), fresh():
            remember_write()
            self.assertEqual(self.read(), "default")

    def test_explicit_lsn(self):
        with fake_engine(self.primary, rng=FixedRandom(0.9)), fresh():
            remember_write("0/1001")
            self.assertEqual(self.read(), "replica1")
            remember_write("0/0")  # an older one never lowers the requirement
            self.assertEqual(self.read(), "replica1")

    def test_stale_cache_is_refreshed_once_for_a_newer_lsn(self):
        with fake_engine(self.primary, rng=FixedRandom(0.9)) as eng, fresh():
            self.assertEqual(self.read(), "replica2")
            self.assertEqual(self.primary.calls, 1)
            eng.tick(0.1)
            # An LSN learnt elsewhere (a cookie) after the list was fetched.
            self.primary.readers[1] = ("standby2", 100, parse_lsn("0/2800"))
            remember_write("0/2500")
            self.assertEqual(self.read(), "replica2")
            self.assertEqual(self.primary.calls, 2)

    def test_refresh_for_lsn_happens_once_not_per_read(self):
        self.primary.lsn = parse_lsn("0/9000")
        with fake_engine(self.primary) as eng, fresh():
            eng.tick(0.01)
            remember_write("0/9000")
            for _ in range(5):
                self.assertEqual(self.read(), "default")
            self.assertEqual(self.primary.calls, 1)

    def test_recheck_finds_a_standby_that_caught_up(self):
        self.primary.lsn = parse_lsn("0/3000")
        with fake_engine(self.primary, rng=FixedRandom(0.9)) as eng, fresh():
            remember_write()
            self.assertEqual(self.read(), "default")
            self.assertEqual(self.primary.calls, 1)
            self.primary.readers[1] = ("standby2", 100, parse_lsn("0/3000"))
            eng.tick(0.049)
            self.assertEqual(self.read(), "default", "no recheck before RYW_RECHECK")
            self.assertEqual(self.primary.calls, 1)
            eng.tick(0.002)
            self.assertEqual(self.read(), "replica2")
            self.assertEqual(self.primary.calls, 2)
            # Once found, no more rechecks until CACHE_TTL.
            eng.tick(0.5)
            self.assertEqual(self.read(), "replica2")
            self.assertEqual(self.primary.calls, 2)

    def test_recheck_off(self):
        self.primary.lsn = parse_lsn("0/3000")
        with override_settings(REPLROUTE={"NODES": NODES, "RYW_RECHECK": None, "RYW_WAIT": None}):
            with fake_engine(self.primary) as eng, fresh():
                remember_write()
                self.assertEqual(self.read(), "default")
                self.primary.readers[1] = ("standby2", 100, parse_lsn("0/3000"))
                eng.tick(0.5)
                self.assertEqual(self.read(), "default")
                self.assertEqual(self.primary.calls, 1)
                eng.tick(0.5)
                self.assertEqual(self.read(), "replica2")

    def test_min_lsn_expires(self):
        with override_settings(REPLROUTE={"NODES": NODES, "RYW_TTL": 2, "RYW_WAIT": None}):
            with fake_engine(self.primary, rng=FixedRandom(0.9)) as eng, fresh() as state:
                remember_write("0/1800")
                self.assertEqual(self.read(), "replica1")
                state.lsn_expires = eng.wall() - 0.001
                self.assertEqual(self.read(), "replica2")
                self.assertIsNone(state.lsn)

    def test_locating_fails_means_primary_and_write_stays_pending(self):
        with fake_engine(self.primary) as eng, fresh() as state:
            self.primary.fail = RuntimeError("down")
            remember_write()
            with self.assertLogs("replroute_django", "WARNING"):
                self.assertEqual(self.read(), "default")
            self.assertTrue(state.pending)
            self.assertEqual(self.read(), "default")
            self.assertEqual(self.primary.calls, 1)
            self.primary.fail = None
            eng.tick(1.0)
            self.assertEqual(self.read(), "replica1")
            self.assertFalse(state.pending)

    def test_uncommitted_writes_in_atomic_block_read_from_primary(self):
        from replroute_django import hooks

        conn = connections["default"]
        with fake_engine(self.primary), fresh() as state:
            conn.in_atomic_block = True
            conn.savepoint_ids = []
            try:
                hooks.track_writes(lambda *a: None, "INSERT INTO t VALUES (1)", None, False, {"connection": conn})
                self.assertEqual(self.read(), "default")
                self.assertFalse(state.pending)
                # Commit: Django leaves the block, then runs the hooks.
                conn.in_atomic_block = False
                callbacks, conn.run_on_commit = conn.run_on_commit, []
                for _, func in callbacks:
                    func()
                self.assertTrue(state.pending)
                self.assertEqual(self.read(), "replica1")
            finally:
                conn.in_atomic_block = False
                conn.run_on_commit = []

    def test_rolled_back_writes_leave_nothing_behind(self):
        from replroute_django import hooks

        conn = connections["default"]
        with fake_engine(self.primary, rng=FixedRandom(0.9)), fresh() as state:
            conn.in_atomic_block = True
            conn.savepoint_ids = []
            try:
                hooks.track_writes(lambda *a: None, "UPDATE t SET a = 1", None, False, {"connection": conn})
                self.assertEqual(self.read(), "default")
                conn.run_on_commit = []  # what a rollback does
                self.assertEqual(self.read(), "replica2")  # still in a block, but nothing uncommitted
                hooks.track_writes(lambda *a: None, "UPDATE t SET a = 2", None, False, {"connection": conn})
                self.assertEqual(self.read(), "default", "a new write after a rollback registers again")
                self.assertEqual(len(conn.run_on_commit), 1)
                hooks.track_writes(lambda *a: None, "UPDATE t SET a = 3", None, False, {"connection": conn})
                self.assertEqual(len(conn.run_on_commit), 1, "one registration per transaction")
                self.assertFalse(state.pending)
            finally:
                conn.in_atomic_block = False
                conn.run_on_commit = []

    def test_autocommit_write_is_pending_at_once(self):
        from replroute_django import hooks

        conn = connections["default"]
        with fresh() as state:
            hooks.track_writes(lambda *a: None, "DELETE FROM t", None, False, {"connection": conn})
            self.assertTrue(state.pending)
        with fresh() as state:
            hooks.track_writes(lambda *a: None, "SELECT 1", None, False, {"connection": conn})
            self.assertFalse(state.pending)


if __name__ == "__main__":
    unittest.main()
