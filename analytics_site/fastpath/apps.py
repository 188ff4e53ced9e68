from django.apps import AppConfig
from django.core import checks as django_checks

from analytics_site.fastpath import checks


class FastpathConfig(AppConfig):
    """Installed only for its system checks (no models)."""

    name = "analytics_site.fastpath"
    label = "fastpath"
    verbose_name = "Ingestion fast path"

    def ready(self) -> None:
        django_checks.register(checks.fastpath_check, django_checks.Tags.compatibility)
