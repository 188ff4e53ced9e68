"""Where the rollups end: the watermark (received_at, id) in receive order, and the raw events
after it (the tail that the other selectors add on top of the rollup tables)."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db.models import QuerySet

from events.facade import events_all
from events.receive_order import ReceivePosition, after_q
from reports.models import RollupWatermark

WATERMARK_NAME = "events"


def watermark_get() -> tuple[dt.datetime | None, int]:
    """The (received_at, id) up to which rollups hold events; (None, 0) before the first run."""
    row = (
        RollupWatermark.objects.filter(name=WATERMARK_NAME)
        .values_list("received_at", "event_pk")
        .first()
    )
    return row if row else (None, 0)


def rollup_state() -> tuple[uuid.UUID | None, dt.datetime | None, int]:
    """(generation, received_at, id): the rollup tables' contents are a function of these."""
    row = (
        RollupWatermark.objects.filter(name=WATERMARK_NAME)
        .values_list("generation", "received_at", "event_pk")
        .first()
    )
    return row if row else (None, None, 0)


def events_after_watermark(received_at: dt.datetime | None, event_pk: int) -> QuerySet:
    """Raw events not yet in the rollups (the tail that readers add on top)."""
    return events_all().filter(after_q(ReceivePosition(received_at, event_pk)))
