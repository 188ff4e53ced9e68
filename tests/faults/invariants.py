# Fixed table names; values are bound parameters.
# ruff: noqa: S608
"""What every fault scenario must end with, read from the database directly (not through the
proxies): nothing acknowledged lost, nothing stored twice, no quarantine row per resend, and
every dashboard number equal to raw SQL once the folds caught up.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from events.facade import EVENTS_TABLE, REJECTED_EVENTS_TABLE
from reports.filters import filters_from_query
from reports.models import EventMetricDaily
from tests.dashboard_reference import assert_dashboard_matches_raw
from tests.faults.driver import Record

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Tally:
    acknowledged: int
    stored: int
    lost: int
    duplicated: int
    unexpected: int  # stored although never sent
    quarantine_repeats: int  # extra quarantine rows of one bad event (resends stored again)


def _rows(sql: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def tally(record: Record) -> Tally:
    stored_rows = _rows(f"SELECT event_id::text FROM {EVENTS_TABLE}")
    stored = {row[0] for row in stored_rows}
    repeats = 0
    per_bad: dict[str, int] = {}
    for (payload,) in _rows(f"SELECT raw_payload::text FROM {REJECTED_EVENTS_TABLE}"):
        for event_id in set(UUID.findall(payload)) & record.bad_sent:
            per_bad[event_id] = per_bad.get(event_id, 0) + 1
    repeats = sum(n - 1 for n in per_bad.values())
    return Tally(
        acknowledged=len(record.acked),
        stored=len(stored),
        lost=len(record.acked - stored),
        duplicated=len(stored_rows) - len(stored),
        unexpected=len(stored - record.sent),
        quarantine_repeats=repeats,
    )


def wait_folded(timeout: float = 60.0) -> None:
    """Until the daily rollups hold every stored event (traffic has stopped). Counted from the
    rollup table, not the watermark, so it holds whatever the fold order is."""
    deadline = time.monotonic() + timeout
    stored = folded = 0
    while time.monotonic() < deadline:
        stored = _rows(f"SELECT COUNT(*) FROM {EVENTS_TABLE}")[0][0]
        folded = EventMetricDaily.objects.aggregate(n=Sum("events"))["n"] or 0
        if folded == stored:
            return
        time.sleep(0.5)
    raise AssertionError(f"the rollups hold {folded} of {stored} stored events after {timeout} s")


def assert_dashboards_match_raw() -> None:
    cache.clear()
    now = timezone.now() + dt.timedelta(minutes=1)
    for query in ({"preset": "24h"}, {"preset": "7d", "device": "mobile"}):
        assert_dashboard_matches_raw(filters_from_query(query, now=now))


def assert_no_loss(record: Record, *, quarantine: bool = False) -> Tally:
    """The acknowledged-events invariants; `quarantine` also asks one row per bad event."""
    counts = tally(record)
    assert counts.acknowledged > 0, "the driver got nothing acknowledged"
    assert counts.lost == 0, f"acknowledged events lost: {counts}"
    assert counts.duplicated == 0, f"events stored twice: {counts}"
    assert counts.unexpected == 0, f"events stored that were never sent: {counts}"
    assert not record.server_errors, f"5xx other than 503: {record.server_errors[:5]}"
    assert record.rejected_good == 0, f"{record.rejected_good} valid events rejected"
    assert record.hangs == 0, f"{record.hangs} requests not answered in time (hangs)"
    if quarantine:
        assert counts.quarantine_repeats == 0, f"bad events quarantined again on resend: {counts}"
    return counts
