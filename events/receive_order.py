"""Folding stored rows in commit order: the one watermark logic of every rollup family (ADR 0011).

A rollup holds exactly the rows up to a position (txid, id): `txid` is the id of the
transaction that inserted the row (a column default, `CurrentTransactionId`), `id` orders the
rows of one transaction. A fold takes the rows after the position up to an upper bound and
moves the position there, in one transaction.

Why not received_at: it is taken when a request starts, and a transaction that commits later
than any lag (a lock wait, a bulk load of past data) would land behind a position that already
moved on, and never be folded. In txid order, the bound stops before the oldest transaction
still in progress (`commit_frontier`): every row before it is committed (or rolled back) and
visible, and every row committed later is after it. Rows received within `rollup_safety_lag()`
also wait (a fold stops at the first of them), which keeps folds in larger batches.

SQLite (`make demo`) has one writer at a time, holding the lock from its first insert to its
commit, so ids are already in commit order: txid is 0 there, and the frontier is 1.

Which model stores the position is the caller's business: these helpers take the position, a
queryset (for the bound) or a column prefix (for SQL), and work for any table with `txid`,
`received_at` and an integer `id` (events, rejected events).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, Func, Q, QuerySet
from django.utils import timezone

from analytics_site.sql import is_postgres, rollup_batch_rows, rollup_safety_lag


class CurrentTransactionId(Func):
    """Column default of `txid`: the inserting top-level transaction's id on PostgreSQL (xid8,
    never wraps), 0 on SQLite (ids are in commit order there)."""

    output_field = BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "(0)", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text::bigint)", []


@dataclass(frozen=True)
class ReceivePosition:
    """A place in fold order: every row with (txid, id) <= it. `txid` None is the start, before
    any row. `received_at` is the last folded row's, for display only."""

    txid: int | None = None
    pk: int = 0
    received_at: dt.datetime | None = None

    @property
    def is_start(self) -> bool:
        return self.txid is None

    def holds(self, txid: int, pk: int) -> bool:
        """Whether the row (txid, pk) is at or before this position."""
        return self.txid is not None and (txid, pk) <= (self.txid, self.pk)


START = ReceivePosition()


def receive_horizon(now: dt.datetime | None = None) -> dt.datetime:
    """The latest received_at a fold may take now: rows within the safety lag wait."""
    return (now or timezone.now()) - rollup_safety_lag()


# What may still commit rows into our tables. Below the snapshot's xmax: the in-progress ids
# it lists (top-level only), less those that have ended since (the fold's later statements see
# them) and those that provably belong to another database of the cluster (a backend serves
# one database for life; txids are cluster-wide, and a long transaction elsewhere must not
# stall our folds). From xmax up to our own id: the transactions of this database in progress
# now (sessions and prepared ones); the ones that ended are visible to our later statements.
_FRONTIER_SQL = """
WITH s AS (SELECT pg_current_snapshot() AS snap,
                  pg_current_xact_id_if_assigned()::text::bigint AS own,
                  (SELECT oid FROM pg_database WHERE datname = current_database()) AS db)
SELECT pg_snapshot_xmax(snap)::text::bigint, own,
       ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(snap) AS x
             WHERE pg_xact_status(x) = 'in progress'
               AND x::text::bigint %% 4294967296 NOT IN (
                   SELECT backend_xid::text::bigint FROM pg_stat_activity
                   WHERE backend_xid IS NOT NULL AND datid <> db)),
       ARRAY(SELECT backend_xid::text::bigint FROM pg_stat_activity
             WHERE backend_xid IS NOT NULL AND datid = db
             UNION ALL
             SELECT transaction::text::bigint FROM pg_prepared_xacts
             WHERE database = current_database())
FROM s
"""
_EPOCH = 1 << 32


def _widen(xid32: int, floor: int) -> int:
    """The 64-bit id at or above `floor` whose low 32 bits are `xid32` (ids in progress are
    within 2^31 of each other)."""
    xid = floor - floor % _EPOCH + xid32
    return xid if xid >= floor else xid + _EPOCH


def commit_frontier() -> int:
    """The smallest txid that may still commit rows: every row with a smaller txid is visible
    to this transaction now and to every later snapshot. This transaction's own rows count as
    committed (a fold in it commits with them)."""
    if not is_postgres():
        return 1
    with connection.cursor() as cursor:
        # pg_stat_activity is read once per transaction unless its snapshot is cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(_FRONTIER_SQL, [])
        xmax, own, below_xmax, here = cursor.fetchone()
    if own is None or own < xmax:
        return min([xmax, *(xid for xid in below_xmax if xid != own)])
    above_xmax = (_widen(xid32, xmax) for xid32 in here)
    # Every id up to ours is accounted for; later ones started after us.
    return min([own + 1, *below_xmax, *(xid for xid in above_xmax if xid < own)])


def after_q(position: ReceivePosition) -> Q:
    """Rows after `position`, as a Q for the row's own queryset. The leading range condition
    lets PostgreSQL use the (txid, id) index whatever its statistics (an OR alone makes it
    scan the table)."""
    if position.is_start:
        return Q()
    return Q(txid__gte=position.txid) & (
        Q(txid__gt=position.txid) | Q(txid=position.txid, id__gt=position.pk)
    )


def _until_q(position: ReceivePosition, *, inclusive: bool = True) -> Q:
    same = (
        Q(txid=position.txid, id__lte=position.pk)
        if inclusive
        else Q(txid=position.txid, id__lt=position.pk)
    )
    return Q(txid__lte=position.txid) & (Q(txid__lt=position.txid) | same)


def after_parts(queryset: QuerySet, position: ReceivePosition) -> list[QuerySet]:
    """Rows after `position` as disjoint querysets: the later transactions (countable from the
    (txid, id) index alone) and the rows of that very transaction. [queryset] at the start."""
    if position.is_start:
        return [queryset]
    return [
        queryset.filter(txid__gt=position.txid),
        queryset.filter(txid=position.txid, id__gt=position.pk),
    ]


def after_sql(position: ReceivePosition, prefix: str = "") -> tuple[str, list[Any]]:
    """(SQL where-clause, params) for rows after `position`; `prefix` qualifies the columns
    (e.g. "t.")."""
    if position.is_start:
        return "1 = 1", []
    txid = position.txid
    return (
        f"{prefix}txid >= %s AND ({prefix}txid > %s OR {prefix}id > %s)",
        [txid, txid, position.pk],
    )


def until_sql(upper: ReceivePosition, prefix: str = "") -> tuple[str, list[Any]]:
    """(SQL where-clause, params) for rows at or before `upper` (not the start)."""
    return (
        f"{prefix}txid <= %s AND ({prefix}txid < %s OR {prefix}id <= %s)",
        [upper.txid, upper.txid, upper.pk],
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


def _position(row: tuple | None) -> ReceivePosition | None:
    return None if row is None else ReceivePosition(*row)


def upper_bound(
    queryset: QuerySet,
    after: ReceivePosition,
    *,
    now: dt.datetime | None = None,
    batch: int | None = None,
) -> ReceivePosition | None:
    """Where the next fold of `queryset`'s rows after `after` ends: at most `batch` rows, all
    committed (before the frontier), stopping before the first row received after the
    horizon. None when nothing is pending. Every query walks the (txid, id) index over at
    most one batch."""
    pending = queryset.filter(after_q(after), txid__lt=commit_frontier())
    batch = batch or rollup_batch_rows()
    fields = ("txid", "id", "received_at")
    nth = pending.order_by("txid", "id").values_list(*fields)[batch - 1 : batch]
    window = pending
    last = _position(next(iter(nth), None))
    if last is not None:
        window = pending.filter(_until_q(last))
    blocked = _position(
        window.filter(received_at__gt=receive_horizon(now))
        .order_by("txid", "id")
        .values_list(*fields)
        .first()
    )
    if blocked is not None:
        window = window.filter(_until_q(blocked, inclusive=False))
        last = None
    if last is None:
        last = _position(window.order_by("-txid", "-id").values_list(*fields).first())
    return last
