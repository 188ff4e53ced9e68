"""Routes of the tracker protocols, at the paths each SDK posts to (served from the site root)."""

from django.urls import re_path

from trackers.segment import api as segment

urlpatterns: list = [
    # Segment's HTTP tracking API; RudderStack's SDKs post to the same paths.
    re_path(r"^v1/batch/?$", segment.SegmentBatchApi.as_view(), name="segment-batch"),
    re_path(r"^v1/track/?$", segment.SegmentTrackApi.as_view(), name="segment-track"),
    re_path(r"^v1/page/?$", segment.SegmentPageApi.as_view(), name="segment-page"),
    re_path(r"^v1/screen/?$", segment.SegmentScreenApi.as_view(), name="segment-screen"),
    re_path(r"^v1/identify/?$", segment.SegmentIdentifyApi.as_view(), name="segment-identify"),
    re_path(r"^v1/group/?$", segment.SegmentGroupApi.as_view(), name="segment-group"),
    re_path(r"^v1/alias/?$", segment.SegmentAliasApi.as_view(), name="segment-alias"),
]
