"""Top-level routes: the event API (root and /api/v1/), docs, admin, auth, dashboards."""

from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from analytics_site.errors import password_reset_enabled_only
from analytics_site.liveness import collector_register
from analytics_site.metrics import metrics_view

# django.contrib.auth.urls, with password reset served only when mail can be sent.
auth_urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    *(
        path(route, password_reset_enabled_only(view.as_view()), name=name)
        for route, view, name in (
            ("password_reset/", auth_views.PasswordResetView, "password_reset"),
            ("password_reset/done/", auth_views.PasswordResetDoneView, "password_reset_done"),
            (
                "reset/<uidb64>/<token>/",
                auth_views.PasswordResetConfirmView,
                "password_reset_confirm",
            ),
            ("reset/done/", auth_views.PasswordResetCompleteView, "password_reset_complete"),
        )
    ),
]

handler500 = "analytics_site.errors.server_error"

collector_register()  # worker heartbeat ages in /metrics

urlpatterns = [
    # Pages without an icon link (admin, API docs): browsers ask for /favicon.ico.
    path("favicon.ico", lambda request: redirect(static("reports/favicon.svg"))),
    path("admin/", admin.site.urls),
    # /metrics for Prometheus: behind a token or an allowed network in production
    path("metrics", metrics_view, name="prometheus-django-metrics"),
    path("accounts/", include(auth_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema")),
    # Redoc styles itself with <style> elements it creates (styled-components): the one page
    # whose policy allows inline styles; scripts stay same-origin only.
    path(
        "redoc/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularRedocView.as_view(url_name="schema")
        ),
        name="redoc",
    ),
    path("api/v1/", include(("events.urls", "events"), namespace="events-v1")),
    path("api/v1/", include(("governance.urls", "governance"), namespace="governance")),
    path("", include(("events.urls", "events"), namespace="events")),
    # Other trackers' protocols at their own paths (/v1/batch, /batch/, /i, ...): issue 11
    path("", include(("trackers.urls", "trackers"), namespace="trackers")),
    path("", include("reports.urls")),
]
