"""Event API routes; mounted at the root (as in the original README) and under /api/v1/."""

from django.urls import re_path

from events import api, api_identity

app_name = "events"

urlpatterns = [
    re_path(r"^events/?$", api.EventIngestApi.as_view(), name="ingest"),
    re_path(r"^events/batch/?$", api.EventBatchIngestApi.as_view(), name="batch"),
    re_path(r"^events/stats/?$", api.EventStatsApi.as_view(), name="stats"),
    re_path(r"^events/recent/?$", api.EventRecentApi.as_view(), name="recent"),
    re_path(r"^identify/?$", api_identity.PersonIdentifyApi.as_view(), name="identify"),
    re_path(r"^alias/?$", api_identity.PersonAliasApi.as_view(), name="alias"),
    re_path(r"^health/?$", api.HealthApi.as_view(), name="health"),
    re_path(r"^health/live/?$", api.HealthLiveApi.as_view(), name="health-live"),
    re_path(r"^health/ready/?$", api.HealthReadyApi.as_view(), name="health-ready"),
]
