"""Governance API routes, mounted under /api/v1/."""

from django.urls import re_path

from governance import api

app_name = "governance"

urlpatterns = [
    re_path(r"^erasure/?$", api.ErasureRequestCreateApi.as_view(), name="erasure"),
]
