"""Data-quality rules that analysts edit in admin, rule-set versions and per-rule counters."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from quality.engine import rules as rule_engine
from quality.models.base import Severity, channels_field, validate_event_types


class QualityRule(models.Model):
    """A row-level rule evaluated on every ingested event of the types it applies to."""

    Kind = models.TextChoices("Kind", [(kind, kind) for kind in rule_engine.RULE_KINDS])

    name = models.SlugField(
        max_length=80, unique=True, help_text="Shown to API clients as the failed rule's name."
    )
    description = models.TextField(blank=True, default="")
    event_types = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_event_types],
        help_text='Event types it applies to, e.g. ["purchase"]; empty = all types.',
    )
    field = models.CharField(
        max_length=128, help_text="Event field, or properties.<key> for a custom property."
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    params = models.JSONField(
        default=dict, blank=True, help_text="Kind-specific parameters; see the kind's help."
    )
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.ERROR)
    enabled = models.BooleanField(default=True)
    alert_rate_threshold = models.FloatField(
        default=0.05,
        help_text="Open an incident when this rule fails more than this share of the events "
        "it checks over the last hour (0.05 = 5%).",
    )
    alert_channels = channels_field()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    history = HistoricalRecords()  # the audit trail: who changed what, and revert in admin

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            rule_engine.rule_compile(self.as_spec())
        except rule_engine.RuleParamError as exc:
            raise ValidationError({exc.param_field: str(exc)}) from None
        if not 0 <= self.alert_rate_threshold <= 1:
            raise ValidationError({"alert_rate_threshold": "Give a share between 0 and 1."})

    def as_spec(self) -> rule_engine.RuleSpec:
        return rule_engine.RuleSpec(
            id=self.pk or 0,
            name=self.name or "",
            kind=self.kind or "",
            field=self.field or "",
            params=dict(self.params or {}),
            severity=self.severity,
            event_types=frozenset(self.event_types or ()),
        )


class RuleSetVersion(models.Model):
    """One row whose version is bumped on every rule change; worker processes poll it."""

    version = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"rule set v{self.version}"


class RuleCounter(models.Model):
    """Per rule, per hour: events checked, rejected and warned. Upserted once per batch.

    `rule_key` is `rule:<id>` for stored rules and `schema:<field>:<rule>` for the schema
    layer, so the top-failing list covers both.
    """

    rule_key = models.CharField(max_length=160)
    # A plain id, not a foreign key: the hot path must never fail on a rule deleted mid-batch.
    rule_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    name = models.CharField(max_length=160)
    severity = models.CharField(max_length=8, default=Severity.ERROR)
    bucket = models.DateTimeField(help_text="Start of the hour (UTC).")
    evaluated = models.PositiveBigIntegerField(default=0)
    rejected = models.PositiveBigIntegerField(default=0)
    warned = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule_key", "bucket"], name="rulecounter_key_bucket")
        ]
        indexes = [models.Index(fields=["bucket"], name="rulecounter_bucket_idx")]

    def __str__(self) -> str:
        return f"{self.rule_key} @ {self.bucket:%Y-%m-%d %H:00}"
