"""Alert outbox admin: every incident alert with its delivery state; dead letters (alerts the
webhook never took within the horizon, or refused) are resent from here."""

from __future__ import annotations

from django.contrib import admin, messages

from quality.models import AlertOutbox
from quality.services.outbox import alert_outbox_resend


@admin.register(AlertOutbox)
class AlertOutboxAdmin(admin.ModelAdmin):
    list_display = (
        "delivery_id",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "retry_until",
        "delivered_at",
        "last_error",
    )
    list_filter = ("status", "event")
    search_fields = ("=delivery_id",)
    ordering = ("-created_at",)
    actions = ("resend",)
    readonly_fields = (
        "incident",
        "event",
        "delivery_id",
        "payload",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "retry_until",
        "delivered_at",
        "last_error",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Resend (pending again, with a new retry horizon)")
    def resend(self, request, queryset) -> None:
        count = alert_outbox_resend(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} alert(s) queued again.", messages.SUCCESS)
