"""The rollup watermark and the abstract row every rollup table shares."""

import uuid

from django.db import models


class RollupWatermark(models.Model):
    """How far (in fold order, ADR 0011) raw events are folded into the rollups. One row a name."""

    name = models.CharField(max_length=32, unique=True)
    # The position (txid, event_pk) in fold order (events.receive_order, ADR 0011); received_at
    # is the last folded event's, for display.
    txid = models.BigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    event_pk = models.BigIntegerField(default=0)
    events_rolled_up = models.BigIntegerField(default=0)
    generation = models.UUIDField(
        default=uuid.uuid4,
        help_text="New on every rebuild: rollup contents are a function of (generation, watermark)"
        " in this database, so it keys caches of rollup reads.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The dashboards' permissions hang here (roles: analytics_site.access).
        permissions = [
            ("view_dashboards", "Can view the dashboards"),
            ("download_csv", "Can download dashboard tables as CSV"),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.txid} / {self.event_pk} ({self.received_at})"


class RollupRow(models.Model):
    """A row of a rollup table: its bucket (UTC) names it."""

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.bucket:%Y-%m-%d %H:00}"
