"""The admin's export download: the filtered change list, streamed as JSONL, CSV or Parquet.

A model admin that mixes in `ExportAdminMixin` gets `<changelist>/export/?<filters>&format=`
and links to it above its list. The rows are those the change list shows with the same
filters and search (all pages, not only the one on screen), read in keyset batches and
written as they are read, so a download of any size runs in bounded memory.
"""

from __future__ import annotations

from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.utils import timezone

from events.export_formats import (
    CONTENT_TYPES,
    FORMATS,
    ExportFormatUnavailable,
    ExportKind,
    export_chunks,
)
from events.export_selectors import keyset_batches


class ExportAdminMixin:
    """Mix into a ModelAdmin (before admin.ModelAdmin) whose model has received_at and id."""

    export_kind: ExportKind
    change_list_template = "admin/events/change_list_export.html"

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}_export"
        export = path("export/", self.admin_site.admin_view(self.export_view), name=name)
        return [export, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {**(extra_context or {}), "export_formats": FORMATS}
        return super().changelist_view(request, extra_context)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        fmt = request.GET.get("format", "jsonl")
        if fmt not in FORMATS:
            return _refused("format", "invalid_choice", f"format must be one of {FORMATS}.")
        request.GET = request.GET.copy()
        request.GET.pop("format", None)
        try:
            queryset = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters as exc:
            return _refused("filters", "valid_lookup", f"Not a filter of this list: {exc}")
        batches = keyset_batches(queryset, self.export_kind.columns, order_field="received_at")
        try:
            chunks = export_chunks(self.export_kind, batches, fmt)
        except ExportFormatUnavailable as exc:
            return _refused("format", "available", str(exc))
        response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        filename = f"{self.export_kind.name}-{stamp}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def _refused(field: str, rule: str, message: str) -> JsonResponse:
    errors = [{"field": field, "rule": rule, "message": message}]
    return JsonResponse({"error": "invalid", "detail": message, "errors": errors}, status=400)
