"""Intake rollups: events by time received, and per minute of event time (ADR 0005)."""

from __future__ import annotations

from django.db import models


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
    event_type = models.CharField(max_length=128)  # custom event names (ADR 0014)
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
