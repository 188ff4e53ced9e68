"""Reads of the quarantine: how many rejected events wait there, by event type and by failed
rule (intake rollup hours plus raw rows, ADR 0005), and SQL selecting rejected events by the
rule or field named in their reasons (the admin's quarantine filters)."""

# SQL is built from the events app's table name and fixed JSON keys; values are bound params.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.db import connection
from django.db.models import Count, QuerySet, Sum

from analytics_site.sql import is_postgres
from events.facade import REJECTED_EVENTS_TABLE, REJECTED_STATUS_QUARANTINED, rejected_events_all
from events.receive_order import START, ReceivePosition, after_sql
from quality.models import IntakeHour, IntakeRuleHour
from quality.selectors.intake import in_span, intake_marks, intake_snapshot, intake_split


def _reason_rule_counts(
    start: dt.datetime | None,
    end: dt.datetime | None,
    after: ReceivePosition = START,
) -> dict[str, int]:
    """Count quarantined events per failed rule name, in SQL (reasons is a JSON list); only
    rows after `after` in receive order."""
    where, params = ["t.status = %s"], [REJECTED_STATUS_QUARANTINED]
    if start is not None:
        where.append("t.received_at >= %s")
        params.append(start)
    if end is not None:
        where.append("t.received_at < %s")
        params.append(end)
    after_where, after_params = after_sql(after, "t.")
    where.append(after_where)
    params += after_params
    if is_postgres():
        sql = (
            "SELECT reason->>'rule', COUNT(DISTINCT t.id) "
            f"FROM {REJECTED_EVENTS_TABLE} t, jsonb_array_elements(t.reasons) AS reason "
            f"WHERE {' AND '.join(where)} GROUP BY 1"
        )
    else:
        sql = (
            "SELECT json_extract(reason.value, '$.rule'), COUNT(DISTINCT t.id) "
            f"FROM {REJECTED_EVENTS_TABLE} t, json_each(t.reasons) AS reason "
            f"WHERE {' AND '.join(where)} GROUP BY 1"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {str(name): count for name, count in cursor.fetchall() if name is not None}


def _quarantined_by_type_raw(rows: QuerySet) -> Counter[str]:
    found = (
        rows.filter(status=REJECTED_STATUS_QUARANTINED)
        .values_list("event_type")
        .annotate(n=Count("id"))
    )
    return Counter({event_type: n for event_type, n in found.order_by()})


def quarantined_by_type(
    start: dt.datetime | None = None, end: dt.datetime | None = None
) -> Counter[str]:
    """Events still in quarantine received in [start, end), by the rejected payload's event
    type ("" when it had none): intake rollup hours plus the raw tail after their watermark,
    and raw rows for partial hours at the edges (ADR 0005). The dashboards' quality notes read
    this: a 90-day period is ~2,000 hour rows, whatever the number of rejected events."""
    by_type: Counter[str] = Counter()
    split = intake_split(start, end)
    with intake_snapshot():
        for span in split.edges:
            by_type.update(_quarantined_by_type_raw(in_span(rejected_events_all(), span)))
        if split.hours is not None:
            marks = intake_marks()
            rolled = (
                in_span(IntakeHour.objects.all(), split.hours, "bucket")
                .values_list("event_type")
                .annotate(n=Sum("quarantined"))
                .order_by()
            )
            by_type.update(dict(rolled))
            for rejected in marks.rejected_after():
                by_type.update(_quarantined_by_type_raw(in_span(rejected, split.hours)))
    return by_type


def _by_count(counts: Counter[str]) -> dict[str, int]:
    """Largest first, then by name; zero counts left out."""
    return {name: n for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n}


def quarantine_summary(
    start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[str, Any]:
    """How many events sit in quarantine, by event type and by failed rule name.

    Intake rollup hours plus the raw tail after their watermark, and raw rows for partial
    hours at the edges (ADR 0005)."""
    by_rule: Counter[str] = Counter()
    split = intake_split(start, end)
    with intake_snapshot():
        by_type = quarantined_by_type(start, end)
        for span in split.edges:
            by_rule.update(_reason_rule_counts(*span))
        if split.hours is not None:
            marks = intake_marks()
            rolled = (
                in_span(IntakeRuleHour.objects.all(), split.hours, "bucket")
                .values_list("rule")
                .annotate(n=Sum("quarantined"))
                .order_by()
            )
            by_rule.update(dict(rolled))
            by_rule.update(_reason_rule_counts(*split.hours, after=marks.rejected))
    named: Counter[str] = Counter()
    for event_type, n in by_type.items():
        named[event_type or "unknown"] += n
    by_type_sorted = _by_count(named)
    return {
        "quarantined": sum(by_type_sorted.values()),
        "by_event_type": by_type_sorted,
        "by_rule": _by_count(by_rule),
    }


def _rejected_ids_matching_reason_sql(key: str, value: str) -> tuple[str, list[Any]]:
    if is_postgres():
        sql = (
            f"SELECT t.id FROM {REJECTED_EVENTS_TABLE} t, "
            f"jsonb_array_elements(t.reasons) AS reason WHERE reason->>'{key}' = %s"
        )
    else:
        sql = (
            f"SELECT t.id FROM {REJECTED_EVENTS_TABLE} t, json_each(t.reasons) AS reason "
            f"WHERE json_extract(reason.value, '$.{key}') = %s"
        )
    return sql, [value]


def rejected_ids_failing_rule_sql(rule_name: str) -> tuple[str, list[Any]]:
    """SQL (and params) selecting ids of rejected events with a reason from this rule name."""
    return _rejected_ids_matching_reason_sql("rule", rule_name)


def rejected_ids_failing_field_sql(field_name: str) -> tuple[str, list[Any]]:
    """SQL (and params) selecting ids of rejected events with a reason about this field."""
    return _rejected_ids_matching_reason_sql("field", field_name)
