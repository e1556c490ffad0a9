from django.apps import AppConfig

from . import hooks  # noqa: F401  (connects connection_created)
from .conf import get_config


class ReplrouteDjangoConfig(AppConfig):
    # Optional, recommended: without it the write tracker hooks in when the
    # router is first used, and a raw-cursor write made before that goes
    # unseen. Listing it also validates REPLROUTE at startup.
    name = "replroute_django"
    verbose_name = "replroute"

    def ready(self):
        get_config()
