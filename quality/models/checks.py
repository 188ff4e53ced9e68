"""Dataset checks, their runs, the incidents they open and the alert outbox."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from quality.engine import checks as check_engine
from quality.models.base import Severity, channels_field
from quality.models.rules import QualityRule


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
    alert_channels = channels_field()
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
    # The incident policy (quality.engine.incident_policy): passes in a row while unresolved
    # (auto-resolve after N), and the metric at the last alert (re-alert when much worse).
    consecutive_passes = models.PositiveIntegerField(default=0)
    reopen_count = models.PositiveIntegerField(default=0)
    alert_metric_value = models.FloatField(null=True, blank=True)
    alert_metric_sign = models.SmallIntegerField(default=0)
    alert_previous_value = models.FloatField(
        null=True, blank=True, help_text="Metric at the alert before the last (what changed)."
    )
    last_alert_at = models.DateTimeField(null=True, blank=True)
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
