"""Admin for erasure requests: the audit list, a form to ask for one, and "run again"."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from governance.models import ErasureRequest
from governance.services.erasure import (
    ErasureInputError,
    erasure_ids_clean,
    erasure_request_create,
    erasure_request_enqueue,
)

AUDIT_FIELDS = (
    "status",
    "via",
    "requested_by_label",
    "created_at",
    "started_at",
    "finished_at",
    "events_deleted",
    "quarantined_deleted",
    "users_forgotten",
    "batches",
    "subject_hash",
    "alias_hashes",
    "error",
)


class ErasureRequestForm(forms.ModelForm):
    """Ask to erase a person: the user id and, one per line, the anonymous ids seen for them."""

    user_id = forms.CharField(max_length=128)
    anonymous_ids = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="One id per line."
    )

    class Meta:
        model = ErasureRequest
        fields: list[str] = []

    def clean_anonymous_ids(self) -> list[str]:
        lines = self.cleaned_data.get("anonymous_ids", "").splitlines()
        return [line.strip() for line in lines if line.strip()]

    def clean(self) -> dict:
        cleaned = super().clean()
        try:
            erasure_ids_clean(cleaned.get("user_id", ""), cleaned.get("anonymous_ids", []))
        except ErasureInputError as exc:
            raise forms.ValidationError({exc.field: exc.message}) from exc
        return cleaned


@admin.register(ErasureRequest)
class ErasureRequestAdmin(SimpleHistoryAdmin):
    list_display = (
        "id",
        "status",
        "requested_by_label",
        "via",
        "created_at",
        "finished_at",
        "events_deleted",
        "quarantined_deleted",
    )
    list_filter = ("status", "via")
    search_fields = ("subject_hash",)
    actions = ["run_again"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ErasureRequestForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj=None):
        return ["user_id", "anonymous_ids"] if obj is None else list(AUDIT_FIELDS)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return () if obj is None else AUDIT_FIELDS

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj, form, change) -> None:
        """Through the service, so the id is hashed and the task enqueued (the form validated the
        ids with the service's own rules)."""
        created = erasure_request_create(
            user_id=form.cleaned_data["user_id"],
            anonymous_ids=form.cleaned_data["anonymous_ids"],
            via="admin",
            requested_by=request.user,
        )
        obj.pk = created.pk

    @admin.action(description="Run the selected requests again (failed or stuck ones)")
    def run_again(self, request: HttpRequest, queryset: QuerySet[ErasureRequest]) -> None:
        pending = queryset.exclude(status=ErasureRequest.Status.DONE)
        for pk in pending.values_list("pk", flat=True):
            erasure_request_enqueue(pk)
        self.message_user(request, f"{pending.count()} request(s) queued.", messages.SUCCESS)
