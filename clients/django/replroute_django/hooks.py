"""Execute wrappers: write detection on the primary, read retry on standbys.

Why execute wrappers and not post_save / on_commit alone: post_save misses
QuerySet.update(), bulk_create(), delete() of querysets and raw SQL, which
are exactly the writes whose results people then read. Every statement Django
sends, ORM or raw cursor, passes through connection.execute_wrappers, so a
wrapper on the primary's connection sees all of them; sql.is_write() decides
from the statement text. A write is "done" only once committed, so:

- in autocommit, the statement itself committed: the scope's State takes
  its position (below);
- inside atomic(), an on_commit callback does the same when (and only if)
  the transaction commits, and until then reads go to the primary, the only
  node that can see the uncommitted rows. Whether the transaction has
  uncommitted writes is read from the connection's own on_commit list, so a
  rollback (which discards that list, or the part registered in a rolled
  back savepoint) leaves no stale flag behind;
- in manual transaction management (set_autocommit(False)) there is no
  commit hook: reads go to the primary until autocommit is back on, and the
  write is then `pending` (located by a query).

On standbys, retry_reads re-runs a lone read elsewhere when its connection
broke, and puts READ_DEADLINE (if set) on every statement.

Where the position of a committed write comes from: replroute 1.1 reports
it to the client at every commit that wrote (the setting replroute.commit_lsn,
sent as a ParameterStatus message with the commit's reply, read here with
psycopg2's get_parameter_status() at no cost). When it changed across the
statement (autocommit) or since the transaction's first write (atomic()),
it is the position; otherwise (replroute 1.0, a pooler that forwards only
the parameters it knows, a write that wrote nothing) the write is marked
`pending` and the engine asks the primary for pg_current_wal_insert_lsn()
before the next read. In autocommit a changed position is noted even for a
statement that does not look like a write (SELECT my_proc()).

Wrappers are inserted at the front of the list: Django's execute_wrapper()
context manager pops the last item on exit, and a wrapper of ours appended
while one of the application's is active would be popped in its place.
"""

import logging

from django.db import InterfaceError, OperationalError, connections
from django.db.backends.signals import connection_created

from .conf import get_config
from .conncheck import connection_broken, deadlines
from .engine import engine
from .lsn import parse_lsn
from .sql import is_read, is_write
from .state import current_state

logger = logging.getLogger("replroute_django")

COMMIT_LSN = "replroute.commit_lsn"
_COMMIT_CB = "_replroute_commit_cb"
_BEFORE = "_replroute_commit_lsn_before"
_MANUAL_DIRTY = "_replroute_manual_dirty"


def _mark_pending():
    current_state().pending = True


def reported_lsn(conn):
    """The last replroute.commit_lsn the primary reported on conn, or None."""
    raw = conn.connection
    if raw is None:
        return None
    try:
        return raw.get_parameter_status(COMMIT_LSN)
    except Exception:
        return None


def note_committed(conn, before, wrote=True):
    """A statement or transaction on conn committed; before: the reported
    position when it began. Returns True if the position was reported."""
    config = get_config()
    after = reported_lsn(conn) if config.reported_position else None
    if after and after != before:
        try:
            lsn = parse_lsn(after)
        except ValueError:
            lsn = None
        if lsn is not None:
            current_state().note_lsn(lsn, config.ryw_ttl)
            engine().count("reported")
            return True
    if wrote:
        _mark_pending()
        engine().count("unreported")
    return False


def _commit_callback(conn):
    cb = conn.__dict__.get(_COMMIT_CB)
    if cb is None:
        # A distinct object per connection, so membership in run_on_commit
        # identifies this connection's registration.
        def cb():
            note_committed(conn, conn.__dict__.get(_BEFORE))

        conn.__dict__[_COMMIT_CB] = cb
    return cb


def _registered(conn, cb):
    return any(entry[1] is cb for entry in conn.run_on_commit)


def note_primary_write(conn, before=None):
    if conn.in_atomic_block:
        cb = _commit_callback(conn)
        if not _registered(conn, cb):
            conn.__dict__[_BEFORE] = before
            conn.on_commit(cb)
    elif conn.connection is not None and not conn.autocommit:
        conn.__dict__[_MANUAL_DIRTY] = True
    else:
        note_committed(conn, before)


def primary_has_uncommitted_writes(conn):
    if conn.in_atomic_block:
        cb = conn.__dict__.get(_COMMIT_CB)
        return cb is not None and _registered(conn, cb)
    if conn.__dict__.get(_MANUAL_DIRTY):
        if conn.connection is not None and not conn.autocommit:
            return True
        # Back in autocommit: whatever was written is committed or gone.
        conn.__dict__[_MANUAL_DIRTY] = False
        _mark_pending()
    return False


def track_writes(execute, sql, params, many, context):
    conn = context["connection"]
    before = reported_lsn(conn)
    result = execute(sql, params, many, context)
    if is_write(sql):
        note_primary_write(conn, before)
    elif not conn.in_atomic_block and conn.autocommit:
        # A commit the text did not show (a function that writes): if the
        # primary reported one, it binds the reads that follow.
        note_committed(conn, before, wrote=False)
    return result


_RETRY_SQLSTATES = frozenset(["57P01", "57P02", "57P03", "40001"])


def _sqlstate(exc):
    cause = exc.__cause__ or exc
    return getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)


def retryable(exc, conn):
    """A failure of the node, not of the statement: worth running elsewhere.

    40001 on a standby in autocommit is a recovery conflict, which another
    node does not have.
    """
    if connection_broken(conn):
        return True
    code = _sqlstate(exc)
    return bool(code) and (code.startswith("08") or code in _RETRY_SQLSTATES)


def _execute_with_deadline(execute, sql, params, many, context, seconds):
    raw = context["connection"].connection
    if raw is None:
        return execute(sql, params, many, context)
    with deadlines().guard(raw, seconds) as guard:
        try:
            return execute(sql, params, many, context)
        except (OperationalError, InterfaceError):
            if guard.fired:
                engine().count("read_deadline_missed")
            raise


def retry_reads(execute, sql, params, many, context):
    try:
        seconds = get_config().read_deadline
        if seconds is not None and not many:
            return _execute_with_deadline(execute, sql, params, many, context, seconds)
        return execute(sql, params, many, context)
    except (OperationalError, InterfaceError) as exc:
        conn = context["connection"]
        config = get_config()
        # Only a lone read outside a transaction can be re-run without the
        # caller noticing: there is no transaction state to lose.
        if (
            not config.retry_reads
            or many
            or conn.in_atomic_block
            or not conn.autocommit
            or not is_read(sql)
            or not retryable(exc, conn)
        ):
            raise
        broken = connection_broken(conn)
        alt_alias = engine().failover_alias(conn.alias, mark_down=broken)
        logger.warning(
            "replroute: read on %r failed (%s); retrying on %r", conn.alias, exc, alt_alias
        )
        alt = connections[alt_alias]
        alt.ensure_connection()
        # The ORM keeps fetching from the CursorWrapper it holds; giving it a
        # cursor of the other node's connection makes the retry invisible.
        context["cursor"].cursor = alt.connection.cursor()
        if broken:
            try:
                conn.close()
            except Exception:
                pass
        with alt.wrap_database_errors:
            return execute(sql, params, many, context)


def install(conn, config=None):
    config = config or get_config()
    if not config.enabled:
        return
    if conn.alias == config.primary:
        wrapper = track_writes
    elif conn.alias in config.standby_aliases:
        wrapper = retry_reads
    else:
        return
    if wrapper not in conn.execute_wrappers:
        conn.execute_wrappers.insert(0, wrapper)


def _on_connection_created(sender, connection, **kwargs):
    install(connection)


connection_created.connect(_on_connection_created, dispatch_uid="replroute_django.hooks")
