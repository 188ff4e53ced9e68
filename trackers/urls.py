"""Routes of the tracker protocols, at the paths each SDK posts to (served from the site root)."""

from django.urls import path

from trackers import api_posthog, api_snowplow

urlpatterns = [
    # PostHog capture (posthog-python posts /batch/; posthog-js /e/ and /i/v0/e/)
    *(
        path(route, api_posthog.PosthogCaptureApi.as_view(), name=f"posthog-{name}-capture")
        for route, name in (
            ("batch/", "batch"),
            ("capture/", "capture"),
            ("e/", "e"),
            ("i/v0/e/", "i-v0-e"),
        )
    ),
    path("flags/", api_posthog.PosthogFlagsApi.as_view(), name="posthog-flags"),
    path("decide/", api_posthog.PosthogFlagsApi.as_view(), name="posthog-decide"),
    # Snowplow tracker protocol
    path("i", api_snowplow.SnowplowPixelApi.as_view(), name="snowplow-pixel"),
    path(
        "com.snowplowanalytics.snowplow/tp2",
        api_snowplow.SnowplowPostApi.as_view(),
        name="snowplow-tp2",
    ),
]
