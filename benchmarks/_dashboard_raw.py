"""The dashboard benchmark's baseline (benchmarks/dashboard.py): the raw GROUP BY queries
over events that a dashboard without rollups would run, to compare the rollup reads with."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection

STEP_SQL = (
    "CASE event_type WHEN 'page_view' THEN 1 WHEN 'product_view' THEN 2 WHEN 'add_to_cart' "
    "THEN 3 WHEN 'checkout_start' THEN 4 WHEN 'purchase' THEN 5 ELSE 0 END"
)


def raw_queries(f) -> dict[str, Callable[[], object]]:
    def run(sql: str, params: list) -> list:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def where(period) -> tuple[str, list]:
        clauses, params = ["timestamp >= %s", "timestamp < %s"], [period.start, period.end]
        if period.device:
            clauses.append("device_type = %s")
            params.append(period.device)
        if period.country:
            clauses.append("country = %s")
            params.append(period.country)
        return " AND ".join(clauses), params

    def totals(period) -> None:
        w, p = where(period)
        run(
            "SELECT date_trunc(%s, timestamp, 'UTC'), event_type, COUNT(*), SUM(revenue), "
            f"COUNT(*) FILTER (WHERE warnings <> '[]'::jsonb) FROM events_event WHERE {w} "
            "GROUP BY 1, 2",
            [period.bucket, *p],
        )
        run(f"SELECT COUNT(DISTINCT user_id) FROM events_event WHERE {w}", p)

    def sessions(period) -> None:
        w, p = where(period)
        run(
            "WITH firsts AS (SELECT DISTINCT ON (session_id) session_id, timestamp, device_type, "
            "country FROM events_event ORDER BY session_id, timestamp, id), steps AS ("
            f"SELECT session_id, MAX({STEP_SQL}) AS step FROM events_event GROUP BY session_id) "
            "SELECT step, COUNT(*) FROM firsts JOIN steps USING (session_id) "
            f"WHERE {w} GROUP BY step",
            p,
        )

    def products() -> None:
        w, p = where(f)
        run(
            "SELECT product_id, event_type, COUNT(*), SUM(revenue) FROM events_event "
            f"WHERE {w} AND event_type IN ('product_view','add_to_cart','purchase') GROUP BY 1, 2",
            p,
        )
        run(
            "SELECT category, SUM(revenue) FROM events_event "
            f"WHERE {w} AND event_type = 'purchase' GROUP BY 1",
            p,
        )
        sessions(f)

    def audience() -> None:
        w, p = where(f)
        for field in ("device_type", "country"):
            run(
                f"SELECT {field}, COUNT(*), COUNT(DISTINCT user_id) FROM events_event "
                f"WHERE {w} GROUP BY 1",
                p,
            )
        run(
            f"WITH active AS (SELECT DISTINCT user_id FROM events_event WHERE {w}), firsts AS ("
            "SELECT user_id, MIN(timestamp) AS first FROM events_event GROUP BY user_id) "
            "SELECT COUNT(*) FILTER (WHERE first >= %s), COUNT(*) FROM active "
            "JOIN firsts USING (user_id)",
            [*p, f.start],
        )

    return {
        "overview": lambda: (totals(f), totals(f.previous()), sessions(f), sessions(f.previous())),
        "funnel": lambda: sessions(f),
        "products": products,
        "audience": audience,
    }
