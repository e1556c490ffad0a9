"""The process-wide routing engine: the readers cache, the marks, the waits.

One Engine per process (engine()), imported by the router, the hooks, the
middleware and the public API alike; it imports none of them.

Choosing the node for one read (Engine.choose):
  1. a committed write whose position was not reported (State.pending): one
     query to the primary, SELECT pg_current_wal_insert_lsn(), locates it
  2. the cached replroute_readers() list, fetched again when older than
     CACHE_TTL or when the LISTEN thread heard an event
  3. no position required: a routable standby (the related instance's, this
     request's, else weighted random) whose connection checks out
  4. a position required: a standby known to have replayed it (from the
     list, or from an earlier wait of this process) is used as in 3;
     otherwise one standby runs replroute_wait_for_replay(position, RYW_WAIT)
     under a client-side deadline: true -> that standby; false -> the
     primary (at most one wait per read); a missed deadline or a broken
     connection -> the connection is discarded and the next standby tried
  5. the primary when nothing else qualifies
"""

import collections
import logging
import random
import threading
import time

from django.db import connections, transaction

from .conf import get_config
from .conncheck import connection_broken, deadlines, socket_readable
from .listener import Listener
from .lsn import format_lsn, parse_lsn
from .readers import DownMarks, ReadersCache, build_snapshot, eligible, weighted_choice
from .state import current_state

logger = logging.getLogger("replroute_django")

READERS_SQL = (
    "SELECT pg_catalog.pg_current_wal_insert_lsn()::text, r.name, r.weight, r.replay_lsn::text "
    "FROM (SELECT 1) AS one LEFT JOIN {q}replroute_readers(%s::bigint, %s::interval) AS r ON true"
)
# pg_current_wal_insert_lsn() rather than pg_current_wal_lsn(): under
# synchronous_commit = off a commit can return before its record is written,
# so the write position may still be short of it; the insert position never is.
POSITION_SQL = "SELECT pg_catalog.pg_current_wal_insert_lsn()::text"
WAIT_SQL = "SELECT {q}replroute_wait_for_replay(%s::pg_lsn, %s::interval)"

# What a wait on a standby ended with.
REPLAYED = "replayed"   # true: the standby has the write
BEHIND = "behind"       # false: it did not replay it within RYW_WAIT
MISSED = "missed"       # no answer in time, or an error: try elsewhere
NO_WAIT = "no-wait"     # cannot wait there (no function, in a transaction)

# Seconds a standby whose wait said false is skipped by reads after writes.
BEHIND_SKIP = 0.2

# The standby has no replroute_wait_for_replay() (extension 1.0), or no schema.
_NO_FUNCTION = frozenset(["42883", "3F000"])


class Engine:
    def __init__(self, clock=time.monotonic, wall=time.time, rng=None):
        self.cache = ReadersCache(clock=clock, wall=wall)
        self.down = DownMarks(clock=clock)
        # Standbys whose wait said false: skipped for reads that need a
        # position for BEHIND_SKIP or until the next event, so a paused
        # standby costs one wait per period, not one per read, and a healthy
        # one that was slow once is asked again soon.
        self.behind = DownMarks(clock=clock)
        self.no_wait = set()
        # alias -> (position a wait confirmed, when): replay never goes back.
        self.confirmed = {}
        self.clock = clock
        self.wall = wall
        self.rng = rng or random.Random()
        self.counts = collections.Counter()
        self._counts_lock = threading.Lock()
        self._last_warning = 0.0
        self._warned = {}
        self.listener = None
        self._listener_alias = None

    def count(self, key, n=1):
        with self._counts_lock:
            self.counts[key] += n

    def _warn(self, key, text, *args):
        now = self.clock()
        if now - self._warned.get(key, -1e9) >= 10.0:
            self._warned[key] = now
            logger.warning(text, *args)

    # -- talking to the primary -------------------------------------------

    def fetch(self, config):
        self.ensure_listener(config)
        conn = connections[config.primary]
        sql = READERS_SQL.format(q=config.qualifier)
        params = [config.max_lag_bytes, config.max_lag]
        return build_snapshot(self._query_primary(conn, config, sql, params), config.nodes, self.clock, self.wall)

    def position(self, config):
        """The primary's WAL insert position now: the fallback for an unreported commit."""
        conn = connections[config.primary]
        rows = self._query_primary(conn, config, POSITION_SQL, None)
        self.count("position_queries")
        return parse_lsn(rows[0][0])

    def _query_primary(self, conn, config, sql, params):
        if conn.in_atomic_block:
            # A failing call (extension missing, say) must not abort the
            # application's transaction: contain it in a savepoint.
            with transaction.atomic(using=config.primary):
                return self._run(conn, sql, params)
        return self._run(conn, sql, params)

    @staticmethod
    def _run(conn, sql, params):
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _fetcher(self, config):
        return lambda: self.fetch(config)

    def _note_failure(self, snapshot):
        if snapshot.ok:
            return
        now = self.clock()
        # One line per cache period, not one per read.
        if now - self._last_warning >= 10.0:
            self._last_warning = now
            logger.warning("replroute: cannot ask the primary for readers, reading from the primary: %s",
                           snapshot.error)

    def ensure_listener(self, config):
        alias = config.listen_alias
        if alias is None:
            return
        listener = self.listener
        if listener is None or self._listener_alias != alias:
            params = connections[alias].get_connection_params()
            if listener is not None:
                listener.stop(timeout=0)
            listener = self.listener = Listener(lambda: params, self.on_event)
            self._listener_alias = alias
        listener.ensure_started()

    def on_event(self):
        """Something changed on the primary's side: forget the list and the false waits."""
        self.cache.invalidate()
        self.behind.clear()
        self.count("events")

    def capture(self, state, config=None):
        """Locate state's committed writes that were not reported: the fallback query.

        Returns True when located. On failure the write stays pending and the
        caller reads the primary. With RYW_WAIT off the list comes along in
        the same query (the position alone would send every read after a
        write to the primary until the next list).
        """
        config = config or get_config()
        if config.ryw_wait is None:
            # This thread's own round trip: no other thread's fetch can stand
            # in for it (it may have started before this write committed), so
            # it takes no lock and queues behind nobody.
            snapshot = self.cache.fetch_now(self._fetcher(config))
            self._note_failure(snapshot)
            if not (snapshot.ok and snapshot.primary_lsn is not None):
                return False
            self.count("position_queries")
            lsn, captured = snapshot.primary_lsn, snapshot.fetched_wall
        else:
            try:
                lsn = self.position(config)
            except Exception as exc:
                self._warn("position", "replroute: cannot ask the primary for its WAL position, "
                                       "reading from the primary: %s", exc)
                return False
            captured = self.wall()
        state.pending = False
        # The position is as old as the list it came with, not as old as
        # this moment: stamped with the time of now, the list would count
        # as predating it and be fetched again at once.
        state.note_lsn(lsn, config.ryw_ttl, captured_wall=captured, now=self.wall())
        return True

    # -- choosing ----------------------------------------------------------

    def candidates(self, state, config, waiting=False):
        """(readers that qualify, snapshot), or (None, snapshot) for 'use the primary'.

        waiting: a position is required and standbys may wait for it, so the
        list is not filtered by replay position here.
        """
        snapshot = self.cache.get(self._fetcher(config), config.cache_ttl)
        if snapshot is None:
            # The first list is being fetched by another thread.
            return None, None
        self._note_failure(snapshot)
        if not snapshot.ok:
            return None, snapshot
        min_lsn = None if waiting else state.required_lsn(self.wall())
        found = eligible(snapshot.readers, min_lsn, self.down)
        if not found and min_lsn is not None:
            # The list may be older than the position: a standby may have
            # caught up since. A list that predates the position is fetched
            # again; a later one only when RYW_RECHECK old. Neither waits for
            # another thread's fetch: while one runs, the others keep the
            # list they have and, finding no standby in it, read the primary.
            if _predates(snapshot, state, min_lsn):
                fresh = self.cache.refresh(self._fetcher(config))
                if fresh is None:
                    return None, snapshot
                snapshot = fresh
            elif config.ryw_recheck is not None:
                snapshot = self.cache.get(self._fetcher(config), config.ryw_recheck)
            else:
                return found, snapshot
            self._note_failure(snapshot)
            if not snapshot.ok:
                return None, snapshot
            found = eligible(snapshot.readers, min_lsn, self.down)
        return found, snapshot

    def choose(self, state, config, preferred=None, exclude=()):
        if state.pending:
            snapshot = self.cache.peek()
            if snapshot is not None and not snapshot.ok and self.cache.is_fresh(snapshot, config.cache_ttl):
                return config.primary
            if not self.capture(state, config):
                return config.primary
        min_lsn = state.required_lsn(self.wall())
        waiting = min_lsn is not None and config.ryw_wait is not None
        found, _ = self.candidates(state, config, waiting=waiting)
        if not found:
            return config.primary
        if exclude:
            found = [r for r in found if r.alias not in exclude]
        if not waiting:
            return self._first_usable(found, state, config, preferred) or config.primary

        ready = [r for r in found if self._has_replayed(r, min_lsn, config)]
        if ready:
            alias = self._first_usable(ready, state, config, preferred)
            if alias is not None:
                self.count("ryw_ready")
                return alias
        others = [r for r in found if r not in ready and r.alias not in self.no_wait
                  and not self.behind.is_down(r.alias)]
        for reader in self._order(others, state, preferred):
            if not self.usable(reader.alias, config):
                continue
            result = self.wait_on(reader.alias, min_lsn, config)
            if result == REPLAYED:
                if state.sticky:
                    state.sticky_alias = reader.alias
                return reader.alias
            if result == BEHIND:
                # The only answer that sends the read to the primary: waiting
                # on another standby could double the delay.
                break
        self.count("ryw_primary")
        return config.primary

    def _order(self, found, state, preferred):
        """Readers in the order they are tried: the related instance's, this
        request's earlier choice, then weighted random draws."""
        found = list(found)
        for alias in (preferred, state.sticky_alias if state.sticky else None):
            if alias is None:
                continue
            for reader in found:
                if reader.alias == alias:
                    found.remove(reader)
                    yield reader
                    break
        while found:
            reader = weighted_choice(found, self.rng)
            if reader is None:
                return
            found.remove(reader)
            yield reader

    def _first_usable(self, found, state, config, preferred):
        sticky = state.sticky_alias if state.sticky else None
        for reader in self._order(found, state, preferred):
            if self.usable(reader.alias, config):
                if state.sticky and reader.alias != preferred and sticky is None:
                    state.sticky_alias = reader.alias
                return reader.alias
        return None

    def _has_replayed(self, reader, min_lsn, config):
        if reader.replay_lsn is not None and reader.replay_lsn >= min_lsn:
            return True
        confirmed = self.confirmed.get(reader.alias)
        return (confirmed is not None and confirmed[0] >= min_lsn
                and self.clock() - confirmed[1] < max(config.cache_ttl, 1.0))

    def wait_on(self, alias, lsn, config):
        """Run replroute_wait_for_replay(lsn, RYW_WAIT) on alias's open connection.

        Outside Django's execute wrappers (a missed wait is not a failed
        read to re-run), under a client-side deadline of RYW_WAIT +
        DEADLINE_MARGIN. Returns REPLAYED, BEHIND, MISSED or NO_WAIT.
        """
        conn = connections[alias]
        if conn.in_atomic_block or not conn.autocommit:
            # A wait inside a transaction block either holds an old snapshot
            # (REPEATABLE READ: refused) or would hold one while waiting.
            self.count("wait_in_transaction")
            return NO_WAIT
        raw = conn.connection
        if raw is None:
            return MISSED
        guard = None
        started = self.clock()
        try:
            with deadlines().guard(raw, config.ryw_wait + config.deadline_margin) as guard:
                with raw.cursor() as cursor:
                    cursor.execute(WAIT_SQL.format(q=config.qualifier), (format_lsn(lsn), config.ryw_wait_interval))
                    replayed = cursor.fetchone()[0]
        except Exception as exc:
            fired = guard is not None and guard.fired
            code = getattr(exc, "pgcode", None)
            if not fired and code in _NO_FUNCTION:
                self.no_wait.add(alias)
                self._warn("nofunc:" + alias, "replroute: %r has no replroute_wait_for_replay() (replroute 1.0?); "
                           "reads after writes use it only once the list shows it replayed them: %s",
                           alias, str(exc).strip())
                return NO_WAIT
            broken = fired or bool(getattr(raw, "closed", False))
            self.count("wait_missed" if fired else "wait_failed")
            if broken:
                self.discard(alias, config)
            self._warn("wait:" + alias, "replroute: waiting for replay on %r %s (%s); reading elsewhere",
                       alias, "missed its deadline" if fired else "failed", str(exc).strip())
            return MISSED
        if guard.fired:
            # The deadline passed just as the answer came: the socket is shut.
            self.count("wait_missed")
            self.discard(alias, config)
            return MISSED
        self.count("wait_true" if replayed else "wait_false")
        self.count("wait_us", int((self.clock() - started) * 1e6))
        if replayed:
            previous = self.confirmed.get(alias)
            if previous is None or previous[0] <= lsn:
                self.confirmed[alias] = (lsn, self.clock())
            return REPLAYED
        self.behind.mark(alias, BEHIND_SKIP)
        return BEHIND

    def discard(self, alias, config):
        """Close alias's connection (it missed a deadline) and skip it for DOWN_TTL."""
        conn = connections[alias]
        try:
            conn.close()
        except Exception:
            pass
        self.down.mark(alias, config.down_ttl)
        st = current_state()
        if st.sticky_alias == alias:
            st.sticky_alias = None

    def usable(self, alias, config):
        """Will a query on alias's connection reach a live server?

        An open connection is checked without a round trip: when the server
        went away its socket turns readable (an error message or EOF), and
        nothing else should arrive on an idle connection to a standby. A
        closed one is opened here, where a refusal can still be routed around;
        a connect error inside the ORM could not.
        """
        conn = connections[alias]
        if conn.in_atomic_block:
            return True
        raw = conn.connection
        if raw is not None:
            if not connection_broken(conn) and not socket_readable(raw):
                return True
            try:
                conn.close()
            except Exception:
                pass
        try:
            conn.ensure_connection()
            return True
        except Exception as exc:
            logger.warning("replroute: cannot connect to %r (%s); skipping it for %.1f s",
                           alias, exc, config.down_ttl)
            self.down.mark(alias, config.down_ttl)
            return False

    def failover_alias(self, failed_alias, mark_down=True):
        config = get_config()
        if mark_down:
            self.down.mark(failed_alias, config.down_ttl)
        state = current_state()
        if state.sticky_alias == failed_alias:
            state.sticky_alias = None
        return self.choose(state, config, exclude=(failed_alias,))

    def reset(self):
        self.cache.invalidate()
        self.down.clear()
        self.behind.clear()
        self.no_wait.clear()
        self.confirmed.clear()
        with self._counts_lock:
            self.counts.clear()


def _predates(snapshot, state, min_lsn):
    """Was the list fetched before the required position existed?

    By the clock (the position's capture time) and, where the list carries
    the primary's position, by WAL too: a list fetched when the primary was
    already at min_lsn does not predate it, whatever the clocks say (a cookie
    stamped by another process's clock). A wrong "no" costs a read on the
    primary until RYW_RECHECK, never a stale read: eligible() decides that.
    """
    if snapshot.fetched_wall >= state.lsn_wall:
        return False
    return snapshot.primary_lsn is None or snapshot.primary_lsn < min_lsn


_engine = Engine()


def engine():
    return _engine
