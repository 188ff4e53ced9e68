"""Replay jobs admin: progress of the replays started from the quarantine, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from quality.models import ReplayJob


@admin.register(ReplayJob)
class ReplayJobAdmin(SimpleHistoryAdmin):
    list_display = (
        "id",
        "status",
        "progress_bar",
        "total",
        "accepted",
        "duplicates",
        "still_rejected",
        "skipped",
        "created_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("status",)
    exclude = ("rejected_ids",)
    readonly_fields = (
        "status",
        "progress_bar",
        "total",
        "processed",
        "accepted",
        "duplicates",
        "still_rejected",
        "skipped",
        "error",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )

    @admin.display(description="Progress")
    def progress_bar(self, job: ReplayJob) -> str:
        percent = round(job.progress * 100)
        return format_html(
            '<progress max="100" value="{}"></progress> {}% ({} of {})',
            percent,
            percent,
            job.processed,
            job.total,
        )

    def has_add_permission(self, request) -> bool:
        return False
