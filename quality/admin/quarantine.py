"""The quarantine in admin: the events app owns the RejectedEvent admin; quality adds filters
by failed rule and by failed field, and the replay action, through its extension point
(`events.admin.rejected_event_admin_extend`)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils.html import format_html

from events.admin import rejected_event_admin_extend
from events.facade import REJECTED_STATUS_QUARANTINED
from quality import selectors
from quality.engine import rules as rule_engine
from quality.models import QualityRule
from quality.services import replay as replay_services


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


@admin.action(permissions=["change"], description="Replay through the current rules")
def replay_selected(modeladmin, request, queryset) -> None:
    ids = list(queryset.filter(status=REJECTED_STATUS_QUARANTINED).values_list("pk", flat=True))
    if not ids:
        modeladmin.message_user(
            request, "Nothing to replay: none is in quarantine.", messages.WARNING
        )
        return
    job = replay_services.replay_job_create(ids, user=request.user)
    url = reverse("admin:quality_replayjob_change", args=[job.pk])
    modeladmin.message_user(
        request,
        format_html(
            'Replay job <a href="{}">#{}</a> started for {} event(s); '
            "accepted events move into Event exactly once.",
            url,
            job.pk,
            len(ids),
        ),
    )


rejected_event_admin_extend(
    list_filters=(FailedRuleFilter, ReasonFieldFilter), actions=(replay_selected,)
)
