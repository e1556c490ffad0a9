"""Route Django reads to PostgreSQL standbys that replroute reports healthy.

    DATABASE_ROUTERS = ["replroute_django.router.ReplrouteRouter"]
    MIDDLEWARE = ["replroute_django.middleware.ReadYourWritesMiddleware", ...]

See docs/django.md in the replroute repository.
"""

from .api import forget_writes, pin_primary, read_your_writes, remember_write, write_lsn

__all__ = ["forget_writes", "pin_primary", "read_your_writes", "remember_write", "write_lsn"]
__version__ = "1.1.0"
