"""Incidents admin: acknowledge (take ownership), resolve, add notes."""

from __future__ import annotations

from django.contrib import admin

from quality.models import QualityIncident
from quality.services import incidents as incident_services


@admin.register(QualityIncident)
class QualityIncidentAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "title",
        "status",
        "severity",
        "source_type",
        "occurrences",
        "opened_at",
        "last_seen_at",
        "owner",
        "auto_resolved",
    )
    list_filter = ("status", "severity", "source_type", "auto_resolved")
    search_fields = ("title", "last_message", "notes")
    date_hierarchy = "opened_at"
    fields = (
        "title",
        "status",
        "owner",
        "notes",
        "severity",
        "source_type",
        "source_key",
        "quality_check",
        "rule",
        "last_message",
        "last_metric_value",
        "threshold",
        "occurrences",
        "opened_at",
        "last_seen_at",
        "acknowledged_at",
        "resolved_at",
        "auto_resolved",
        "fields",
        "event_types",
    )
    readonly_fields = tuple(
        f for f in fields if f not in ("title", "status", "owner", "notes", "severity")
    )
    actions = ("incidents_acknowledge", "incidents_resolve")

    def has_add_permission(self, request) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        previous = QualityIncident.objects.get(pk=obj.pk).status
        incident_services.incident_update(obj, previous_status=previous, user=request.user)

    @admin.action(permissions=["change"], description="Acknowledge (take ownership)")
    def incidents_acknowledge(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = incident_services.incidents_acknowledge(ids, user=request.user)
        self.message_user(request, f"Acknowledged {count} incident(s).")

    @admin.action(permissions=["change"], description="Resolve")
    def incidents_resolve(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = incident_services.incidents_resolve(ids, user=request.user)
        self.message_user(request, f"Resolved {count} incident(s).")
