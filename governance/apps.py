from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """Erasure on request and retention: the top app, which orchestrates every other app's
    services (events, quality, reports) so that none reaches another's models."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"
    verbose_name = "Data governance"

    def ready(self) -> None:
        # Imported here, not at the top: tasks import services, which import models, which
        # must wait until the app registry is ready. It dodges no cycle.
        from governance import tasks  # noqa: F401 - registers the tasks services enqueue by name
