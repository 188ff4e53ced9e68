"""Admin for events, quarantine and ingestion keys."""

from django.contrib import admin, messages

from events import services
from events.models import Event, IngestionKey, RejectedEvent


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "event_type", "user_id", "session_id", "device_type", "country")
    list_filter = ("event_type", "device_type", "country")
    search_fields = ("=event_id", "user_id", "session_id", "order_id", "product_id")
    date_hierarchy = "timestamp"
    ordering = ("-timestamp",)
    show_full_result_count = False
    list_per_page = 50

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Event._meta.fields]


@admin.register(RejectedEvent)
class RejectedEventAdmin(admin.ModelAdmin):
    list_display = ("received_at", "event_type", "event_id", "short_reasons", "status", "source_ip")
    list_filter = ("status", "event_type")
    search_fields = ("=event_id", "raw_payload")
    date_hierarchy = "received_at"
    ordering = ("-received_at",)
    show_full_result_count = False
    readonly_fields = (
        "event_id",
        "event_type",
        "raw_payload",
        "raw_truncated",
        "reasons",
        "rule_ids",
        "source_key",
        "source_ip",
        "received_at",
        "status",
        "replay_count",
        "replayed_at",
    )

    @admin.display(description="Reasons")
    def short_reasons(self, obj: RejectedEvent) -> str:
        return "; ".join(f"{r.get('field')}: {r.get('rule')}" for r in obj.reasons[:3])

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(IngestionKey)
class IngestionKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "is_active", "can_read", "created_at", "last_used_at")
    list_filter = ("is_active", "can_read")
    fields = ("name", "is_active", "can_read", "prefix", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.ingestion_key_create(
            name=obj.name, can_read=obj.can_read, is_active=obj.is_active
        )
        obj.pk = created.key.pk
        obj.prefix = created.key.prefix
        obj.key_hash = created.key.key_hash
        obj.created_at = created.key.created_at
        messages.warning(
            request,
            f"Ingestion key for {obj.name!r}: {created.raw_key} "
            "— copy it now, it is shown only once.",
        )
