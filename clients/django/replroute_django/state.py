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

from .lsn import lsn_max


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
