from django.apps import AppConfig


class ReplrouteDjangoConfig(AppConfig):
    # Listing the app in INSTALLED_APPS is optional: the router installs its
    # hooks on first use. Listing it validates REPLROUTE at startup instead.
    name = "replroute_django"
    verbose_name = "replroute"

    def ready(self):
        from . import hooks  # noqa: F401  (connects connection_created)
        from .conf import get_config

        get_config()
