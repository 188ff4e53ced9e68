# The reference is SQL built from fixed column names; values are bound parameters.
# ruff: noqa: S608
"""The raw-SQL reference for every dashboard number, and the generated shop it runs on.

Independent of reports/: plain SQL over events_event and events_rejectedevent, written from
the definitions the dashboard selectors document (reports/selectors/), compared with
`reports.selectors.pages` by `assert_dashboard_matches_raw`. Used by
tests/data_quality/test_dashboard_numbers.py and test_dashboard_tail.py.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from events.models import Event, RejectedEvent
from reports.filters import DashboardFilters, filters_from_query
from reports.selectors import pages

NOW = dt.datetime(2026, 3, 10, 14, 37, tzinfo=dt.UTC)
# Events with the person each counts as (ADR 0015): the id its own id (user id, else anonymous
# id) is linked to, else its own id. Distinct users are distinct people.
EVENTS_WITH_PEOPLE = (
    "(SELECT e.*, COALESCE(l.user_id, NULLIF(e.user_id, ''), e.anonymous_id) AS person "
    "FROM events_event e LEFT JOIN events_personlink l "
    "ON l.linked_id = COALESCE(NULLIF(e.user_id, ''), e.anonymous_id)) AS events_event"
)
STEPS = ("page_view", "product_view", "add_to_cart", "checkout_start", "purchase")
DEVICES = ("desktop", "mobile", "tablet")
COUNTRIES = ("US", "DE", "FR", "BR")
CATEGORIES = ("books", "games", "")
ECOMMERCE_TYPES = (*STEPS, "search", "remove_from_cart")


def _make_event(
    rng: random.Random,
    session: str,
    user: str,
    ts: dt.datetime,
    event_type: str,
    device: str,
    country: str,
    received_at: dt.datetime,
) -> Event:
    product = f"sku_{rng.randint(1, 12)}" if event_type in STEPS[1:] else ""
    if event_type == "purchase" and rng.random() < 0.2:
        product = ""  # a purchase without a product line: counts for revenue, not top products
    return Event(
        event_id=uuid.uuid4(),
        event_type=event_type,
        timestamp=ts,
        client_timestamp=ts,
        received_at=received_at,
        user_id=user,
        session_id=session,
        device_type=device if rng.random() > 0.1 else rng.choice(DEVICES),
        country=country,
        product_id=product,
        category=rng.choice(CATEGORIES) if product or event_type == "purchase" else "",
        revenue=Decimal(rng.randint(500, 30000)) / 100 if event_type == "purchase" else None,
        currency="USD" if event_type == "purchase" else "",
        order_id=f"o_{uuid.uuid4().hex[:8]}" if event_type == "purchase" else "",
        warnings=[{"field": "page_url", "rule": "x", "message": "w"}]
        if rng.random() < 0.04
        else [],
    )


def generate_events(seed: int = 7, sessions: int = 420) -> list[Event]:
    """Sessions over ~20 days with funnel progress, some late (received hours or days after
    their timestamp, so after newer events), some spanning midnight, some resent."""
    rng = random.Random(seed)
    events: list[Event] = []
    for index in range(sessions):
        user = f"user_{rng.randint(1, 160)}"
        device, country = rng.choice(DEVICES), rng.choice(COUNTRIES)
        start = NOW - dt.timedelta(minutes=rng.randint(0, 20 * 24 * 60))
        depth = rng.choice((1, 1, 2, 2, 3, 4, 5, 5))
        types = list(STEPS[:depth])
        if rng.random() < 0.3:
            types = types[1:] or types  # landed without a page_view
        types += rng.choice(([], ["search"], ["page_view", "remove_from_cart"]))
        ts = start
        for event_type in types:
            ts += dt.timedelta(seconds=rng.randint(5, 1800))  # may cross an hour or midnight
            lag = dt.timedelta(seconds=rng.randint(0, 30))
            if rng.random() < 0.08:
                lag = dt.timedelta(hours=rng.randint(2, 72))  # late: arrives long after
            received = min(ts + lag, NOW - dt.timedelta(seconds=1))
            events.append(
                _make_event(rng, f"s_{index}", user, ts, event_type, device, country, received)
            )
    return events


def load(events: list[Event], seed: int = 7) -> None:
    rng = random.Random(seed)
    Event.objects.bulk_create(events, batch_size=1000)
    # Duplicates: clients resend events; the unique event_id keeps one copy.
    resent = [
        Event(
            **{
                f.attname: getattr(e, f.attname)
                for f in Event._meta.concrete_fields
                if f.attname != "id"
            }
        )
        for e in rng.sample(events, 40)
    ]
    Event.objects.bulk_create(resent, ignore_conflicts=True)
    for index in range(30):
        RejectedEvent.objects.create(
            event_type=rng.choice(("purchase", "page_view", "add_to_cart", "")),
            raw_payload="{}",
            dedupe_key=f"test:{seed}:{index}",
            reasons=[{"field": "country", "rule": "required", "message": "Field required"}],
            received_at=NOW - dt.timedelta(hours=rng.randint(0, 24 * 20)),
            status="replayed" if index % 7 == 0 else "quarantined",
        )


# ---------------------------------------------------------------------------------------------
# The reference: plain SQL over raw events.


def _rows(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _where(f: DashboardFilters, prefix: str = "") -> tuple[str, list[Any]]:
    clauses = [f"{prefix}timestamp >= %s", f"{prefix}timestamp < %s"]
    params: list[Any] = [f.start, f.end]
    if f.device:
        clauses.append(f"{prefix}device_type = %s")
        params.append(f.device)
    if f.country:
        clauses.append(f"{prefix}country = %s")
        params.append(f.country)
    return " AND ".join(clauses), params


STEP_SQL = (
    "CASE event_type WHEN 'page_view' THEN 1 WHEN 'product_view' THEN 2 WHEN 'add_to_cart' "
    "THEN 3 WHEN 'checkout_start' THEN 4 WHEN 'purchase' THEN 5 ELSE 0 END"
)
SESSIONS_SQL = f"""
    WITH firsts AS (
        SELECT DISTINCT ON (session_id) session_id, timestamp, device_type, country
        FROM events_event ORDER BY session_id, timestamp, id
    ), steps AS (SELECT session_id, MAX({STEP_SQL}) AS step FROM events_event GROUP BY session_id)
    SELECT f.session_id, f.device_type, f.country, s.step
    FROM firsts f JOIN steps s USING (session_id) WHERE {{where}}
"""


def ref_sessions(f: DashboardFilters) -> list[tuple[str, str, str, int]]:
    where, params = _where(f, "f.")
    return _rows(SESSIONS_SQL.format(where=where), params)


def ref_funnel_counts(sessions: list[tuple]) -> list[int]:
    return [sum(1 for s in sessions if s[3] >= k) for k in range(1, 6)]


def ref_totals(f: DashboardFilters) -> dict[str, Any]:
    where, params = _where(f)
    events, purchases, revenue, warned, users = _rows(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE event_type = 'purchase'), "
        "COALESCE(SUM(revenue) FILTER (WHERE event_type = 'purchase'), 0), "
        "COUNT(*) FILTER (WHERE warnings <> '[]'::jsonb), COUNT(DISTINCT person) "
        f"FROM {EVENTS_WITH_PEOPLE} WHERE {where}",
        params,
    )[0]
    sessions = ref_sessions(f)
    converted = sum(1 for s in sessions if s[3] == 5)
    return {
        "events": events,
        "sessions": len(sessions),
        "users": users,
        "conversion_rate": round(converted / len(sessions), 6) if sessions else 0.0,
        "revenue": round(float(revenue), 2),
        "average_order_value": round(float(revenue / purchases), 2) if purchases else 0.0,
        "warned": warned,
        "purchases": purchases,
    }


def ref_quarantined(f: DashboardFilters, types: tuple[str, ...] | None = None) -> int:
    sql = (
        "SELECT COUNT(*) FROM events_rejectedevent WHERE status = 'quarantined' "
        "AND received_at >= %s AND received_at < %s"
    )
    params: list[Any] = [f.start, f.end]
    if types:
        sql += " AND event_type = ANY(%s)"
        params.append(list(types))
    return _rows(sql, params)[0][0]


def ref_series(f: DashboardFilters) -> tuple[list[str], list[int], list[float]]:
    where, params = _where(f, "e.")
    rows = _rows(
        "SELECT b, COUNT(e.id), "
        "COALESCE(SUM(e.revenue) FILTER (WHERE e.event_type = 'purchase'), 0) "
        "FROM generate_series(%s::timestamptz, %s::timestamptz - %s::interval, %s::interval) b "
        "LEFT JOIN events_event e ON e.timestamp >= b AND e.timestamp < b + %s::interval "
        f"AND {where} "
        "GROUP BY b ORDER BY b",
        [f.start, f.end, f.bucket_size, f.bucket_size, f.bucket_size, *params],
    )
    return (
        [b.astimezone(dt.UTC).isoformat() for b, _, _ in rows],
        [n for _, n, _ in rows],
        [round(float(r), 2) for _, _, r in rows],
    )


def ref_group(f: DashboardFilters, field: str) -> list[dict[str, Any]]:
    where, params = _where(f)
    rows = _rows(
        f"SELECT {field}, COUNT(*), COUNT(DISTINCT person) FROM {EVENTS_WITH_PEOPLE} "
        f"WHERE {where} "
        f"GROUP BY {field} ORDER BY COUNT(*) DESC, {field}",
        params,
    )
    return [{field: key, "events": n, "users": u} for key, n, u in rows]


def ref_top(f: DashboardFilters, event_type: str, limit: int = 10) -> list[dict[str, Any]]:
    where, params = _where(f)
    rows = _rows(
        "SELECT product_id, MAX(category), COUNT(*), COALESCE(SUM(revenue), 0) FROM events_event "
        f"WHERE {where} AND event_type = %s AND product_id <> '' "
        "GROUP BY product_id ORDER BY COUNT(*) DESC, product_id LIMIT %s",
        [*params, event_type, limit],
    )
    return [
        {"product_id": p, "category": c, "count": n, "revenue": round(float(r), 2)}
        for p, c, n, r in rows
    ]


def ref_new_vs_returning(f: DashboardFilters) -> dict[str, int]:
    where, params = _where(f)
    new, total = _rows(
        f"WITH active AS (SELECT DISTINCT person FROM {EVENTS_WITH_PEOPLE} WHERE {where}), "
        f"firsts AS (SELECT person, MIN(timestamp) AS first FROM {EVENTS_WITH_PEOPLE} "
        "GROUP BY person) "
        "SELECT COUNT(*) FILTER (WHERE first >= %s), COUNT(*) "
        "FROM active JOIN firsts USING (person)",
        [*params, f.start],
    )[0]
    return {"new": new, "returning": total - new}


def ref_custom_events(f: DashboardFilters) -> list[dict[str, Any]]:
    """Per name outside the seven e-commerce types: events, distinct people, events per bucket."""
    where, params = _where(f)
    custom = "event_type NOT IN ('" + "', '".join(ECOMMERCE_TYPES) + "')"
    rows = _rows(
        f"SELECT event_type, COUNT(*), COUNT(DISTINCT person) FROM {EVENTS_WITH_PEOPLE} "
        f"WHERE {where} AND {custom} GROUP BY event_type ORDER BY COUNT(*) DESC, event_type",
        params,
    )
    result = []
    for name, events, users in rows:
        trend = _rows(
            "SELECT COUNT(e.id) FROM generate_series(%s::timestamptz, "
            "%s::timestamptz - %s::interval, %s::interval) b LEFT JOIN events_event e "
            "ON e.timestamp >= b AND e.timestamp < b + %s::interval AND e.event_type = %s "
            f"AND {_where(f, 'e.')[0]} GROUP BY b ORDER BY b",
            [f.start, f.end, f.bucket_size, f.bucket_size, f.bucket_size, name, *params],
        )
        result.append({"event_type": name, "events": events, "users": users, "trend": trend})
    return [{**row, "trend": [n for (n,) in row["trend"]]} for row in result]


# ---------------------------------------------------------------------------------------------
# Comparison of every number.


def assert_dashboard_matches_raw(f: DashboardFilters) -> None:
    overview = pages.overview(f)
    for label, period in (("value", f), ("previous", f.previous())):
        totals = ref_totals(period)
        for name, kpi in overview["kpis"].items():
            assert kpi[label] == pytest.approx(totals[name]), (name, label, f)
    labels, events, revenue = ref_series(f)
    assert overview["series"]["labels"] == labels
    assert overview["series"]["events"] == events
    assert overview["series"]["revenue"] == pytest.approx(revenue)
    where, params = _where(f)
    mix = _rows(
        f"SELECT event_type, COUNT(*) FROM events_event WHERE {where} "
        "GROUP BY event_type ORDER BY COUNT(*) DESC, event_type",
        params,
    )
    assert [(m["event_type"], m["count"]) for m in overview["event_mix"]] == mix
    shown = [
        {k: v for k, v in row.items() if k != "sparkline"} for row in overview["custom_events"]
    ]
    assert shown == ref_custom_events(f)
    totals = ref_totals(f)
    quarantined = ref_quarantined(f)
    assert overview["quality"]["quarantined"] == quarantined
    assert overview["quality"]["warned"] == totals["warned"]
    assert overview["quality"]["total"] == totals["events"] + quarantined

    sessions = ref_sessions(f)
    funnel = pages.funnel(f, "country")
    assert [s["sessions"] for s in funnel["steps"]] == ref_funnel_counts(sessions)
    splits = {split["key"]: [s["sessions"] for s in split["steps"]] for split in funnel["splits"]}
    expected = {
        country: ref_funnel_counts([s for s in sessions if s[2] == country])
        for country in {s[2] for s in sessions}
    }
    assert splits == expected
    by_device = pages.funnel(f, "device")
    splits = {s["key"]: [x["sessions"] for x in s["steps"]] for s in by_device["splits"]}
    assert splits == {
        device: ref_funnel_counts([s for s in sessions if s[1] == device])
        for device in {s[1] for s in sessions}
    }

    products = pages.products(f)
    for key, event_type in (("top_viewed", "product_view"), ("top_added", "add_to_cart")):
        assert products[key] == [
            {k: v for k, v in row.items() if k != "revenue"} for row in ref_top(f, event_type)
        ]
    assert products["top_purchased"] == ref_top(f, "purchase")
    carts = sum(1 for s in sessions if s[3] >= 3)
    purchased = sum(1 for s in sessions if s[3] == 5)
    assert products["cart_abandonment"]["carts"] == carts
    assert products["cart_abandonment"]["purchased"] == purchased
    categories = _rows(
        "SELECT category, SUM(revenue) FROM events_event WHERE "
        f"{where} AND event_type = 'purchase' "
        "GROUP BY category ORDER BY SUM(revenue) DESC, category",
        params,
    )
    assert [(c["category"], c["revenue"]) for c in products["revenue_by_category"]] == [
        (c, round(float(r), 2)) for c, r in categories
    ]
    assert products["quality"]["quarantined"] == ref_quarantined(
        f, ("product_view", "add_to_cart", "purchase")
    )

    audience = pages.audience(f)
    assert audience["devices"] == ref_group(f, "device_type")
    assert audience["countries"] == ref_group(f, "country")
    assert audience["new_vs_returning"] == ref_new_vs_returning(f)


def filter_sets() -> list[DashboardFilters]:
    queries = [
        {},
        {"preset": "24h"},
        {"preset": "30d"},
        {"preset": "7d", "device": "mobile"},
        {"preset": "30d", "country": "DE", "device": "desktop"},
        {"preset": "90d", "device": "mobile"},  # edge days, 12 whole weeks, edge days
        {"start": "2026-03-01", "end": "2026-03-01"},  # one day, hourly buckets
        # days, one whole week, days (products and users read the week from weekly rollups)
        {"start": "2026-02-18", "end": "2026-03-07"},
        {"start": "2026-02-20", "end": "2026-03-05", "country": "BR"},
    ]
    return [filters_from_query(query, now=NOW) for query in queries]
