"""ReadYourWritesMiddleware: one State per request, carried across redirects.

Place it first in MIDDLEWARE (outermost) with RYW_STORAGE = 'cookie': its
response step then runs last, after SessionMiddleware saved the session, so
even the session write of a login is covered. With RYW_STORAGE = 'session'
it must come after SessionMiddleware instead (it needs request.session), and
writes made by middleware outside it are not tracked.

The LSN travels in a signed cookie: a client could otherwise forge a huge
LSN and pin its reads to the primary, or a tiny one and read stale data.
"""

import time

from django.core import signing

from .conf import get_config
from .lsn import format_lsn, parse_lsn
from .engine import engine
from .state import State, scoped_state

_SALT = "replroute_django.lsn"


def _decode(value):
    """'X/Y@captured' -> (lsn, captured_wall), or None if malformed."""
    try:
        text, _, captured = value.partition("@")
        return parse_lsn(text), float(captured)
    except (ValueError, AttributeError, TypeError):
        return None


def _encode(lsn, captured):
    return "%s@%.3f" % (format_lsn(lsn), captured)


class ReadYourWritesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        config = get_config()
        state = State(sticky=config.sticky_per_request)
        if config.enabled:
            self._load(request, state, config)
        with scoped_state(state):
            response = self.get_response(request)
            if config.enabled:
                self._save(request, response, state, config)
        return response

    def _load(self, request, state, config):
        stored = None
        if config.ryw_storage == "cookie":
            raw = request.get_signed_cookie(
                config.ryw_cookie_name, default=None, salt=_SALT, max_age=config.ryw_ttl
            )
            stored = _decode(raw) if raw else None
        elif config.ryw_storage == "session" and hasattr(request, "session"):
            raw = request.session.get(config.ryw_session_key)
            stored = _decode(raw) if raw else None
        if stored is not None:
            lsn, captured = stored
            if captured + config.ryw_ttl > time.time():
                state.note_lsn(lsn, config.ryw_ttl, captured_wall=captured)
        state.changed = False

    def _save(self, request, response, state, config):
        if config.ryw_storage is None:
            return
        if state.pending:
            # Writes at the end of the request (a view that wrote and
            # redirected) are located now, so the next request can ask for them.
            engine().capture(state, config)
            if state.pending:
                # The primary could not be asked: without a position, only the
                # primary is safe for this client for a while.
                state.pending = False
                state.note_lsn((1 << 64) - 1, config.ryw_ttl)
        if not state.changed:
            return
        lsn = state.required_lsn()
        if config.ryw_storage == "cookie":
            if lsn is None:
                response.delete_cookie(config.ryw_cookie_name)
            else:
                from django.conf import settings

                remaining = max(1, int(state.lsn_expires - time.time() + 0.999))
                response.set_signed_cookie(
                    config.ryw_cookie_name,
                    _encode(lsn, state.lsn_expires - config.ryw_ttl),
                    salt=_SALT,
                    max_age=remaining,
                    secure=settings.SESSION_COOKIE_SECURE or None,
                    httponly=True,
                    samesite=settings.SESSION_COOKIE_SAMESITE or "Lax",
                )
        elif hasattr(request, "session"):
            if lsn is None:
                request.session.pop(config.ryw_session_key, None)
            else:
                request.session[config.ryw_session_key] = _encode(lsn, state.lsn_expires - config.ryw_ttl)
