from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """Erasure on request and retention: the top app, which orchestrates every other app's
    services (events, quality, reports) so that none reaches another's models."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"
