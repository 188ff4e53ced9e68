# SQL built from our own table names; values are bound parameters.
# ruff: noqa: S608
"""GET /events/stats answers from the rollups plus the raw tail (ADR 0011), with the numbers of
GROUP BYs over every stored event, in every rollup state; and the raw-tail queries behind the
dashboards use an index even when the planner's statistics predate a bulk load."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection

from events.facade import EVENTS_TABLE
from reports.selectors.tail import read_snapshot, tail_where
from reports.services.rollups import rollups_advance
from tests.dashboard_reference import NOW, generate_events, load

# A sequential scan's estimated cost at most this: two pages (seq_page_cost 1 each) and their
# few rows; the bulk load below fills dozens of pages.
SMALL_PARTITION_COST = 2.5


def _raw_counts(field: str) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {field}, COUNT(*) FROM {EVENTS_TABLE} GROUP BY 1")
        return dict(cursor.fetchall())


@pytest.mark.parametrize("fold_until", [None, NOW - dt.timedelta(days=4), NOW])
def test_stats_equal_raw_group_bys_in_every_rollup_state(
    require_postgres, keyed_client, fold_until
):
    """Nothing folded (all tail), partly folded, all folded: the same counts as raw SQL."""
    load(generate_events(sessions=120))
    if fold_until is not None:
        rollups_advance(now=fold_until + dt.timedelta(minutes=5), max_seconds=60)
    body = keyed_client.get("/events/stats").json()
    assert body["events_by_type"] == _raw_counts("event_type")
    assert body["events_by_device"] == _raw_counts("device_type")
    assert body["events_by_country"] == _raw_counts("country")
    assert body["total_events"] == sum(_raw_counts("event_type").values())
    counts = list(body["events_by_type"].values())
    assert counts == sorted(counts, reverse=True)


def test_tail_queries_use_an_index_with_statistics_from_before_a_bulk_load(require_postgres, db):
    """Folded, analyzed, then a bulk load the planner has not seen: the tail's size and rows
    are still read from the (txid, id) index, never by scanning events_event."""
    load(generate_events(sessions=60))
    rollups_advance(now=NOW + dt.timedelta(minutes=5), max_seconds=60)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {EVENTS_TABLE}")
    load(generate_events(seed=8, sessions=600), seed=8)  # not analyzed
    with read_snapshot(), connection.cursor() as cursor:
        where, params = tail_where()
        for sql in (
            f"SELECT COUNT(*), MAX(id) FROM (SELECT id FROM {EVENTS_TABLE} WHERE {where} "
            "LIMIT 50001) AS tail",
            f"SELECT event_type, COUNT(*) FROM {EVENTS_TABLE} WHERE {where} GROUP BY 1",
        ):
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            # The table is partitioned (ADR 0021): each partition's share of event_txid_idx is
            # named after the partition (…_txid_id_idx). A partition the bulk load did not
            # fill may be scanned: empty (cost 0), or the page or so of rows an earlier test
            # left and deleted in the current month's partition (cost 1).
            assert re.search(r"(using|Scan on) (event_txid_idx|\S+_txid_id_idx)", plan), plan
            seq_scan_costs = [
                float(match.group(1))
                for match in re.finditer(
                    rf"Seq Scan on {EVENTS_TABLE}\S* .*?cost=[\d.]+\.\.([\d.]+)", plan
                )
            ]
            assert all(cost <= SMALL_PARTITION_COST for cost in seq_scan_costs), plan
