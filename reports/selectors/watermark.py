"""Where the rollups end: the watermark (txid, id) in fold order (ADR 0011), and the raw events
after it (the tail that the other selectors add on top of the rollup tables)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db.models import QuerySet

from events.facade import events_all
from events.receive_order import START, ReceivePosition, after_q
from reports.models import RollupWatermark

WATERMARK_NAME = "events"


def watermark_get() -> ReceivePosition:
    """The position up to which rollups hold events; the start before the first run."""
    row = (
        RollupWatermark.objects.filter(name=WATERMARK_NAME)
        .values_list("txid", "event_pk", "received_at")
        .first()
    )
    return ReceivePosition(*row) if row else START


def rollup_state() -> tuple[uuid.UUID | None, int | None, int]:
    """(generation, txid, id): the rollup tables' contents are a function of these."""
    row = (
        RollupWatermark.objects.filter(name=WATERMARK_NAME)
        .values_list("generation", "txid", "event_pk")
        .first()
    )
    return row if row else (None, None, 0)


def events_after_watermark(position: ReceivePosition) -> QuerySet:
    """Raw events not yet in the rollups (the tail that readers add on top)."""
    return events_all().filter(after_q(position))


def rollup_lag(now: dt.datetime) -> dict[str, Any]:
    """How far the dashboards' rollups are behind: the age of the first event waiting to be
    folded (0 when nothing waits), and when the last folded event was received. Two index
    reads: the watermark row and the first tail row in fold order (txid, id)."""
    position = watermark_get()
    waiting = (
        events_after_watermark(position)
        .order_by("txid", "id")
        .values_list("received_at", flat=True)
        .first()
    )
    lag = max((now - waiting).total_seconds(), 0.0) if waiting else 0.0
    return {"lag_seconds": lag, "last_folded_received_at": position.received_at}
