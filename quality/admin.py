"""Admin: where analysts own data quality. Rules (with "try this rule"), checks (with "run
now"), check runs, incidents (acknowledge / resolve), replay jobs, and the quarantine with
replay. Thin: every write goes through quality.services."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from events.admin import RejectedEventAdmin
from events.models import RejectedEvent
from quality import selectors
from quality.engine import checks as check_engine
from quality.engine import rules as rule_engine
from quality.models import (
    CheckRun,
    QualityCheck,
    QualityIncident,
    QualityRule,
    ReplayJob,
    RuleCounter,
)
from quality.services import checks as check_services
from quality.services import incidents as incident_services
from quality.services import replay as replay_services
from quality.services import rules as rule_services

TRY_SAMPLE_SIZES = (100, 1000, 10000)


def _kinds_help(helps: dict[str, str]) -> str:
    return format_html(
        "<ul>{}</ul>",
        format_html_join("", "<li><b>{}</b>: {}</li>", ((k, v) for k, v in helps.items())),
    )


class QualityRuleForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in rule_engine.EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked = all event types.",
    )

    class Meta:
        model = QualityRule
        fields = (
            "name",
            "description",
            "enabled",
            "severity",
            "kind",
            "field",
            "params",
            "event_types",
            "alert_rate_threshold",
        )
        help_texts = {"params": _kinds_help(rule_engine.KIND_HELP)}


@admin.register(QualityRule)
class QualityRuleAdmin(admin.ModelAdmin):
    form = QualityRuleForm
    list_display = (
        "name",
        "enabled",
        "severity",
        "kind",
        "field",
        "types",
        "updated_at",
        "updated_by",
        "try_link",
    )
    list_filter = ("enabled", "severity", "kind")
    search_fields = ("name", "description", "field")
    readonly_fields = ("updated_at", "updated_by", "created_at")
    actions = ("rules_enable", "rules_disable")
    change_form_template = "admin/quality/qualityrule/change_form.html"

    @admin.display(description="Event types")
    def types(self, rule: QualityRule) -> str:
        return ", ".join(rule.event_types) or "all"

    @admin.display(description="Try")
    def try_link(self, rule: QualityRule) -> str:
        url = reverse("admin:quality_qualityrule_try", args=[rule.pk])
        return format_html('<a href="{}">try on recent events</a>', url)

    def save_model(self, request, obj, form, change) -> None:
        rule_services.rule_save(obj, user=request.user)

    def delete_model(self, request, obj) -> None:
        rule_services.rules_delete([obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        rule_services.rules_delete(list(queryset.values_list("pk", flat=True)))

    @admin.action(permissions=["change"], description="Enable selected rules")
    def rules_enable(self, request, queryset) -> None:
        count = rule_services.rules_set_enabled(
            list(queryset.values_list("pk", flat=True)), True, user=request.user
        )
        self.message_user(
            request, f"Enabled {count} rule(s); ingestion applies them within seconds."
        )

    @admin.action(permissions=["change"], description="Disable selected rules")
    def rules_disable(self, request, queryset) -> None:
        count = rule_services.rules_set_enabled(
            list(queryset.values_list("pk", flat=True)), False, user=request.user
        )
        self.message_user(request, f"Disabled {count} rule(s).")

    def get_urls(self):
        urls = super().get_urls()
        extra = [
            path(
                "<int:rule_id>/try/",
                self.admin_site.admin_view(self.try_view),
                name="quality_qualityrule_try",
            )
        ]
        return extra + urls

    def try_view(self, request: HttpRequest, rule_id: int) -> HttpResponse:
        """Evaluate the rule (even a disabled one) on the newest N stored events."""
        rule = get_object_or_404(QualityRule, pk=rule_id)
        if not self.has_view_permission(request, rule):
            return HttpResponseRedirect(reverse("admin:index"))
        try:
            size = int(request.GET.get("n", 1000))
        except ValueError:
            size = 1000
        size = min(max(size, 1), max(TRY_SAMPLE_SIZES))
        trial = rule_services.rule_try(rule, sample_size=size)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": rule,
            "rule": rule,
            "trial": trial,
            "sizes": TRY_SAMPLE_SIZES,
            "size": size,
            "title": f"Try rule {rule.name}",
        }
        return TemplateResponse(request, "admin/quality/qualityrule/try_rule.html", context)


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
        )
        help_texts = {"params": _kinds_help(check_engine.KIND_HELP)}


@admin.register(QualityCheck)
class QualityCheckAdmin(admin.ModelAdmin):
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
    list_display = ("ran_at", "quality_check", "outcome", "metric_value", "threshold", "duration")
    list_filter = ("outcome", "quality_check")
    date_hierarchy = "ran_at"
    list_select_related = ("quality_check",)

    @admin.display(description="Duration (ms)")
    def duration(self, run: CheckRun) -> str:
        return f"{run.duration_ms:.1f}"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


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


@admin.register(ReplayJob)
class ReplayJobAdmin(admin.ModelAdmin):
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


@admin.register(RuleCounter)
class RuleCounterAdmin(admin.ModelAdmin):
    list_display = ("bucket", "name", "severity", "evaluated", "rejected", "warned")
    list_filter = ("severity",)
    search_fields = ("name", "rule_key")
    date_hierarchy = "bucket"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- quarantine: the events app's RejectedEvent admin, with rule filters and replay ---------


class FailedRuleFilter(admin.SimpleListFilter):
    """Quarantined events that failed a given rule (stored rule or schema-layer rule name)."""

    title = "failed rule"
    parameter_name = "rule"

    def lookups(self, request, model_admin):
        names = list(selectors.quarantine_summary()["by_rule"])[:40]
        stored = list(QualityRule.objects.values_list("name", flat=True))
        return [(name, name) for name in dict.fromkeys(names + stored)]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        sql, params = selectors.rejected_ids_failing_rule_sql(self.value())
        return queryset.filter(pk__in=RawSQL(sql, params))  # noqa: S611 - bound params


class ReasonFieldFilter(admin.SimpleListFilter):
    title = "failed field"
    parameter_name = "field"

    def lookups(self, request, model_admin):
        fields = ["event", "body", *rule_engine.ROW_FIELDS]
        return [(name, name) for name in sorted(fields)]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        sql, params = selectors.rejected_ids_failing_field_sql(self.value())
        return queryset.filter(pk__in=RawSQL(sql, params))  # noqa: S611 - bound params


class QuarantineAdmin(RejectedEventAdmin):
    list_filter = ("status", FailedRuleFilter, ReasonFieldFilter, "event_type", "received_at")
    actions = ("replay_selected",)
    fields = (
        "status",
        "event_type",
        "event_id",
        "received_at",
        "reason_list",
        "rule_ids",
        "pretty_payload",
        "raw_truncated",
        "source_key",
        "source_ip",
        "replay_count",
        "replayed_at",
    )
    readonly_fields = fields

    @admin.display(description="Payload")
    def pretty_payload(self, obj: RejectedEvent) -> str:
        payload = obj.payload
        text = json.dumps(payload, indent=2) if isinstance(payload, dict | list) else str(payload)
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

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

    @admin.action(permissions=["change"], description="Replay through the current rules")
    def replay_selected(self, request, queryset) -> None:
        ids = list(
            queryset.filter(status=RejectedEvent.Status.QUARANTINED).values_list("pk", flat=True)
        )
        if not ids:
            self.message_user(
                request, "Nothing to replay: none is in quarantine.", messages.WARNING
            )
            return
        job = replay_services.replay_job_create(ids, user=request.user)
        url = reverse("admin:quality_replayjob_change", args=[job.pk])
        self.message_user(
            request,
            format_html(
                'Replay job <a href="{}">#{}</a> started for {} event(s); '
                "accepted events move into Event exactly once.",
                url,
                job.pk,
                len(ids),
            ),
        )


admin.site.unregister(RejectedEvent)
admin.site.register(RejectedEvent, QuarantineAdmin)
