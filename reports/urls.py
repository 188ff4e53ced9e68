"""Dashboard routes: one page each, plus `<page>/csv/<table>/` downloads with the same filters."""

from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("", views.dashboard_page, {"page": "overview"}, name="overview"),
    *(
        path(f"{page}/", views.dashboard_page, {"page": page}, name=page)
        for page in ("funnel", "products", "audience", "live", "quality")
    ),
    path("quality/checks/<int:check_id>/", views.check_detail, name="check_detail"),
    path(
        "<slug:page>/csv/<slug:table>/",
        views.table_csv,
        name="table_csv",
    ),
]
