"""Routes of the tracker protocols, at the paths each SDK posts to (served from the site root)."""

from collections.abc import Callable

from django.urls import path, re_path

from events.cors import preflight_answering
from trackers import api_posthog, api_snowplow
from trackers.segment import api as segment


def _cors(view_class) -> Callable:
    """A protocol view that takes public keys from a shop's pages: preflights answered first."""
    return preflight_answering(view_class.as_view())


def _undocumented(view_class: type) -> type:
    """The view at a second path, left out of the OpenAPI document (drf-spectacular skips a
    view whose schema is None)."""
    return type(f"{view_class.__name__}Short", (view_class,), {"schema": None})


urlpatterns: list = [
    # Segment's HTTP tracking API; RudderStack's SDKs post to the same paths.
    re_path(r"^v1/batch/?$", _cors(segment.SegmentBatchApi), name="segment-batch"),
    re_path(r"^v1/track/?$", _cors(segment.SegmentTrackApi), name="segment-track"),
    re_path(r"^v1/page/?$", _cors(segment.SegmentPageApi), name="segment-page"),
    re_path(r"^v1/screen/?$", _cors(segment.SegmentScreenApi), name="segment-screen"),
    re_path(r"^v1/identify/?$", _cors(segment.SegmentIdentifyApi), name="segment-identify"),
    re_path(r"^v1/group/?$", _cors(segment.SegmentGroupApi), name="segment-group"),
    re_path(r"^v1/alias/?$", _cors(segment.SegmentAliasApi), name="segment-alias"),
    # analytics.js (the browser) posts to one-letter forms of the same calls and, batching, to
    # /v1/b (ADR 0037): the same views, documented once under their long names.
    *(
        re_path(rf"^v1/{letter}/?$", _cors(_undocumented(view)), name=f"segment-{name}-short")
        for letter, name, view in (
            ("b", "batch", segment.SegmentBatchApi),
            ("t", "track", segment.SegmentTrackApi),
            ("p", "page", segment.SegmentPageApi),
            ("s", "screen", segment.SegmentScreenApi),
            ("i", "identify", segment.SegmentIdentifyApi),
            ("g", "group", segment.SegmentGroupApi),
            ("a", "alias", segment.SegmentAliasApi),
        )
    ),
    re_path(
        r"^v1/projects/(?P<token>[A-Za-z0-9_\-]{1,128})/settings$",
        segment.SegmentSettingsApi.as_view(),
        name="analyticsjs-settings",  # a GET, unlike the segment-* POSTs
    ),
    # PostHog capture (posthog-python posts /batch/; posthog-js /e/ and /i/v0/e/)
    *(
        path(
            route,
            preflight_answering(api_posthog.PosthogCaptureApi.as_view()),  # posthog-js (ADR 0030)
            name=f"posthog-{name}-capture",
        )
        for route, name in (
            ("batch/", "batch"),
            ("capture/", "capture"),
            ("e/", "e"),
            ("i/v0/e/", "i-v0-e"),
            ("i/v0/ai/batch/", "ai-batch"),  # posthog-python's AI events (same body)
        )
    ),
    path("i/v1/analytics/events", api_posthog.PosthogCaptureV1Api.as_view(), name="posthog-v1"),
    path("flags/", api_posthog.PosthogFlagsApi.as_view(), name="posthog-flags"),
    path("decide/", api_posthog.PosthogFlagsApi.as_view(), name="posthog-decide"),
    # posthog-js on start: its remote config (JSON, or as a script)
    re_path(
        r"^array/(?P<token>[A-Za-z0-9_\-]{1,128})/config$",
        api_posthog.PosthogRemoteConfigApi.as_view(),
        name="posthog-config",
    ),
    re_path(
        r"^array/(?P<token>[A-Za-z0-9_\-]{1,128})/config\.js$",
        api_posthog.PosthogRemoteConfigScriptApi.as_view(),
        name="posthog-config-js",
    ),
    # Snowplow tracker protocol
    path("i", api_snowplow.SnowplowPixelApi.as_view(), name="snowplow-pixel"),
    path(
        "com.snowplowanalytics.snowplow/tp2",
        # Snowplow's browser tracker from a shop's pages (ADR 0037): credentials by default
        preflight_answering(api_snowplow.SnowplowPostApi.as_view(), credentials=True),
        name="snowplow-tp2",
    ),
]
