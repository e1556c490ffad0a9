"""ReplrouteRouter: writes to the primary, reads to a standby replroute vouches for.

Decision for one read, in order (first match wins):
  1. REPLROUTE disabled, a model listed in PRIMARY_MODELS, pin_primary(),
     or uncommitted writes on the primary's connection  -> primary
  2. a committed write not yet located (State.pending): one query to the
     primary returns its WAL position and a fresh readers list together
  3. otherwise the cached readers list, refreshed when older than CACHE_TTL
  4. keep readers whose replay_lsn >= the required LSN; if none, refresh
     when the list predates that LSN or is older than RYW_RECHECK
  5. prefer the alias of a related instance, then this request's earlier
     choice (monotonic reads within a request), else weighted random
  6. check the chosen connection (a closed socket, a refused connect) and
     try the next candidate; none left -> primary
"""

import logging
import random
import select
import time

from django.db import connections, transaction

from . import hooks
from .conf import get_config
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


class Engine:
    def __init__(self, clock=time.monotonic, wall=time.time, rng=None):
        self.cache = ReadersCache(clock=clock, wall=wall)
        self.down = DownMarks(clock=clock)
        self.clock = clock
        self.wall = wall
        self.rng = rng or random.Random()
        self._last_warning = 0.0

    # -- talking to the primary -------------------------------------------

    def fetch(self, config):
        conn = connections[config.primary]
        hooks.install(conn, config)
        sql = READERS_SQL.format(q=config.qualifier)
        params = [config.max_lag_bytes, config.max_lag]
        if conn.in_atomic_block:
            # A failing call (extension missing, say) must not abort the
            # application's transaction: contain it in a savepoint.
            with transaction.atomic(using=config.primary):
                rows = self._run(conn, sql, params)
        else:
            rows = self._run(conn, sql, params)
        return build_snapshot(rows, config.nodes, self.clock, self.wall)

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

    def capture(self, state, config=None):
        """Learn the primary's WAL position for state's committed writes.

        Returns the snapshot fetched along with it (the same round trip).
        On failure the write stays pending and the caller reads the primary.
        """
        config = config or get_config()
        # This thread's own round trip: no other thread's fetch can stand in
        # for it (it may have started before this write committed), so it
        # takes no lock and queues behind nobody.
        snapshot = self.cache.fetch_now(self._fetcher(config))
        self._note_failure(snapshot)
        if snapshot.ok and snapshot.primary_lsn is not None:
            state.pending = False
            # The position is as old as the list it came with, not as old as
            # this moment: stamped with the time of now, the list would count
            # as predating it and be fetched again at once.
            state.note_lsn(snapshot.primary_lsn, config.ryw_ttl,
                           captured_wall=snapshot.fetched_wall, now=self.wall())
        return snapshot

    # -- choosing ----------------------------------------------------------

    def candidates(self, state, config):
        """(readers that qualify, snapshot), or (None, snapshot) for 'use the primary'."""
        if state.pending:
            snapshot = self.cache.peek()
            if snapshot is not None and not snapshot.ok and self.cache.is_fresh(snapshot, config.cache_ttl):
                return None, snapshot
            snapshot = self.capture(state, config)
            if state.pending:
                return None, snapshot
        else:
            snapshot = self.cache.get(self._fetcher(config), config.cache_ttl)
            if snapshot is None:
                # The first list is being fetched by another thread.
                return None, None
            self._note_failure(snapshot)
        if not snapshot.ok:
            return None, snapshot
        min_lsn = state.required_lsn(self.wall())
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
        found, _ = self.candidates(state, config)
        if not found:
            return config.primary
        if exclude:
            found = [r for r in found if r.alias not in exclude]
        for alias in (preferred, state.sticky_alias if state.sticky else None):
            if alias is not None and any(r.alias == alias for r in found):
                if self.usable(alias, config):
                    return alias
                found = [r for r in found if r.alias != alias]
        while found:
            reader = weighted_choice(found, self.rng)
            if self.usable(reader.alias, config):
                if state.sticky:
                    state.sticky_alias = reader.alias
                return reader.alias
            found = [r for r in found if r.alias != reader.alias]
        return config.primary

    def usable(self, alias, config):
        """Will a query on alias's connection reach a live server?

        An open connection is checked without a round trip: when the server
        went away its socket turns readable (an error message or EOF), and
        nothing else should arrive on an idle connection to a standby. A
        closed one is opened here, where a refusal can still be routed around;
        a connect error inside the ORM could not.
        """
        conn = connections[alias]
        hooks.install(conn, config)
        if conn.in_atomic_block:
            return True
        raw = conn.connection
        if raw is not None:
            if not hooks.connection_broken(conn) and not _socket_readable(raw):
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


def _socket_readable(raw):
    try:
        fd = raw.fileno()
        readable, _, _ = select.select([fd], [], [], 0)
        return bool(readable)
    except (OSError, ValueError, AttributeError):
        return True


_engine = Engine()


def engine():
    return _engine


class ReplrouteRouter:
    """For DATABASE_ROUTERS."""

    def db_for_read(self, model, **hints):
        config = get_config()
        if not config.enabled or config.model_needs_primary(model):
            return config.primary
        state = current_state()
        if state.pinned:
            return config.primary
        primary = connections[config.primary]
        hooks.install(primary, config)
        if hooks.primary_has_uncommitted_writes(primary):
            return config.primary
        preferred = None
        instance = hints.get("instance")
        if instance is not None:
            db = getattr(getattr(instance, "_state", None), "db", None)
            if db in config.standby_aliases:
                preferred = db
        return _engine.choose(state, config, preferred=preferred)

    def db_for_write(self, model, **hints):
        config = get_config()
        hooks.install(connections[config.primary], config)
        return config.primary

    def allow_relation(self, obj1, obj2, **hints):
        config = get_config()
        ours = config.standby_aliases | {config.primary}
        if obj1._state.db in ours and obj2._state.db in ours:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        config = get_config()
        if db in config.standby_aliases:
            return False
        # The primary: no opinion, so Django's default (migrate) or a later
        # router that splits apps across databases decides.
        return None
