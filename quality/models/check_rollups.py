"""Rollups the dataset checks read (ADR 0019), by hour of event time, folded with the intake
rollups from the same watermark (`IntakeWatermark`, fold order (txid, id); ADR 0011)."""

from __future__ import annotations

from django.db import models


class EventHour(models.Model):
    """Per hour of timestamp (UTC), per dimension (event_type, device_type, country, currency)
    and value: stored events, the sum and count of their non-null prices, the ones that repeat
    an earlier event's content (session, type, product, timestamp) under another event_id, and
    purchases whose session has no checkout_start among
    the folded events. Each event counts once in each dimension, so a read of one dimension
    groups hours x its values, not hours x every combination."""

    bucket = models.DateTimeField(help_text="Start of the hour of timestamp (UTC).")
    dimension = models.CharField(max_length=16)
    value = models.CharField(max_length=32)
    events = models.BigIntegerField(default=0)
    # Events with an earlier one (in fold order) of the same content key: per hour, events
    # minus distinct keys (the key holds the timestamp, so a key never spans two hours).
    duplicates = models.BigIntegerField(default=0)
    # Purchases with no checkout_start of their session folded yet; a later checkout_start's
    # fold takes them back.
    orphans = models.BigIntegerField(default=0)
    # The mean price check's baseline (ADR 0020's mean_shift) without a 7-day raw scan.
    price_sum = models.DecimalField(max_digits=24, decimal_places=2, default=0)
    prices = models.BigIntegerField(default=0, help_text="Events with a price.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dimension", "bucket", "value"], name="eventhour_key")
        ]

    def __str__(self) -> str:
        return f"{self.dimension}={self.value} @ {self.bucket:%Y-%m-%d %H}"


class NullHour(models.Model):
    """Per hour of timestamp (UTC) x event type x event column: events with the column null
    (or "" for text columns). Only non-zero counts are stored."""

    bucket = models.DateTimeField(help_text="Start of the hour of timestamp (UTC).")
    event_type = models.CharField(max_length=32)
    field = models.CharField(max_length=32)
    nulls = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["field", "bucket", "event_type"], name="nullhour_key")
        ]

    def __str__(self) -> str:
        return f"{self.event_type}.{self.field} @ {self.bucket:%Y-%m-%d %H}: {self.nulls}"
