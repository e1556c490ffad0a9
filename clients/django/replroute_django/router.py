"""ReplrouteRouter: writes to the primary, reads to a standby replroute vouches for.

Decision for one read, in order (first match wins):
  1. REPLROUTE disabled, a model listed in PRIMARY_MODELS, pin_primary(),
     or uncommitted writes on the primary's connection  -> primary
  2. everything else: the process's Engine (engine.py) picks a standby from
     the cached replroute_readers() list; a read that must see a write goes
     to a standby that replayed it or waits for it there
     (replroute_wait_for_replay), else to the primary
"""

from django.db import connections

from . import hooks
from .conf import get_config
from .engine import engine
from .state import current_state


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
        alias = engine().choose(state, config, preferred=preferred)
        if alias != config.primary:
            hooks.install(connections[alias], config)
        return alias

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
