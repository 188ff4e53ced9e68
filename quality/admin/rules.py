"""Rules admin: edit rules (the engine validates parameters in the form), enable or disable
them in bulk, try one on recent stored events; and the rule counters, read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from quality.admin.help_text import kinds_help
from quality.engine import rules as rule_engine
from quality.models import QualityRule, RuleCounter
from quality.services import rules as rule_services

TRY_SAMPLE_SIZES = (100, 1000, 10000)


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
            "alert_channels",
        )
        help_texts = {"params": kinds_help(rule_engine.KIND_HELP)}


@admin.register(QualityRule)
class QualityRuleAdmin(SimpleHistoryAdmin):
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
