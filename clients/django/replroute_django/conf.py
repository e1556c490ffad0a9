"""The REPLROUTE setting, read once per settings object and validated.

Settings are re-read when Django's setting_changed signal fires (tests use
override_settings), otherwise the parsed form is reused: db_for_read runs for
every query and must not re-validate a dict each time.
"""

import datetime

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

DEFAULTS = {
    "ENABLED": True,
    "PRIMARY": "default",
    "NODES": {},
    "CACHE_TTL": 1.0,
    "MAX_LAG_BYTES": None,
    "MAX_LAG": None,
    "SCHEMA": None,
    "RYW_TTL": 30.0,
    "RYW_RECHECK": 0.05,
    "RYW_STORAGE": "cookie",
    "RYW_COOKIE_NAME": "replroute_lsn",
    "RYW_SESSION_KEY": "_replroute_lsn",
    "PRIMARY_MODELS": (),
    "DOWN_TTL": 5.0,
    "RETRY_READS": True,
    "STICKY_PER_REQUEST": True,
    "RYW_WAIT": 0.05,
    "DEADLINE_MARGIN": 0.1,
    "READ_DEADLINE": None,
    "LISTEN": True,
    "REPORTED_POSITION": True,
}


class Config:
    def __init__(self, raw):
        unknown = set(raw) - set(DEFAULTS)
        if unknown:
            raise ImproperlyConfigured(
                "REPLROUTE has unknown keys: %s" % ", ".join(sorted(unknown))
            )
        values = dict(DEFAULTS, **raw)
        self.enabled = bool(values["ENABLED"])
        self.primary = values["PRIMARY"]
        nodes = values["NODES"]
        if not isinstance(nodes, dict):
            raise ImproperlyConfigured("REPLROUTE['NODES'] maps replroute node names to DATABASES aliases")
        self.nodes = dict(nodes)
        self.standby_aliases = frozenset(self.nodes.values())
        if self.primary in self.standby_aliases:
            raise ImproperlyConfigured("REPLROUTE: the primary alias %r is also listed in NODES" % self.primary)
        self.cache_ttl = _seconds(values["CACHE_TTL"], "CACHE_TTL")
        self.max_lag_bytes = values["MAX_LAG_BYTES"]
        if self.max_lag_bytes is not None and (
            not isinstance(self.max_lag_bytes, int) or self.max_lag_bytes < 0
        ):
            raise ImproperlyConfigured("REPLROUTE['MAX_LAG_BYTES'] must be a non-negative int or None")
        max_lag = values["MAX_LAG"]
        if max_lag is not None and not isinstance(max_lag, datetime.timedelta):
            max_lag = datetime.timedelta(seconds=_seconds(max_lag, "MAX_LAG"))
        self.max_lag = max_lag
        schema = values["SCHEMA"]
        # Quoted so a schema name can never change the statement.
        self.qualifier = "" if not schema else '"%s".' % schema.replace('"', '""')
        self.ryw_ttl = _seconds(values["RYW_TTL"], "RYW_TTL")
        recheck = values["RYW_RECHECK"]
        self.ryw_recheck = None if recheck is None else _seconds(recheck, "RYW_RECHECK")
        if values["RYW_STORAGE"] not in ("cookie", "session", None):
            raise ImproperlyConfigured("REPLROUTE['RYW_STORAGE'] is 'cookie', 'session' or None")
        self.ryw_storage = values["RYW_STORAGE"]
        self.ryw_cookie_name = values["RYW_COOKIE_NAME"]
        self.ryw_session_key = values["RYW_SESSION_KEY"]
        self.primary_apps = frozenset(
            label.lower() for label in values["PRIMARY_MODELS"] if "." not in label
        )
        self.primary_models = frozenset(
            label.lower() for label in values["PRIMARY_MODELS"] if "." in label
        )
        self.down_ttl = _seconds(values["DOWN_TTL"], "DOWN_TTL")
        self.retry_reads = bool(values["RETRY_READS"])
        self.sticky_per_request = bool(values["STICKY_PER_REQUEST"])
        wait = values["RYW_WAIT"]
        wait = None if wait is None else _seconds(wait, "RYW_WAIT")
        self.ryw_wait = wait if wait else None
        self.ryw_wait_interval = None if self.ryw_wait is None else datetime.timedelta(seconds=self.ryw_wait)
        self.deadline_margin = _seconds(values["DEADLINE_MARGIN"], "DEADLINE_MARGIN")
        read_deadline = values["READ_DEADLINE"]
        read_deadline = None if read_deadline is None else _seconds(read_deadline, "READ_DEADLINE")
        self.read_deadline = read_deadline if read_deadline else None
        listen = values["LISTEN"]
        if listen is True:
            listen = self.primary
        elif listen is False or listen is None:
            listen = None
        elif not isinstance(listen, str):
            raise ImproperlyConfigured("REPLROUTE['LISTEN'] is True, False or a DATABASES alias")
        self.listen_alias = listen
        self.reported_position = bool(values["REPORTED_POSITION"])

    def model_needs_primary(self, model):
        if model is None or not (self.primary_apps or self.primary_models):
            return False
        meta = model._meta
        return (
            meta.app_label.lower() in self.primary_apps
            or meta.label_lower in self.primary_models
        )


def _seconds(value, name):
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured("REPLROUTE[%r] must be a number of seconds" % name)
    if value < 0:
        raise ImproperlyConfigured("REPLROUTE[%r] must not be negative" % name)
    return value


_config = None


def get_config():
    global _config
    if _config is None:
        from django.conf import settings

        _config = Config(getattr(settings, "REPLROUTE", {}))
    return _config


def _reset(*, setting, **kwargs):
    global _config
    if setting == "REPLROUTE":
        _config = None


setting_changed.connect(_reset, dispatch_uid="replroute_django.conf")
