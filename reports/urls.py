"""Dashboard routes: one page each, plus `<page>/csv/<table>/` downloads with the same filters."""

from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("funnel/", views.funnel, name="funnel"),
    path("products/", views.products, name="products"),
    path("audience/", views.audience, name="audience"),
    path("live/", views.live, name="live"),
    path("quality/", views.quality, name="quality"),
    path(
        "<slug:page>/csv/<slug:table>/",
        views.table_csv,
        name="table_csv",
    ),
]
