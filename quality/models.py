"""Data-quality rules, dataset checks, their runs, incidents, replay jobs and rule counters.

Rules and checks are rows that analysts edit in admin; the pure engine (`quality.engine`)
compiles them. Parameters are validated by the same engine in `clean()`, so a bad regex or
min > max is a form error and never a runtime crash.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from events.schema import EVENT_TYPES
from quality.engine import channels as channel_engine
from quality.engine import checks as check_engine
from quality.engine import rules as rule_engine


def _validate_channels(value: object) -> None:
    try:
        channel_engine.channels_parse(value)
    except channel_engine.ChannelSpecError as exc:
        raise ValidationError(str(exc)) from None


def _channels_field() -> models.JSONField:
    return models.JSONField(
        default=list,
        blank=True,
        validators=[_validate_channels],
        help_text='Alert channels, e.g. ["slack:https://hooks.slack.com/...", '
        '"email:oncall@example.com", "webhook:https://..."]; empty = the global default '
        "(QUALITY_ALERT_CHANNELS).",
    )


class Severity(models.TextChoices):
    ERROR = "error", "error (reject into quarantine)"
    WARNING = "warning", "warning (accept and record)"


def _validate_event_types(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Give a list of event types, or an empty list for all.")
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(f"Unknown event types: {', '.join(unknown)}.")


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
        validators=[_validate_event_types],
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
    alert_channels = _channels_field()
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


class QualityCheck(models.Model):
    """A dataset-level check run on a schedule by Celery workers."""

    Kind = models.TextChoices("Kind", [(kind, kind) for kind in check_engine.CHECK_KINDS])

    name = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    threshold = models.FloatField(
        help_text="Fails above this value (below it for validation_pass_rate)."
    )
    interval_minutes = models.PositiveIntegerField(default=5, help_text="Run every N minutes.")
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.ERROR)
    enabled = models.BooleanField(default=True)
    webhook_url = models.URLField(
        blank=True, default="", help_text="Overrides QUALITY_ALERT_WEBHOOK_URL for this check."
    )
    alert_channels = _channels_field()
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The audit trail: who changed what, and revert in admin (not the scheduler's claims).
    history = HistoricalRecords(excluded_fields=["last_run_at"])

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            check_engine.check_params_validate(self.kind or "", dict(self.params or {}))
        except check_engine.CheckParamError as exc:
            raise ValidationError({"params": str(exc)}) from None
        if self.interval_minutes is not None and self.interval_minutes < 1:
            raise ValidationError({"interval_minutes": "Run at most once a minute."})


class CheckRun(models.Model):
    class Outcome(models.TextChoices):
        PASS = "pass"  # noqa: S105 - an outcome, not a password
        FAIL = "fail"
        SKIPPED = "skipped", "skipped (not enough data)"
        ERROR = "error"

    quality_check = models.ForeignKey(QualityCheck, on_delete=models.CASCADE, related_name="runs")
    ran_at = models.DateTimeField(db_index=True)
    duration_ms = models.FloatField()
    metric_value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    message = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    # Failing-row evidence of a failed run: {"kind": "event" | "quarantine", "ids": [...]} with
    # up to 20 event ids (events.event_id) or quarantine ids (rejected event pk); {} otherwise.
    samples = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-ran_at",)
        indexes = [models.Index(fields=["quality_check", "-ran_at"], name="checkrun_check_ran_idx")]

    def __str__(self) -> str:
        return f"{self.quality_check_id} {self.outcome} @ {self.ran_at:%Y-%m-%d %H:%M}"


class QualityIncident(models.Model):
    """One queue for everything wrong: failing checks and rules whose failure rate is too high.

    At most one unresolved incident per source (`source_key`, enforced by a partial unique
    constraint), so concurrent workers update the open incident instead of opening another.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    class SourceType(models.TextChoices):
        CHECK = "check"
        RULE = "rule"

    source_type = models.CharField(max_length=8, choices=SourceType.choices)
    source_key = models.CharField(max_length=64, help_text="check:<id> or rule:<id>")
    quality_check = models.ForeignKey(
        QualityCheck, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    rule = models.ForeignKey(
        QualityRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    title = models.CharField(max_length=255)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.ERROR)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notes = models.TextField(blank=True, default="")
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    occurrences = models.PositiveIntegerField(default=1)
    last_metric_value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    last_message = models.TextField(blank=True, default="")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    auto_resolved = models.BooleanField(
        default=False, help_text="Resolved by the system when the check passed again."
    )
    fields = models.JSONField(default=list, blank=True, help_text="Event fields it touches.")
    event_types = models.JSONField(
        default=list, blank=True, help_text="Event types it touches; empty = all."
    )

    class Meta:
        ordering = ("-last_seen_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["source_key"],
                condition=~Q(status="resolved"),
                name="incident_one_unresolved_per_source",
            )
        ]
        indexes = [models.Index(fields=["status", "-last_seen_at"], name="incident_status_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


def _replay_job_user(instance: Any = None, **kwargs: Any) -> Any:
    """The audit trail's "who" of a replay is whoever started it, also for the worker's saves."""
    return getattr(instance, "created_by", None)


class ReplayJob(models.Model):
    """Replay of quarantined events through the current rules, run by a Celery task."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    rejected_ids = models.JSONField(default=list, help_text="RejectedEvent ids to replay.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    still_rejected = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(
        default=0, help_text="Already replayed or being replayed by another job."
    )
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Audit trail: who started the replay, and its state changes (not the id list, kept above).
    history = HistoricalRecords(excluded_fields=["rejected_ids"], get_user=_replay_job_user)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"replay #{self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        return self.processed / self.total if self.total else 1.0


class IntakeWatermark(models.Model):
    """How far, in fold order (txid, id; ADR 0011), accepted and rejected events are folded into
    the intake rollups (`IntakeHour`, `IntakeRuleHour`, `EventMinute`). One row per name.

    Replays hold this row `FOR UPDATE` too: they adjust rolled-up counts of rows under the
    watermark, and the row lock orders them with folds (quality.services.intake)."""

    name = models.CharField(max_length=32, unique=True)
    # Positions (txid, pk) in fold order (events.receive_order, ADR 0011); the received_at
    # fields are the last folded rows', for display.
    event_txid = models.BigIntegerField(null=True, blank=True)
    event_received_at = models.DateTimeField(null=True, blank=True)
    event_pk = models.BigIntegerField(default=0)
    rejected_txid = models.BigIntegerField(null=True, blank=True)
    rejected_received_at = models.DateTimeField(null=True, blank=True)
    rejected_pk = models.BigIntegerField(default=0)
    events_folded = models.BigIntegerField(default=0)
    rejected_folded = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.event_received_at} / {self.event_pk}"


class IntakeHour(models.Model):
    """Per hour of received_at (UTC) and event type: events accepted, accepted with warnings,
    and rejected events still in quarantine (replays move them out; see IntakeWatermark).

    `event_type` is the stored event's type for accepted counts and the rejected payload's type
    (free text, "" when missing) for quarantined counts."""

    bucket = models.DateTimeField(help_text="Start of the hour of received_at (UTC).")
    event_type = models.CharField(max_length=64)
    accepted = models.BigIntegerField(default=0)
    warned = models.BigIntegerField(default=0)
    quarantined = models.BigIntegerField(default=0)
    # Accepted events received within FRESH_WITHIN of their own timestamp (the README's KPI
    # "95% of data < 5 minutes old"); one received before its timestamp counts as fresh.
    fresh = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "event_type"], name="intakehour_key")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} @ {self.bucket:%Y-%m-%d %H:00}"


class IntakeRuleHour(models.Model):
    """Per hour of received_at (UTC) and failed rule name: rejected events still in quarantine
    that failed it (each event once per rule name, however many of its reasons name the rule)."""

    bucket = models.DateTimeField(help_text="Start of the hour of received_at (UTC).")
    rule = models.TextField()
    quarantined = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bucket", "rule"], name="intakerule_key")]

    def __str__(self) -> str:
        return f"{self.rule} @ {self.bucket:%Y-%m-%d %H:00}"


class EventMinute(models.Model):
    """Accepted events and those with warnings per minute of event time (UTC): the Live page's
    per-minute chart. Folded with the intake rollups, from the same watermark."""

    bucket = models.DateTimeField(unique=True, help_text="Start of the minute of timestamp.")
    events = models.BigIntegerField(default=0)
    warned = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M}: {self.events}"


class AlertOutbox(models.Model):
    """An incident alert to deliver, written in the incident change's transaction, so that no
    alert is lost to a broker or webhook outage (ADR 0010). Retried with backoff until
    `retry_until`, then dead-lettered; the admin's "resend" makes it pending again."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        DEAD = "dead", "dead letter"
        UNROUTED = "unrouted", "no webhook configured"

    incident = models.ForeignKey(
        QualityIncident, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    event = models.CharField(max_length=16)
    delivery_id = models.CharField(max_length=96, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(help_text="Also the lease of a delivery in flight.")
    retry_until = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Channel specs that already took this alert: a retry sends only to the others.
    delivered_channels = models.JSONField(default=list, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due_idx")]

    def __str__(self) -> str:
        return f"{self.delivery_id} ({self.status})"
