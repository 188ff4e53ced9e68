"""Top-level routes: the event API (root and /api/v1/), docs, admin, auth, dashboards."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from analytics_site.liveness import collector_register
from analytics_site.metrics import metrics_view

collector_register()  # worker heartbeat ages in /metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    # /metrics for Prometheus: behind a token or an allowed network in production
    path("metrics", metrics_view, name="prometheus-django-metrics"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema")),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/v1/", include(("events.urls", "events"), namespace="events-v1")),
    path("api/v1/", include(("governance.urls", "governance"), namespace="governance")),
    path("", include(("events.urls", "events"), namespace="events")),
    path("", include("reports.urls")),
]
