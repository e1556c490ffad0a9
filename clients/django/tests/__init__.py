"""Unit tests: no server. Django is configured here, once, for every module.

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s clients/django/tests -t clients/django
"""

import os
import sys

import django
from django.conf import settings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if not settings.configured:
    # Port 1 on loopback: any accidental connection fails at once, loudly.
    def _db():
        return {"ENGINE": "django.db.backends.postgresql", "NAME": "x", "HOST": "127.0.0.1", "PORT": "1"}

    settings.configure(
        DATABASES={"default": _db(), "replica1": _db(), "replica2": _db()},
        REPLROUTE={"NODES": {"standby1": "replica1", "standby2": "replica2"}},
        DATABASE_ROUTERS=["replroute_django.router.ReplrouteRouter"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.sessions"],
        SECRET_KEY="unit-tests-only",
        USE_TZ=True,
    )
    django.setup()
