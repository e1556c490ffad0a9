"""Stand-ins for the clock, the primary and the standbys' connections."""

import contextlib
import time

from replroute_django import engine as engine_mod
from replroute_django.lsn import format_lsn
from replroute_django.readers import build_snapshot


class Clock:
    """Fake time. With step, every reading advances it, as real time moves
    between two calls; without, it stands still until advance()."""

    def __init__(self, start=1000.0, step=0.0):
        self.now = start
        self.step = step

    def __call__(self):
        now = self.now
        self.now += self.step
        return now

    def advance(self, seconds):
        self.now += seconds


class FixedRandom:
    """rng.random() returns the given values in turn, then repeats the last."""

    def __init__(self, *values):
        self.values = list(values) or [0.0]

    def random(self):
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


class FakePrimary:
    """What replroute_readers() would answer, and how often it was asked."""

    def __init__(self, lsn=0x3000000):
        self.lsn = lsn
        self.readers = []  # (name, weight, replay_lsn int or None)
        self.calls = 0
        self.position_calls = 0
        self.fail = None
        self.gate = None
        # What a standby's replroute_wait_for_replay() finds: its true replay
        # position (default: the one listed), or "frozen" (no answer).
        self.actual = {}

    def add(self, name, weight=100, replay=None):
        self.readers.append((name, weight, replay))

    def rows(self):
        if not self.readers:
            return [(format_lsn(self.lsn), None, None, None)]
        return [(format_lsn(self.lsn), n, w, format_lsn(r)) for n, w, r in self.readers]


def without_waits(test, **extra):
    """For test's duration: RYW_WAIT off, the list alone decides (replroute 1.0's way)."""
    from django.test import override_settings

    cm = override_settings(REPLROUTE=dict({"NODES": {"standby1": "replica1", "standby2": "replica2"},
                                           "RYW_WAIT": None}, **extra))
    cm.enable()
    test.addCleanup(cm.disable)


@contextlib.contextmanager
def fake_engine(primary, up=("replica1", "replica2"), rng=None, step=0.0):
    """Swap the module's engine for one on fake time talking to `primary`.

    `up` is the set of aliases whose connection check passes; tests mutate it.
    `step`: seconds both clocks move at every reading (0: they stand still).
    `primary.gate`, if set, is called inside every fetch (tests block there).
    """
    clock = Clock(step=step)
    wall = Clock(time.time(), step=step)
    eng = engine_mod.Engine(clock=clock, wall=wall, rng=rng or FixedRandom(0.0))
    up = set(up)
    waits = []

    def fetch(config):
        primary.calls += 1
        if primary.gate is not None:
            primary.gate()
        if primary.fail is not None:
            raise primary.fail
        return build_snapshot(primary.rows(), config.nodes, clock, wall)

    def position(config):
        primary.position_calls += 1
        if primary.gate is not None:
            primary.gate()
        if primary.fail is not None:
            raise primary.fail
        return primary.lsn

    def wait_on(alias, lsn, config):
        name = {a: n for n, a in config.nodes.items()}[alias]
        waits.append((alias, lsn))
        listed = {n: r for n, _, r in primary.readers}
        actual = primary.actual.get(name, listed.get(name))
        if actual == "frozen":
            eng.count("wait_missed")
            eng.down.mark(alias, config.down_ttl)
            return engine_mod.MISSED
        if actual is not None and actual >= lsn:
            eng.confirmed[alias] = (lsn, clock())
            return engine_mod.REPLAYED
        eng.behind.mark(alias, engine_mod.BEHIND_SKIP)
        return engine_mod.BEHIND

    def usable(alias, config):
        if alias in up:
            return True
        eng.down.mark(alias, config.down_ttl)
        return False

    eng.fetch = fetch
    eng.position = position
    eng.wait_on = wait_on
    eng.waits = waits
    eng.usable = usable
    eng.up = up
    eng.tick = lambda s: (clock.advance(s), wall.advance(s))
    saved = engine_mod._engine
    engine_mod._engine = eng
    try:
        yield eng
    finally:
        engine_mod._engine = saved
