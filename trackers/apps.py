from django.apps import AppConfig


class TrackersConfig(AppConfig):
    """Other trackers' wire protocols (Segment/RudderStack, PostHog, Snowplow) and the
    first-party browser tracker: thin translations into events' ingestion service."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "trackers"
