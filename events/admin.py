"""Admin for events, quarantine and ingestion keys.

The quarantine (RejectedEvent) admin is the events app's; apps above it add list filters and
actions through `rejected_event_admin_extend`, which the admin reads on every request, so the
result does not depend on which app's admin module is imported first, and this module imports
nothing from them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from events import services
from events.admin_export import ExportAdminMixin
from events.export_formats import EVENTS, QUARANTINE
from events.models import (
    Event,
    IngestionKey,
    KeyKind,
    KeyScope,
    Person,
    PersonLink,
    RejectedEvent,
    origin_normalize,
)
from events.original_selectors import ORIGINAL_REFERENCE_FIELDS, event_original

_rejected_event_list_filters: list[Any] = []
_rejected_event_actions: list[Callable[..., Any]] = []


def rejected_event_admin_extend(
    *, list_filters: tuple[Any, ...] = (), actions: tuple[Callable[..., Any], ...] = ()
) -> None:
    """Add list filters (field names or `SimpleListFilter` classes) and admin actions (functions
    `(modeladmin, request, queryset)`, as `@admin.action` makes them) to the RejectedEvent admin.
    Call it from your app's admin module. Idempotent: an item already added is not added twice.
    """
    for item in list_filters:
        if item not in _rejected_event_list_filters:
            _rejected_event_list_filters.append(item)
    for action in actions:
        if action not in _rejected_event_actions:
            _rejected_event_actions.append(action)


@admin.register(Event)
class EventAdmin(ExportAdminMixin, admin.ModelAdmin):
    export_kind = EVENTS
    list_display = ("timestamp", "event_type", "user_id", "session_id", "device_type", "country")
    list_filter = ("event_type", "device_type", "country")
    search_fields = ("=event_id", "user_id", "session_id", "order_id", "product_id")
    date_hierarchy = "timestamp"
    ordering = ("-timestamp",)
    show_full_result_count = False
    list_per_page = 50

    def get_readonly_fields(self, request, obj=None):
        # An unsaved event has no txid yet (a database default): the add form cannot show it.
        if obj is None:
            return [f.name for f in Event._meta.fields if f.name != "txid"]
        # A stored event shows its original wherever it is kept (ADR 0041).
        return [
            "original_message" if f.name == "original" else f.name
            for f in Event._meta.fields
            if f.name not in ORIGINAL_REFERENCE_FIELDS
        ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return super().get_fields(request, obj)
        return self.get_readonly_fields(request, obj)

    @admin.display(description="Original")
    def original_message(self, obj: Event) -> str:
        original = event_original(obj)
        if original is None:
            return "-"
        text = json.dumps(original, indent=2, ensure_ascii=False)
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)


@admin.register(RejectedEvent)
class RejectedEventAdmin(ExportAdminMixin, admin.ModelAdmin):
    export_kind = QUARANTINE
    list_display = (
        "received_at",
        "event_type",
        "event_id",
        "short_reasons",
        "status",
        "attempts",
        "source",
        "source_ip",
    )
    list_filter = ("status", "source", "event_type", "received_at")
    search_fields = ("=event_id", "raw_payload")
    date_hierarchy = "received_at"
    ordering = ("-received_at",)
    show_full_result_count = False
    fields = (
        "status",
        "event_type",
        "event_id",
        "received_at",
        "attempts",
        "last_seen_at",
        "dedupe_key",
        "reason_list",
        "rule_ids",
        "pretty_payload",
        "raw_truncated",
        "source",
        "translation",
        "source_key",
        "source_ip",
        "replay_count",
        "replayed_at",
    )
    readonly_fields = fields

    @property
    def actions(self) -> tuple[Callable[..., Any], ...]:  # type: ignore[override]
        """The actions added by other apps, read when Django lists the actions (per request)."""
        return tuple(_rejected_event_actions)

    def get_list_filter(self, request) -> tuple[Any, ...]:
        return (*self.list_filter, *_rejected_event_list_filters)

    @admin.display(description="Reasons")
    def short_reasons(self, obj: RejectedEvent) -> str:
        return "; ".join(f"{r.get('field')}: {r.get('rule')}" for r in obj.reasons[:3])

    @admin.display(description="Reasons")
    def reason_list(self, obj: RejectedEvent) -> str:
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><b>{}</b> — {}: {}</li>",
                (
                    (r.get("rule", "?"), r.get("field", "?"), r.get("message", ""))
                    for r in obj.reasons
                ),
            ),
        )

    @admin.display(description="Payload")
    def pretty_payload(self, obj: RejectedEvent) -> str:
        payload = obj.payload
        text = json.dumps(payload, indent=2) if isinstance(payload, dict | list) else str(payload)
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

    def has_add_permission(self, request) -> bool:
        return False


class IngestionKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=KeyScope.choices,
        required=False,
        initial=[KeyScope.WRITE, KeyScope.READ],
        widget=forms.CheckboxSelectMultiple,
        help_text="write: send events; read: stats and recent; export: raw exports; "
        "admin: administrative endpoints (erasure).",
    )
    kind = forms.ChoiceField(
        choices=KeyKind.choices,
        required=False,
        initial=KeyKind.SECRET,
        widget=forms.RadioSelect,
        help_text="secret: for servers (any scopes, header only). public: for web pages "
        "(tracker.js): write only, from the origins below only, own rate limit.",
    )
    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Public keys only: one origin a line, e.g. https://shop.example.com",
    )

    class Meta:
        model = IngestionKey
        fields = ("name", "kind", "is_active", "scopes", "allowed_origins", "expires_at")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["allowed_origins"] = "\n".join(self.instance.allowed_origins)

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or KeyKind.SECRET

    def clean_allowed_origins(self) -> list[str]:
        lines = [line for line in self.cleaned_data["allowed_origins"].split() if line]
        try:
            return sorted({origin_normalize(line) for line in lines})
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


@admin.register(IngestionKey)
class IngestionKeyAdmin(SimpleHistoryAdmin):
    form = IngestionKeyForm
    list_display = (
        "name",
        "prefix",
        "kind",
        "is_active",
        "scope_list",
        "expires_at",
        "created_at",
        "last_used_at",
    )
    list_filter = ("is_active", "kind")
    fields = (
        "name",
        "kind",
        "is_active",
        "scopes",
        "allowed_origins",
        "expires_at",
        "prefix",
        "replaced_by",
        "created_at",
        "last_used_at",
    )
    readonly_fields = ("prefix", "replaced_by", "created_at", "last_used_at")

    def get_readonly_fields(self, request, obj=None):
        """The kind is chosen once: a key already shipped in pages stays public."""
        return (*self.readonly_fields, "kind") if obj is not None else self.readonly_fields

    @admin.display(description="Scopes")
    def scope_list(self, key: IngestionKey) -> str:
        return ", ".join(key.scopes) or "-"

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)  # records request.user in history
            return
        created = services.ingestion_key_create(
            name=obj.name,
            scopes=obj.scopes,
            expires_at=obj.expires_at,
            is_active=obj.is_active,
            kind=obj.kind,
            allowed_origins=obj.allowed_origins,
            user=request.user,
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


# Users and groups with their history (the audit trail of roles): Django's admins plus the
# simple-history views.
admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class AuditedUserAdmin(SimpleHistoryAdmin, UserAdmin):
    pass


@admin.register(Group)
class AuditedGroupAdmin(SimpleHistoryAdmin, GroupAdmin):
    pass


class PersonLinkInline(admin.TabularInline):
    model = PersonLink
    fields = ("linked_id", "source", "linked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    """People are written by identify and alias calls only, and removed by an erasure request
    (which also corrects the rollups): here they are read, never added, edited or deleted."""

    list_display = ("distinct_id", "first_seen", "last_seen", "updated_at")
    search_fields = ("=distinct_id", "=links__linked_id")
    date_hierarchy = "last_seen"
    ordering = ("-last_seen",)
    fields = ("distinct_id", "first_seen", "last_seen", "updated_at", "pretty_traits")
    readonly_fields = fields
    inlines = (PersonLinkInline,)
    list_per_page = 50

    @admin.display(description="Traits")
    def pretty_traits(self, obj: Person) -> str:
        text = json.dumps(obj.traits, indent=2, ensure_ascii=False)
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
