"""Folding stored rows in receive order: the one watermark logic of every rollup family.

A rollup holds exactly the rows up to a position (received_at, id) in receive order; a fold
takes the rows after it up to an upper bound and moves the position there, in one transaction.
The bound stops short of the last `rollup_safety_lag()` (an ingestion transaction that started
earlier may still commit rows with an older received_at) and takes at most a batch of rows.

Which model stores the position is the caller's business: these helpers take the position, a
queryset (for the bound) or a column prefix (for SQL), and work for any table with
`received_at` and an integer `id` (events, rejected events).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from analytics_site.sql import rollup_batch_rows, rollup_safety_lag


@dataclass(frozen=True)
class ReceivePosition:
    """A place in receive order: every row with (received_at, id) <= it. `received_at` None is
    the start, before any row."""

    received_at: dt.datetime | None = None
    pk: int = 0

    @property
    def is_start(self) -> bool:
        return self.received_at is None

    def holds(self, received_at: dt.datetime, pk: int) -> bool:
        """Whether the row (received_at, pk) is at or before this position."""
        return self.received_at is not None and (received_at, pk) <= (self.received_at, self.pk)

    def as_tuple(self) -> tuple[dt.datetime | None, int]:
        return (self.received_at, self.pk)


START = ReceivePosition()


def receive_horizon(now: dt.datetime | None = None) -> dt.datetime:
    """The latest received_at a fold may take now: rows within the safety lag wait."""
    return (now or timezone.now()) - rollup_safety_lag()


def after_q(position: ReceivePosition) -> Q:
    """Rows after `position` in receive order, as a Q for the row's own queryset."""
    if position.is_start:
        return Q()
    # The leading range condition lets PostgreSQL use the received_at index (an OR alone
    # makes it scan the table).
    return Q(received_at__gte=position.received_at) & (
        Q(received_at__gt=position.received_at)
        | Q(received_at=position.received_at, id__gt=position.pk)
    )


def after_parts(queryset: QuerySet, position: ReceivePosition) -> list[QuerySet]:
    """Rows after `position` as disjoint querysets: the later times (countable from the
    received_at index alone) and the few rows at that very time. [queryset] at the start."""
    if position.is_start:
        return [queryset]
    return [
        queryset.filter(received_at__gt=position.received_at),
        queryset.filter(received_at=position.received_at, id__gt=position.pk),
    ]


def after_sql(position: ReceivePosition, prefix: str = "") -> tuple[str, list[Any]]:
    """(SQL where-clause, params) for rows after `position`; `prefix` qualifies the columns
    (e.g. "t.")."""
    if position.is_start:
        return "1 = 1", []
    received_at = position.received_at
    return (
        f"{prefix}received_at >= %s AND ({prefix}received_at > %s OR {prefix}id > %s)",
        [received_at, received_at, position.pk],
    )


def until_sql(upper: ReceivePosition, prefix: str = "") -> tuple[str, list[Any]]:
    """(SQL where-clause, params) for rows at or before `upper` (not the start)."""
    return (
        f"({prefix}received_at < %s OR ({prefix}received_at = %s AND {prefix}id <= %s))",
        [upper.received_at, upper.received_at, upper.pk],
    )


def range_sql(
    after: ReceivePosition, upper: ReceivePosition, prefix: str = ""
) -> tuple[str, list[Any]]:
    """(SQL where-clause, params) for the rows in (after, upper]: what one fold takes."""
    until, until_params = until_sql(upper, prefix)
    if after.is_start:
        return until, until_params
    since, since_params = after_sql(after, prefix)
    return f"{until} AND {since}", [*until_params, *since_params]


def upper_bound(
    queryset: QuerySet,
    after: ReceivePosition,
    *,
    now: dt.datetime | None = None,
    batch: int | None = None,
) -> ReceivePosition | None:
    """Where the next fold of `queryset`'s rows after `after` ends: the `batch`-th pending row
    received before the horizon, or the last such row. None when nothing is pending."""
    pending = queryset.filter(after_q(after), received_at__lte=receive_horizon(now))
    batch = batch or rollup_batch_rows()
    nth = pending.order_by("received_at", "id").values_list("received_at", "id")[batch - 1 : batch]
    row = next(iter(nth), None)
    if row is None:
        row = pending.order_by("-received_at", "-id").values_list("received_at", "id").first()
    return None if row is None else ReceivePosition(*row)
