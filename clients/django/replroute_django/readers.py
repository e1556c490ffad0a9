"""The process-wide cache of replroute_readers() and the local choice among them.

One snapshot is shared by every thread of the process: the point of the cache
is that most reads cost no round trip to the primary, and threads that each
kept their own would multiply those round trips. A snapshot is immutable;
replacing the reference is atomic, so readers take no lock. Only a refresh
takes the lock, and a thread that finds another refreshing never waits for
it: it uses the snapshot it has, or reads the primary.

A failed fetch is cached too (an empty, not-ok snapshot): while the primary
cannot be asked, reads go to the primary without each paying a connect
timeout.
"""

import collections
import random
import threading
import time

from .lsn import parse_lsn

Reader = collections.namedtuple("Reader", "name alias weight replay_lsn")


class Snapshot:
    __slots__ = ("readers", "fetched_at", "fetched_wall", "ok", "primary_lsn", "error")

    def __init__(self, readers, fetched_at, fetched_wall, ok=True, primary_lsn=None, error=None):
        self.readers = tuple(readers)
        self.fetched_at = fetched_at
        self.fetched_wall = fetched_wall
        self.ok = ok
        self.primary_lsn = primary_lsn
        self.error = error

    def age(self, now):
        return now - self.fetched_at


def build_snapshot(rows, nodes, clock, wall):
    """rows: (primary_lsn_text, name, weight, replay_lsn_text) as the query returns them.

    The query is a LEFT JOIN from one row, so the primary's position arrives
    even when no standby is routable; such a row has name NULL. Nodes that
    NODES does not map are dropped here, once, not at every choice.
    """
    primary_lsn = None
    readers = []
    for primary_text, name, weight, replay_text in rows:
        if primary_text is not None:
            primary_lsn = parse_lsn(primary_text)
        if name is None:
            continue
        alias = nodes.get(name)
        if alias is None:
            continue
        readers.append(Reader(name, alias, int(weight or 0), parse_lsn(replay_text)))
    return Snapshot(readers, clock(), wall(), ok=True, primary_lsn=primary_lsn)


class ReadersCache:
    """The shared snapshot, and who fetches the next one.

    No caller ever waits for another thread's round trip:

    - get(): a list older than the TTL is fetched again by one thread; the
      others go on with the list they have (None before the first one: the
      caller reads the primary).
    - refresh(): fetch now whatever the age, unless another thread is
      fetching; then None, and the caller reads the primary.
    - fetch_now(): a round trip whose answer is the caller's own (the WAL
      position of its write). Taken outside the lock, since no other
      thread's fetch can stand in for it, and the list it brings along is
      published if it is the newest.

    Which snapshot wins does not decide correctness: every choice still
    requires replay_lsn >= the remembered position (eligible()).
    """

    def __init__(self, clock=time.monotonic, wall=time.time):
        self.clock = clock
        self.wall = wall
        self._snapshot = None
        self._lock = threading.Lock()       # held by the one thread refreshing
        self._publish = threading.Lock()    # held only to compare and swap

    def peek(self):
        return self._snapshot

    def is_fresh(self, snapshot, ttl):
        return snapshot is not None and snapshot.age(self.clock()) < ttl

    def get(self, fetch, ttl):
        snapshot = self._snapshot
        if self.is_fresh(snapshot, ttl):
            return snapshot
        if not self._lock.acquire(blocking=False):
            return snapshot
        try:
            # Another thread may have refreshed since this one looked.
            current = self._snapshot
            if current is not snapshot and self.is_fresh(current, ttl):
                return current
            return self._publish_newest(self._fetch(fetch))
        finally:
            self._lock.release()

    def refresh(self, fetch):
        """Fetch now, whatever the age: the caller needs data newer than it has.

        Returns None when another thread is fetching already: waiting for it
        would queue every thread behind one round trip at a time.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._publish_newest(self._fetch(fetch))
        finally:
            self._lock.release()

    def fetch_now(self, fetch):
        """Fetch without the lock; publish the answer if no newer one arrived."""
        snapshot = self._fetch(fetch)
        self._publish_newest(snapshot)
        return snapshot

    def _fetch(self, fetch):
        try:
            return fetch()
        except Exception as exc:  # any failure means "cannot ask the primary"
            return Snapshot((), self.clock(), self.wall(), ok=False, error=exc)

    def _publish_newest(self, snapshot):
        with self._publish:
            current = self._snapshot
            if current is None or snapshot.fetched_at >= current.fetched_at:
                self._snapshot = snapshot
        return snapshot

    def invalidate(self):
        self._snapshot = None


class DownMarks:
    """Aliases this process found unreachable, skipped until a deadline.

    The worker on the primary notices a dead standby within a round, but our
    cached list can be up to CACHE_TTL old; without this, every read in that
    window would try the dead standby first.
    """

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._until = {}

    def mark(self, alias, seconds):
        self._until[alias] = self.clock() + seconds

    def is_down(self, alias):
        until = self._until.get(alias)
        if until is None:
            return False
        if self.clock() >= until:
            self._until.pop(alias, None)
            return False
        return True

    def clear(self):
        self._until.clear()


def eligible(readers, min_lsn, down=None):
    """Readers that may serve a read needing min_lsn (None: any position).

    A reader whose replay position is unknown cannot prove it replayed
    anything, so it is excluded whenever a position is required.
    """
    out = []
    for reader in readers:
        if reader.weight <= 0:
            continue
        if min_lsn is not None and (reader.replay_lsn is None or reader.replay_lsn < min_lsn):
            continue
        if down is not None and down.is_down(reader.alias):
            continue
        out.append(reader)
    return out


def weighted_choice(readers, rng=random):
    total = sum(reader.weight for reader in readers)
    if total <= 0:
        return None
    point = rng.random() * total
    for reader in readers:
        point -= reader.weight
        if point < 0:
            return reader
    # Floating point can leave a sliver at the end.
    return readers[-1]
