"""Event API routes; mounted at the root (as in the original README) and under /api/v1/."""

from django.urls import re_path

from events import api, api_health, api_identity
from events.cors import preflight_answering

app_name = "events"

urlpatterns = [
    # Browsers' CORS preflights are answered before the views (events.cors, ADR 0018).
    re_path(r"^events/?$", preflight_answering(api.EventIngestApi.as_view()), name="ingest"),
    re_path(
        r"^events/batch/?$", preflight_answering(api.EventBatchIngestApi.as_view()), name="batch"
    ),
    re_path(r"^events/stats/?$", api.EventStatsApi.as_view(), name="stats"),
    re_path(r"^events/recent/?$", api.EventRecentApi.as_view(), name="recent"),
    # tracker.js calls these with a public key too (JSON: a preflight for the key's origins).
    re_path(
        r"^identify/?$",
        preflight_answering(api_identity.PersonIdentifyApi.as_view()),
        name="identify",
    ),
    re_path(r"^alias/?$", preflight_answering(api_identity.PersonAliasApi.as_view()), name="alias"),
    re_path(r"^health/?$", api_health.HealthApi.as_view(), name="health"),
    re_path(r"^health/live/?$", api_health.HealthLiveApi.as_view(), name="health-live"),
    re_path(r"^health/ready/?$", api_health.HealthReadyApi.as_view(), name="health-ready"),
]
