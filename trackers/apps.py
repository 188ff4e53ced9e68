from django.apps import AppConfig


class TrackersConfig(AppConfig):
    """Other trackers' wire protocols (Segment/RudderStack, PostHog, Snowplow) and the
    first-party browser tracker: thin translations into events' ingestion service."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "trackers"

    def ready(self) -> None:
        # Imported here, not at the top: it imports the views and models, which must wait
        # until the app registry is ready. A quarantined message is replayed through its
        # protocol's translation (ADR 0029).
        from trackers.retranslate import retranslators_register

        retranslators_register()
