"""The public API for code outside the router: scopes and declared writes.

    from replroute_django import pin_primary, read_your_writes, remember_write, write_lsn, forget_writes
"""

import contextlib

from .conf import get_config
from .engine import engine
from .lsn import format_lsn, parse_lsn
from .state import State, current_state, pin_primary, scoped_state

__all__ = ["forget_writes", "pin_primary", "read_your_writes", "remember_write", "write_lsn"]


class read_your_writes(contextlib.ContextDecorator):
    """A scope whose reads see its own writes (and those of `lsn`, if given).

    For code outside a request: a management command, a task that was handed
    write_lsn() by the request that queued it. Scopes nest; an inner scope
    starts from what the outer one required, so nothing it reads is older.
    """

    def __init__(self, lsn=None):
        self.lsn = lsn

    def __enter__(self):
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
    engine().capture(state)
