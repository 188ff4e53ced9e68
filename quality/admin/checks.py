"""Dataset checks admin: edit checks, run them now; and their runs, read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from quality import selectors
from quality.admin.help_text import kinds_help
from quality.engine import checks as check_engine
from quality.models import CheckRun, QualityCheck
from quality.services import checks as check_services


class QualityCheckForm(forms.ModelForm):
    webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="Overrides QUALITY_ALERT_WEBHOOK_URL for this check.",
    )

    class Meta:
        model = QualityCheck
        fields = (
            "name",
            "description",
            "enabled",
            "kind",
            "params",
            "threshold",
            "interval_minutes",
            "severity",
            "webhook_url",
            "alert_channels",
        )
        help_texts = {"params": kinds_help(check_engine.KIND_HELP)}


@admin.register(QualityCheck)
class QualityCheckAdmin(SimpleHistoryAdmin):
    form = QualityCheckForm
    list_display = (
        "name",
        "enabled",
        "kind",
        "threshold",
        "interval_minutes",
        "last_run_at",
        "last_outcome",
    )
    list_filter = ("enabled", "kind", "severity")
    search_fields = ("name", "description")
    readonly_fields = ("last_run_at", "created_at", "updated_at")
    actions = ("checks_run_now",)

    @admin.display(description="Last outcome")
    def last_outcome(self, check: QualityCheck) -> str:
        run = check.runs.order_by("-ran_at").first()
        return (
            f"{run.outcome} ({run.metric_value:.4g})"
            if run and run.metric_value is not None
            else (run.outcome if run else "—")
        )

    @admin.action(permissions=["change"], description="Run selected checks now")
    def checks_run_now(self, request, queryset) -> None:
        runs = check_services.checks_run(list(queryset.values_list("name", flat=True)))
        summary = ", ".join(f"{run.quality_check.name}: {run.outcome}" for run in runs)
        self.message_user(request, f"Ran {len(runs)} check(s) — {summary}")


@admin.register(CheckRun)
class CheckRunAdmin(admin.ModelAdmin):
    list_display = (
        "ran_at",
        "quality_check",
        "outcome",
        "metric_value",
        "threshold",
        "duration",
        "sample_count",
    )
    readonly_fields = ("failing_rows",)
    list_filter = ("outcome", "quality_check")
    date_hierarchy = "ran_at"
    list_select_related = ("quality_check",)

    @admin.display(description="Duration (ms)")
    def duration(self, run: CheckRun) -> str:
        return f"{run.duration_ms:.1f}"

    @admin.display(description="Samples")
    def sample_count(self, run: CheckRun) -> int:
        return len((run.samples or {}).get("ids") or [])

    @admin.display(description="Failing-row samples")
    def failing_rows(self, run: CheckRun) -> str:
        """Each sampled id links to the event (searched by event_id) or the quarantined row."""
        links = [(link["url"], link["label"]) for link in selectors.sample_links(run.samples)]
        if not links:
            return "—"
        return format_html(
            "<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a></li>', links)
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
