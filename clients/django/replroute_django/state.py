"""What the current request, task or thread needs from its reads.

State lives in a ContextVar so that it is per thread and per asyncio task
without locks. The middleware gives each request a fresh State and drops it
at the end; outside requests, each thread gets a State of its own on first
use, which read_your_writes() can scope more narrowly.

The object is mutated in place rather than re-set: sync_to_async runs code in
a copied context, and changes to a shared object survive the trip back where
a ContextVar.set() would not.
"""

import contextlib
import contextvars
import time

from .lsn import format_lsn, lsn_max, parse_lsn


class State:
    __slots__ = ("pinned", "lsn", "lsn_wall", "lsn_expires", "pending", "sticky", "sticky_alias", "changed")

    def __init__(self, sticky=False):
        self.pinned = 0
        self.lsn = None
        self.lsn_wall = 0.0
        self.lsn_expires = 0.0
        # A write committed whose WAL position we have not asked for yet.
        # Asked lazily: several writes before the next read cost one round trip.
        self.pending = False
        self.sticky = sticky
        self.sticky_alias = None
        self.changed = False

    def note_lsn(self, lsn, ttl, captured_wall=None, now=None):
        """Require lsn from now on (the larger of it and any earlier one)."""
        now = time.time() if now is None else now
        captured_wall = now if captured_wall is None else captured_wall
        if self.lsn is not None and now >= self.lsn_expires:
            self.lsn = None
        new = lsn_max(self.lsn, lsn)
        if new != self.lsn or captured_wall + ttl > self.lsn_expires:
            self.changed = True
        self.lsn = new
        self.lsn_wall = max(self.lsn_wall, captured_wall)
        self.lsn_expires = max(self.lsn_expires, captured_wall + ttl)

    def required_lsn(self, now=None):
        if self.lsn is None:
            return None
        now = time.time() if now is None else now
        if now >= self.lsn_expires:
            # Past the TTL a standby still behind is beyond any sane lag bound;
            # keeping the LSN would only keep this client on the primary.
            self.lsn = None
            return None
        return self.lsn


_current = contextvars.ContextVar("replroute_django_state")


def current_state():
    try:
        return _current.get()
    except LookupError:
        state = State()
        _current.set(state)
        return state


@contextlib.contextmanager
def scoped_state(state):
    token = _current.set(state)
    try:
        yield state
    finally:
        _current.reset(token)


class pin_primary(contextlib.ContextDecorator):
    """Send every read in the block to the primary."""

    def __enter__(self):
        self._state = current_state()
        self._state.pinned += 1
        return self

    def __exit__(self, *exc):
        self._state.pinned -= 1
        return False


class read_your_writes(contextlib.ContextDecorator):
    """A scope whose reads see its own writes (and those of `lsn`, if given).

    For code outside a request: a management command, a task that was handed
    write_lsn() by the request that queued it. Scopes nest; an inner scope
    starts from what the outer one required, so nothing it reads is older.
    """

    def __init__(self, lsn=None):
        self.lsn = lsn

    def __enter__(self):
        from .conf import get_config

        outer = current_state()
        if outer.pending:
            _capture_now(outer)
        state = State()
        ttl = get_config().ryw_ttl
        if outer.required_lsn() is not None:
            state.note_lsn(outer.lsn, 0.0, captured_wall=outer.lsn_wall)
            state.lsn_expires = outer.lsn_expires
        if self.lsn is not None:
            state.note_lsn(parse_lsn(self.lsn), ttl)
        state.pinned = outer.pinned
        state.changed = False
        self._start_lsn = state.lsn
        self._outer = outer
        self._cm = scoped_state(state)
        self._cm.__enter__()
        return state

    def __exit__(self, *exc):
        inner = current_state()
        self._cm.__exit__(*exc)
        # What the scope wrote, the code after it must see too; the LSN it
        # was handed is the business of the scope alone.
        if inner.pending:
            self._outer.pending = True
        if inner.lsn is not None and (self._start_lsn is None or inner.lsn > self._start_lsn):
            from .conf import get_config

            self._outer.note_lsn(inner.lsn, get_config().ryw_ttl, captured_wall=inner.lsn_wall)
        return False


def remember_write(lsn=None):
    """Reads from here on must see a write made outside Django's view.

    Without an argument the primary's WAL position is asked for at the next
    read (call it after the write committed). With an LSN (text or int), that
    position is required.
    """
    state = current_state()
    if lsn is None:
        state.pending = True
    else:
        from .conf import get_config

        state.note_lsn(parse_lsn(lsn), get_config().ryw_ttl)


def write_lsn():
    """The WAL position reads in this scope wait for, as text, or None.

    Hand it to work queued for later (a task) and open read_your_writes(lsn)
    there.
    """
    state = current_state()
    if state.pending:
        _capture_now(state)
    return format_lsn(state.required_lsn())


def forget_writes():
    state = current_state()
    state.lsn = None
    state.pending = False
    state.changed = True


def _capture_now(state):
    from .router import engine

    engine().capture(state)
