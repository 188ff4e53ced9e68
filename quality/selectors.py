"""Reads for data quality: dashboard summaries (plain, JSON-friendly data), the counts that
dataset checks judge, and the stored-event lookups that batch rules need.

Dashboard signatures are a contract with the reports app (the Data quality page); keep them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Sum
from django.db.models.functions import Trunc
from django.urls import reverse

from events.models import Event, RejectedEvent
from quality.models import (
    CheckRun,
    EventMinute,
    QualityIncident,
    ReceiptHour,
    ReceiptRuleHour,
    RuleCounter,
)
from quality.services import receipts

BUCKETS = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1), "day": None}
_MAX_FILLED_BUCKETS = 5000

# Which fields / event types a dashboard metric is computed from: an incident touching any of
# them (or touching everything: no fields and no event types) is linked from that chart.
METRIC_TOUCHES: dict[str, set[str]] = {
    "revenue": {"revenue", "price", "quantity", "order_id", "currency", "purchase"},
    "orders": {"order_id", "purchase"},
    "conversion": {"session_id", "checkout_start", "purchase", "add_to_cart"},
    "funnel": {"session_id", "product_view", "add_to_cart", "checkout_start", "purchase"},
    "events": set(),
    "sessions": {"session_id", "user_id"},
    "products": {"product_id", "category", "product_view", "add_to_cart"},
    "devices": {"device_type"},
    "countries": {"country"},
    "search": {"search_query", "search"},
}

QUARANTINED = RejectedEvent.Status.QUARANTINED
UNRESOLVED = (QualityIncident.Status.OPEN, QualityIncident.Status.ACKNOWLEDGED)


# --- dashboard reads ----------------------------------------------------------------------


def _bucket_start(value: dt.datetime, bucket: str) -> dt.datetime:
    value = value.astimezone(dt.UTC)
    if bucket == "minute":
        return value.replace(second=0, microsecond=0)
    if bucket == "hour":
        return value.replace(minute=0, second=0, microsecond=0)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _bucket_steps(start: dt.datetime, end: dt.datetime, bucket: str) -> list[dt.datetime]:
    step = BUCKETS[bucket] or dt.timedelta(days=1)
    current, buckets = _bucket_start(start, bucket), []
    while current < end and len(buckets) < _MAX_FILLED_BUCKETS:
        buckets.append(current)
        current += step
    return buckets


@contextlib.contextmanager
def _one_snapshot() -> Iterator[None]:
    """Watermarks, rollup rows and the raw tail read in one snapshot, so that a fold committing
    between two queries cannot count a row twice or not at all. Reuses an outer transaction
    (the dashboard pages open a REPEATABLE READ one)."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


@dataclass(frozen=True)
class _ReceiptSplit:
    """[start, end) of receipt time cut into whole hours (rollup + tail) and raw edges."""

    hours: tuple[dt.datetime | None, dt.datetime | None] | None
    edges: list[tuple[dt.datetime | None, dt.datetime | None]]


def _receipt_split(start: dt.datetime | None, end: dt.datetime | None) -> _ReceiptSplit:
    first = None
    if start is not None:
        first = _bucket_start(start, "hour")
        if first < start:
            first += BUCKETS["hour"]
    last = None if end is None else _bucket_start(end, "hour")
    if first is not None and last is not None and first >= last:
        return _ReceiptSplit(None, [(start, end)])
    edges = []
    if start is not None and first is not None and start < first:
        edges.append((start, first))
    if end is not None and last is not None and last < end:
        edges.append((last, end))
    return _ReceiptSplit((first, last), edges)


def _in_span(rows, span: tuple[dt.datetime | None, dt.datetime | None], field: str = "received_at"):
    low, high = span
    if low is not None:
        rows = rows.filter(**{f"{field}__gte": low})
    if high is not None:
        rows = rows.filter(**{f"{field}__lt": high})
    return rows


def _empty_outcome() -> dict[str, int]:
    return {"accepted": 0, "rejected": 0, "warned": 0}


def _raw_outcomes_add(
    counts: dict[dt.datetime, dict[str, int]], events, rejected, bucket: str
) -> None:
    """Add raw accepted / warned / still-quarantined counts per bucket of receipt time.

    Accepted and warned are two queries, each served by an index: all events by receipt time
    (index-only when the table is vacuumed), and the few with warnings through a partial index.
    """
    tz = dt.UTC
    for name, rows in (("accepted", events), ("warned", events.exclude(warnings=[]))):
        found = (
            rows.annotate(b=Trunc("received_at", bucket, tzinfo=tz))
            .values("b")
            .annotate(n=Count("received_at"))
            .order_by()
        )
        for row in found:
            counts.setdefault(row["b"], _empty_outcome())[name] += row["n"]
    rows = (
        rejected.filter(status=QUARANTINED)
        .annotate(b=Trunc("received_at", bucket, tzinfo=tz))
        .values("b")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts.setdefault(row["b"], _empty_outcome())["rejected"] += row["n"]


def _receipt_outcomes(
    start: dt.datetime, end: dt.datetime, bucket: str
) -> dict[dt.datetime, dict[str, int]]:
    """Exact outcome counts per bucket: receipt rollup hours + the raw tail after its
    watermarks, and raw rows for the partial hours at the edges (or for minute buckets)."""
    counts: dict[dt.datetime, dict[str, int]] = {}
    split = (
        _receipt_split(start, end) if bucket != "minute" else _ReceiptSplit(None, [(start, end)])
    )
    with _one_snapshot():
        for span in split.edges:
            _raw_outcomes_add(
                counts, _in_span(Event.objects, span), _in_span(RejectedEvent.objects, span), bucket
            )
        if split.hours is None:
            return counts
        marks = receipts.receipt_marks()
        rolled = (
            _in_span(ReceiptHour.objects, split.hours, "bucket")
            .annotate(b=Trunc("bucket", bucket, tzinfo=dt.UTC))
            .values("b")
            .annotate(a=Sum("accepted"), w=Sum("warned"), q=Sum("quarantined"))
            .order_by()
        )
        for row in rolled:
            entry = counts.setdefault(row["b"], _empty_outcome())
            entry["accepted"] += row["a"]
            entry["warned"] += row["w"]
            entry["rejected"] += row["q"]
        none = RejectedEvent.objects.none()
        for events in marks.events_after():
            _raw_outcomes_add(counts, _in_span(events, split.hours), none, bucket)
        for rejected in marks.rejected_after():
            _raw_outcomes_add(counts, Event.objects.none(), _in_span(rejected, split.hours), bucket)
    return counts


def validation_pass_rate_series(
    start: dt.datetime, end: dt.datetime, bucket: str = "hour"
) -> list[dict[str, Any]]:
    """Accepted / quarantined / warned events per bucket of receipt time, zero-filled.

    accepted counts stored events (replayed ones at their original receipt time, so a fix
    and replay improves history); rejected counts what is still in quarantine. pass_rate is
    None for an empty bucket. Read from the receipt rollups plus the raw tail (ADR 0005).
    """
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {sorted(BUCKETS)}")
    counts: dict[dt.datetime, dict[str, int]] = {
        b: _empty_outcome() for b in _bucket_steps(start, end, bucket)
    }
    for key, entry in _receipt_outcomes(start, end, bucket).items():
        counts.setdefault(key, _empty_outcome())
        for name, value in entry.items():
            counts[key][name] += value
    series = []
    for key in sorted(counts):
        entry = counts[key]
        total = entry["accepted"] + entry["rejected"]
        series.append(
            {
                "bucket": key,
                **entry,
                "pass_rate": round(entry["accepted"] / total, 6) if total else None,
            }
        )
    return series


def events_per_minute(start: dt.datetime, end: dt.datetime) -> dict[dt.datetime, dict[str, int]]:
    """Stored events and those with warnings per minute of event time in [start, end), whole
    minutes (UTC). Minutes without events are left out. From `EventMinute` plus the raw tail."""
    start, end = _bucket_start(start, "minute"), _bucket_start(end, "minute")
    counts: dict[dt.datetime, dict[str, int]] = defaultdict(lambda: {"events": 0, "warned": 0})
    with _one_snapshot():
        marks = receipts.receipt_marks()
        for minute, events, warned in EventMinute.objects.filter(
            bucket__gte=start, bucket__lt=end
        ).values_list("bucket", "events", "warned"):
            counts[minute.astimezone(dt.UTC)]["events"] += events
            counts[minute.astimezone(dt.UTC)]["warned"] += warned
        for events in marks.events_after():
            events = events.filter(timestamp__gte=start, timestamp__lt=end)
            for name, rows in (("events", events), ("warned", events.exclude(warnings=[]))):
                found = (
                    rows.annotate(b=Trunc("timestamp", "minute", tzinfo=dt.UTC))
                    .values("b")
                    .annotate(n=Count("timestamp"))
                    .order_by()
                )
                for row in found:
                    counts[row["b"].astimezone(dt.UTC)][name] += row["n"]
    return {minute: entry for minute, entry in counts.items() if entry["events"]}


def rules_failing_top(start: dt.datetime, end: dt.datetime, limit: int = 10) -> list[dict]:
    """Rules (stored and schema-layer) by events rejected + warned in [start, end).

    Stored rules have their id; schema-layer rules have rule_id None and a name such as
    `country: required (schema)`.
    """
    rows = (
        RuleCounter.objects.filter(bucket__gte=_bucket_start(start, "hour"), bucket__lt=end)
        .values("rule_key")
        .annotate(
            rule_id=Max("rule_id"),
            name=Max("name"),
            severity=Max("severity"),
            evaluated=Sum("evaluated"),
            rejected=Sum("rejected"),
            warned=Sum("warned"),
        )
        .annotate(failed=F("rejected") + F("warned"))
        .filter(failed__gt=0)
        .order_by("-failed", "name")[:limit]
    )
    return [
        {
            "rule_id": row["rule_id"],
            "name": row["name"],
            "severity": row["severity"],
            "rejected": row["rejected"],
            "warned": row["warned"],
            "evaluated": row["evaluated"],
            # Schema-layer counts are written only for batches where they failed, so a rate
            # would overstate them; stored rules count every event they checked.
            "failure_rate": round(row["failed"] / row["evaluated"], 6)
            if row["evaluated"] and row["rule_id"] is not None
            else None,
        }
        for row in rows
    ]


def _touches(incident: dict[str, Any], metric: str) -> bool:
    touched = set(incident["fields"]) | set(incident["event_types"])
    if not touched:
        return True  # freshness, volume, pass rate: every chart is affected
    wanted = METRIC_TOUCHES.get(metric, {metric})
    return not wanted or bool(touched & wanted)


def incidents_open(limit: int = 50, metric: str | None = None) -> list[dict[str, Any]]:
    """Unresolved incidents, newest activity first. With `metric` (a dashboard metric such as
    "revenue", or a field / event type name), only those touching it."""
    rows = QualityIncident.objects.filter(status__in=UNRESOLVED).order_by("-last_seen_at")
    values = rows.values(
        "id",
        "title",
        "source_type",
        "source_key",
        "severity",
        "status",
        "opened_at",
        "last_seen_at",
        "occurrences",
        "fields",
        "event_types",
        "last_metric_value",
        "threshold",
    )
    incidents = []
    for row in values[: limit if metric is None else limit * 10]:
        source = row.pop("source_type")
        incident = {
            **row,
            "source": source,
            "admin_url": reverse("admin:quality_qualityincident_change", args=[row["id"]]),
        }
        if metric is None or _touches(incident, metric):
            incidents.append(incident)
        if len(incidents) >= limit:
            break
    return incidents


def check_runs_recent(limit: int = 20) -> list[dict[str, Any]]:
    runs = CheckRun.objects.select_related("quality_check").order_by("-ran_at", "-id")[:limit]
    return [
        {
            "check": run.quality_check.name,
            "kind": run.quality_check.kind,
            "outcome": run.outcome,
            "metric_value": run.metric_value,
            "threshold": run.threshold,
            "ran_at": run.ran_at,
            "duration_ms": round(run.duration_ms, 2),
            "message": run.message,
        }
        for run in runs
    ]


def _reason_rule_counts(
    start: dt.datetime | None,
    end: dt.datetime | None,
    after: tuple[dt.datetime | None, int] = (None, 0),
) -> dict[str, int]:
    """Count quarantined events per failed rule name, in SQL (reasons is a JSON list); only
    rows after `after` (received_at, id) in receive order when it is given."""
    table = RejectedEvent._meta.db_table
    where, params = ["t.status = %s"], [QUARANTINED]
    if start is not None:
        where.append("t.received_at >= %s")
        params.append(start)
    if end is not None:
        where.append("t.received_at < %s")
        params.append(end)
    if after[0] is not None:
        where.append("t.received_at >= %s AND (t.received_at > %s OR t.id > %s)")
        params += [after[0], after[0], after[1]]
    if connection.vendor == "postgresql":
        sql = (
            "SELECT reason->>'rule', COUNT(DISTINCT t.id) "  # noqa: S608 - names from models
            f"FROM {table} t, jsonb_array_elements(t.reasons) AS reason "
            f"WHERE {' AND '.join(where)} GROUP BY 1"
        )
    else:
        sql = (
            "SELECT json_extract(reason.value, '$.rule'), COUNT(DISTINCT t.id) "  # noqa: S608
            f"FROM {table} t, json_each(t.reasons) AS reason "
            f"WHERE {' AND '.join(where)} GROUP BY 1"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {str(name): count for name, count in cursor.fetchall() if name is not None}


def _quarantined_by_type_raw(rows) -> Counter[str]:
    found = rows.filter(status=QUARANTINED).values_list("event_type").annotate(n=Count("id"))
    return Counter({event_type: n for event_type, n in found.order_by()})


def quarantined_by_type(
    start: dt.datetime | None = None, end: dt.datetime | None = None
) -> Counter[str]:
    """Events still in quarantine received in [start, end), by the rejected payload's event
    type ("" when it had none): receipt rollup hours plus the raw tail after their watermark,
    and raw rows for partial hours at the edges (ADR 0005). The dashboards' quality notes read
    this: a 90-day period is ~2,000 hour rows, whatever the number of rejected events."""
    by_type: Counter[str] = Counter()
    split = _receipt_split(start, end)
    with _one_snapshot():
        for span in split.edges:
            by_type.update(_quarantined_by_type_raw(_in_span(RejectedEvent.objects, span)))
        if split.hours is not None:
            marks = receipts.receipt_marks()
            rolled = (
                _in_span(ReceiptHour.objects, split.hours, "bucket")
                .values_list("event_type")
                .annotate(n=Sum("quarantined"))
                .order_by()
            )
            by_type.update(dict(rolled))
            for rejected in marks.rejected_after():
                by_type.update(_quarantined_by_type_raw(_in_span(rejected, split.hours)))
    return by_type


def quarantine_summary(
    start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[str, Any]:
    """How many events sit in quarantine, by event type and by failed rule name.

    Receipt rollup hours plus the raw tail after their watermark, and raw rows for partial
    hours at the edges (ADR 0005)."""
    by_rule: Counter[str] = Counter()
    split = _receipt_split(start, end)
    with _one_snapshot():
        by_type = quarantined_by_type(start, end)
        for span in split.edges:
            by_rule.update(_reason_rule_counts(*span))
        if split.hours is not None:
            marks = receipts.receipt_marks()
            rolled = (
                _in_span(ReceiptRuleHour.objects, split.hours, "bucket")
                .values_list("rule")
                .annotate(n=Sum("quarantined"))
                .order_by()
            )
            by_rule.update(dict(rolled))
            by_rule.update(
                _reason_rule_counts(
                    *split.hours, after=(marks.rejected_received_at, marks.rejected_pk)
                )
            )
    named: Counter[str] = Counter()
    for event_type, n in by_type.items():
        named[event_type or "unknown"] += n
    by_type_sorted = {
        name: n for name, n in sorted(named.items(), key=lambda kv: (-kv[1], kv[0])) if n
    }
    by_rule_sorted = {
        name: n for name, n in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0])) if n
    }
    return {
        "quarantined": sum(by_type_sorted.values()),
        "by_event_type": by_type_sorted,
        "by_rule": by_rule_sorted,
    }


# --- counts judged by dataset checks ------------------------------------------------------


def events_newest_timestamp(event_types: Sequence[str] = ()) -> dt.datetime | None:
    rows = Event.objects.all()
    if event_types:
        rows = rows.filter(event_type__in=event_types)
    return rows.aggregate(newest=Max("timestamp"))["newest"]


def events_oldest_timestamp() -> dt.datetime | None:
    first = Event.objects.order_by("timestamp").values_list("timestamp", flat=True).first()
    return first


def event_counts_in_windows(windows: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[int]:
    """Events (by event time) in each [start, end) window, in one query."""
    if not windows:
        return []
    aggregates = {
        f"w{i}": Count("id", filter=Q(timestamp__gte=start, timestamp__lt=end))
        for i, (start, end) in enumerate(windows)
    }
    low = min(start for start, _ in windows)
    high = max(end for _, end in windows)
    result = Event.objects.filter(timestamp__gte=low, timestamp__lt=high).aggregate(**aggregates)
    return [result[f"w{i}"] for i in range(len(windows))]


def field_null_counts(
    field: str, event_types: Sequence[str], start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    """(null or empty, total) for a field over events in the window."""
    rows = Event.objects.filter(timestamp__gte=start, timestamp__lt=end)
    if event_types:
        rows = rows.filter(event_type__in=event_types)
    empty = Q(**{f"{field}__isnull": True})
    if Event._meta.get_field(field).get_internal_type() == "CharField":
        empty |= Q(**{field: ""})
    result = rows.aggregate(total=Count("id"), empty=Count("id", filter=empty))
    return result["empty"], result["total"]


def duplicate_counts(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(events beyond the first per (session, type, product, timestamp), total) in the window.

    Different event_ids with the same content key are the same action sent twice by a client
    that did not reuse its event_id (event_id repeats are deduped at ingestion already).
    """
    rows = Event.objects.filter(timestamp__gte=start, timestamp__lt=end)
    total = rows.count()
    if not total:
        return 0, 0
    distinct = rows.values("session_id", "event_type", "product_id", "timestamp").distinct()
    return total - distinct.count(), total


def category_counts(field: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    rows = Event.objects.filter(timestamp__gte=start, timestamp__lt=end)
    return {
        str(value): n for value, n in rows.values_list(field).annotate(n=Count("id")).order_by()
    }


def purchases_without_checkout(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(purchases whose session has no checkout_start, purchases) in the window."""
    checkout = Event.objects.filter(session_id=OuterRef("session_id"), event_type="checkout_start")
    purchases = Event.objects.filter(
        event_type="purchase", timestamp__gte=start, timestamp__lt=end
    ).annotate(has_checkout=Exists(checkout))
    result = purchases.aggregate(
        total=Count("id"), orphans=Count("id", filter=Q(has_checkout=False))
    )
    return result["orphans"], result["total"]


def validation_counts(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(accepted, still quarantined) events received in the window."""
    accepted = Event.objects.filter(received_at__gte=start, received_at__lt=end).count()
    rejected = RejectedEvent.objects.filter(
        status=QUARANTINED, received_at__gte=start, received_at__lt=end
    ).count()
    return accepted, rejected


def rule_counts_since(since: dt.datetime) -> list[dict[str, Any]]:
    """Per stored rule: events checked, rejected and warned since the start of since's hour."""
    rows = (
        RuleCounter.objects.filter(bucket__gte=_bucket_start(since, "hour"), rule_id__isnull=False)
        .values("rule_id")
        .annotate(evaluated=Sum("evaluated"), rejected=Sum("rejected"), warned=Sum("warned"))
        .order_by("rule_id")
    )
    return list(rows)


# --- stored-event lookups for batch rules -------------------------------------------------


class StoredEventFacts:
    """`quality.engine.rules.StoredFacts` over the events table: one query per call."""

    def sessions_existing(self, session_ids: set[str], since: dt.datetime) -> set[str]:
        if not session_ids:
            return set()
        rows = Event.objects.filter(session_id__in=session_ids, timestamp__gte=since)
        return set(rows.values_list("session_id", flat=True).distinct().order_by())

    def values_on_days(
        self,
        field: str,
        values: set[str],
        event_types: frozenset[str],
        start: dt.datetime,
        end: dt.datetime,
    ) -> set[tuple[str, dt.date, str]]:
        if not values:
            return set()
        rows = Event.objects.filter(
            **{f"{field}__in": values}, timestamp__gte=start, timestamp__lt=end
        )
        if event_types:
            rows = rows.filter(event_type__in=event_types)
        return {
            (value, timestamp.astimezone(dt.UTC).date(), str(event_id))
            for value, timestamp, event_id in rows.values_list(field, "timestamp", "event_id")
        }


def events_of_sessions(
    session_ids: set[str], since: dt.datetime
) -> list[tuple[str, dt.datetime, str]]:
    """(session_id, timestamp, event_id) of stored events of these sessions since a time."""
    rows = Event.objects.filter(session_id__in=session_ids, timestamp__gte=since)
    return [
        (s, ts, str(eid)) for s, ts, eid in rows.values_list("session_id", "timestamp", "event_id")
    ]


def events_with_values(
    field: str, values: set[str], event_types: frozenset[str], since: dt.datetime
) -> list[tuple[str, dt.datetime, str]]:
    """(value, timestamp, event_id) of stored events (of these types) with one of the values."""
    rows = Event.objects.filter(**{f"{field}__in": values}, timestamp__gte=since)
    if event_types:
        rows = rows.filter(event_type__in=event_types)
    return [(v, ts, str(eid)) for v, ts, eid in rows.values_list(field, "timestamp", "event_id")]


def events_sample(limit: int) -> list[dict[str, Any]]:
    """The newest `limit` stored events as validated-row dicts (for trying a rule)."""
    fields = [f.name for f in Event._meta.concrete_fields if f.name not in ("id", "warnings")]
    return list(Event.objects.order_by("-received_at", "-id").values(*fields)[:limit])


def _rejected_ids_matching_reason_sql(key: str, value: str) -> tuple[str, list[Any]]:
    table = RejectedEvent._meta.db_table
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT t.id FROM {table} t, jsonb_array_elements(t.reasons) AS reason "  # noqa: S608
            f"WHERE reason->>'{key}' = %s"
        )
    else:
        sql = (
            f"SELECT t.id FROM {table} t, json_each(t.reasons) AS reason "  # noqa: S608
            f"WHERE json_extract(reason.value, '$.{key}') = %s"
        )
    return sql, [value]


def rejected_ids_failing_rule_sql(rule_name: str) -> tuple[str, list[Any]]:
    """SQL (and params) selecting ids of rejected events with a reason from this rule name."""
    return _rejected_ids_matching_reason_sql("rule", rule_name)


def rejected_ids_failing_field_sql(field_name: str) -> tuple[str, list[Any]]:
    return _rejected_ids_matching_reason_sql("field", field_name)
