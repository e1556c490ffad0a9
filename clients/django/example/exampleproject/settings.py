"""A primary and two standbys as scripts/rr-cluster starts them.

RR_HOST and RR_BASE_PORT point it elsewhere; the primary is on the base port,
standbyK on base + K.
"""

import os

HOST = os.environ.get("RR_HOST", "127.0.0.1")
BASE_PORT = int(os.environ.get("RR_BASE_PORT", "25432"))
STANDBYS = int(os.environ.get("RR_STANDBYS", "2"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
ROOT_URLCONF = "exampleproject.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = ["replroute_django", "shop"]

MIDDLEWARE = [
    # First, so that its response step runs last and sees every write.
    "replroute_django.middleware.ReadYourWritesMiddleware",
    "django.middleware.common.CommonMiddleware",
]


def _database(port, **extra):
    return dict(
        ENGINE="django.db.backends.postgresql",
        NAME="postgres",
        USER="postgres",
        HOST=HOST,
        PORT=str(port),
        # A standby that does not answer must not hold a request for long.
        OPTIONS={"connect_timeout": 2},
        **extra
    )


DATABASES = {"default": _database(BASE_PORT)}
for k in range(1, STANDBYS + 1):
    # MIRROR: under Django's test runner the replicas are the test database.
    DATABASES["replica%d" % k] = _database(BASE_PORT + k, TEST={"MIRROR": "default"})

DATABASE_ROUTERS = ["replroute_django.router.ReplrouteRouter"]

REPLROUTE = {
    "PRIMARY": "default",
    "NODES": {"standby%d" % k: "replica%d" % k for k in range(1, STANDBYS + 1)},
    "CACHE_TTL": 1.0,
    "RYW_TTL": 30,
}

LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"replroute_django": {"handlers": ["console"], "level": "WARNING"}},
}
