"""Rollup logic against the real database: late events, duplicates, empty ranges, UTC bucket
boundaries, out-of-order sessions, idempotency, concurrent runs, the command and the task."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

from events.models import Event
from reports.filters import DashboardFilters, filters_from_query
from reports.models import (
    EventMetricDaily,
    EventMetricHourly,
    SessionMetricDaily,
    SessionRollup,
    UserFirstSeen,
)
from reports.models.grains import (
    ALL_MODELS,
    EVENT_METRIC,
    EVENT_TOTAL,
    FUNNEL_STEPS,
    GRAINS,
    PRODUCT_EVENT_TYPES,
    PRODUCT_METRIC,
    PRODUCT_WEEK_BY,
    SESSION_METRIC,
    SESSION_TOTAL,
)
from reports.selectors import pages
from reports.selectors.user_bitmaps import bitmap_load
from reports.selectors.watermark import watermark_get
from reports.services.rollups import rollups_advance, rollups_rebuild
from tests.factories import EventFactory

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)  # `now` for rollup runs: past the safety lag of all events


def advance(now: dt.datetime = LATER, **kwargs) -> int:
    return rollups_advance(now=now, **kwargs).events


def daily(day: dt.date, **filters) -> int:
    rows = EventMetricDaily.objects.filter(
        bucket=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), **filters
    )
    return sum(rows.values_list("events", flat=True))


def table_state() -> dict:
    """Every rollup row without its surrogate id; emptied session-metric rows (a session moved
    to another bucket) and emptied bitmaps (a user's first event moved) count as absent. User
    bitmaps are compared as sets of user ids: keys are
    assigned in fold order, so two fold histories may number the same users differently."""
    user_ids = dict(UserFirstSeen.objects.values_list("id", "user_id"))
    state = {}
    for model in ALL_MODELS:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows = []
        for row in model.objects.values(*fields):
            if row.get("sessions", 1) == 0:
                continue
            if "users" in row:
                row["users"] = sorted(user_ids[key] for key in bitmap_load(row["users"]))
                if not row["users"]:
                    continue
            rows.append(tuple(row.values()))
        state[model.__name__] = sorted(rows)
    return state


@pytest.fixture
def pg(require_postgres, db):
    return None


def test_empty_database_rolls_up_nothing_and_reads_zero(pg):
    """No events: no rollup rows, no watermark, zero KPIs and a zero-filled series."""
    assert advance() == 0
    assert watermark_get() == (None, 0)
    f = filters_from_query({}, now=NOW)
    overview = pages.overview(f)
    assert {name: kpi["value"] for name, kpi in overview["kpis"].items()} == {
        "events": 0,
        "sessions": 0,
        "users": 0,
        "conversion_rate": 0.0,
        "revenue": 0.0,
        "average_order_value": 0.0,
    }
    assert all(kpi["change_pct"] is None for kpi in overview["kpis"].values())
    assert overview["series"]["events"] == [0] * 7
    assert pages.funnel(f)["steps"][0]["step_conversion"] is None
    assert pages.products(f)["cart_abandonment"]["abandonment_rate"] is None


def test_late_event_updates_the_bucket_of_its_timestamp(pg):
    """An event received now with a timestamp three days old lands in that old day and hour."""
    EventFactory(timestamp=NOW - dt.timedelta(minutes=10), received_at=NOW)
    advance()
    old = NOW - dt.timedelta(days=3, minutes=25)
    EventFactory(timestamp=old, received_at=NOW + dt.timedelta(minutes=5), session_id="late")
    assert advance() == 1
    assert daily(old.date()) == 1
    assert EventMetricHourly.objects.get(bucket=old.replace(minute=0)).events == 1
    assert daily(NOW.date()) == 1
    assert SessionRollup.objects.get(session_id="late").started_at == old


def test_duplicate_event_ids_are_stored_and_counted_once(pg):
    """A resent event (same event_id) is not stored twice, so the rollup counts it once."""
    event = EventFactory(timestamp=NOW - dt.timedelta(hours=1), received_at=NOW)
    copy = Event(
        **{
            f.attname: getattr(event, f.attname)
            for f in Event._meta.concrete_fields
            if f.attname != "id"
        }
    )
    Event.objects.bulk_create([copy], ignore_conflicts=True)
    advance()
    assert daily(NOW.date()) == 1


def test_running_twice_changes_nothing(pg):
    """Idempotency: a second run (or a redelivered task) finds nothing pending."""
    for minute in range(30):
        EventFactory(timestamp=NOW - dt.timedelta(minutes=minute * 7), received_at=NOW)
    assert advance() == 30
    state = table_state()
    assert advance() == 0
    assert table_state() == state


def test_small_batches_equal_one_big_batch(pg):
    """Batch boundaries (in receive order) do not change any rollup row."""
    for index in range(40):
        EventFactory(
            timestamp=NOW - dt.timedelta(minutes=index * 37),
            received_at=NOW - dt.timedelta(seconds=index % 3),  # ties on received_at
            event_type=("page_view", "product_view", "add_to_cart", "purchase")[index % 4],
            session_id=f"s{index % 6}",
            revenue=Decimal("5.00") if index % 4 == 3 else None,
        )
    advance(batch=3)
    in_batches = table_state()
    rollups_rebuild(now=LATER)
    assert table_state() == in_batches


def test_utc_bucket_boundaries(pg):
    """Buckets are UTC: 23:59:59.999999 belongs to its day, midnight to the next; an event
    sent with a +02:00 offset is bucketed by its UTC instant; periods are [start, end)."""
    midnight = dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
    EventFactory(timestamp=midnight - dt.timedelta(microseconds=1), received_at=NOW)
    EventFactory(timestamp=midnight, received_at=NOW)
    berlin = dt.timezone(dt.timedelta(hours=2))
    EventFactory(timestamp=dt.datetime(2026, 3, 9, 1, 30, tzinfo=berlin), received_at=NOW)
    advance()
    assert daily(dt.date(2026, 3, 8)) == 2  # 23:59:59.999999 and 23:30 UTC
    assert daily(dt.date(2026, 3, 9)) == 1
    assert EventMetricHourly.objects.get(bucket=midnight - dt.timedelta(hours=1)).events == 2
    assert EventMetricHourly.objects.get(bucket=midnight).events == 1
    day = DashboardFilters(midnight, midnight + dt.timedelta(days=1), "custom")
    assert pages.overview(day)["kpis"]["events"]["value"] == 1
    assert pages.overview(day.previous())["kpis"]["events"]["value"] == 2


def test_session_merges_events_arriving_out_of_order(pg):
    """A session's events arriving in reverse order across runs: the session starts at its
    earliest event, takes that event's device and country, keeps its furthest step, and the
    session metrics hold it exactly once, in its start bucket."""
    session = "s-reverse"
    steps = ("page_view", "product_view", "add_to_cart", "checkout_start", "purchase")
    for offset, event_type in reversed(list(enumerate(steps))):
        EventFactory(
            session_id=session,
            user_id="u1",
            event_type=event_type,
            timestamp=NOW - dt.timedelta(days=1, hours=2) + dt.timedelta(hours=offset),
            received_at=NOW + dt.timedelta(minutes=10 - offset),
            device_type="mobile" if offset == 0 else "desktop",
            country="DE" if offset == 0 else "US",
            revenue=Decimal("12.50") if event_type == "purchase" else None,
        )
        advance(now=NOW + dt.timedelta(hours=2))
    row = SessionRollup.objects.get(session_id=session)
    assert row.started_at == NOW - dt.timedelta(days=1, hours=2)
    assert (row.device_type, row.country, row.reached_step) == ("mobile", "DE", 5)
    assert (row.events, row.revenue) == (5, Decimal("12.50"))
    metrics = {
        (m.bucket.date(), m.device_type, m.reached_step): m.sessions
        for m in SessionMetricDaily.objects.all()
        if m.sessions
    }
    assert metrics == {(row.started_at.date(), "mobile", 5): 1}
    assert UserFirstSeen.objects.get(user_id="u1").first_seen == row.started_at


def test_cached_rollup_reads_follow_every_fold_and_rebuild(pg):
    """Rollup reads are cached per (generation, watermark): a fold or a rebuild is seen by the
    next read, never a stale number."""
    for minutes in (5, 50, 500):
        EventFactory(timestamp=NOW - dt.timedelta(minutes=minutes), received_at=NOW)
    advance()
    f = filters_from_query({}, now=NOW)

    def events() -> int:
        return pages.overview(f)["kpis"]["events"]["value"]

    assert events() == 3
    EventFactory(timestamp=NOW - dt.timedelta(days=2), received_at=NOW + dt.timedelta(minutes=1))
    assert events() == 4  # from the raw tail
    advance(now=LATER)
    assert events() == 4  # now from the rollup, under a new watermark
    # damage the rollup an unfiltered view reads, at the same watermark
    EVENT_TOTAL["day"].objects.update(events=100)
    cache.clear()
    assert events() == 200  # two damaged day rows are read, and cached
    rollups_rebuild(since=dt.date(2026, 3, 1), now=LATER)
    assert events() == 4  # the rebuild's new generation retires that cache entry


def test_events_inside_the_safety_lag_stay_in_the_tail_but_are_counted(pg):
    """A just-received event is not folded yet (a concurrent ingestion transaction may still
    commit older received_at values), but the dashboard reads it from the raw tail."""
    now = timezone.now()
    EventFactory(timestamp=now - dt.timedelta(minutes=1), received_at=now)
    assert rollups_advance(now=now).events == 0
    f = filters_from_query({"preset": "24h"}, now=now)
    assert pages.overview(f)["kpis"]["events"]["value"] == 1


def test_rebuild_command_all_and_since(pg):
    """`rebuild_rollups` rebuilds everything or from a date, with the same result."""
    for day in range(5):
        EventFactory(
            timestamp=NOW - dt.timedelta(days=day), received_at=NOW - dt.timedelta(hours=1)
        )
    call_command("rebuild_rollups", "--no-safety-lag")
    state = table_state()
    EventMetricDaily.objects.update(events=999)  # corrupt, then repair from a date on
    call_command("rebuild_rollups", "--since", "2026-01-01", "--no-safety-lag")
    assert table_state() == state
    with pytest.raises(CommandError, match="--since"):
        call_command("rebuild_rollups", "--since", "last week")


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_never_count_an_event_twice(require_postgres):
    """Two rollup runs at once: the watermark row lock serializes them, each event once."""
    for index in range(200):
        EventFactory(
            timestamp=NOW - dt.timedelta(minutes=index),
            received_at=NOW - dt.timedelta(seconds=index),
        )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            rollups_advance(now=LATER, batch=25)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    total = sum(EventMetricDaily.objects.values_list("events", flat=True))
    assert total == 200
    assert connection.vendor == "postgresql"


@pytest.mark.celery_worker
def test_periodic_task_folds_events_on_a_real_worker(celery_worker, require_postgres):
    """The scheduled task runs on a worker process and moves the watermark."""
    from reports.tasks import rollups_advance_task

    received = timezone.now() - dt.timedelta(minutes=5)
    for index in range(12):
        EventFactory(timestamp=received - dt.timedelta(hours=index), received_at=received)
    result = rollups_advance_task.delay().get(timeout=60)
    assert result["events"] == 12
    assert watermark_get()[0] == received
    assert sum(EventMetricDaily.objects.values_list("events", flat=True)) == 12


def test_beat_schedule_runs_the_registered_task():
    """The beat entry names the task the worker registers, every ROLLUP_INTERVAL_SECONDS."""
    from django.conf import settings

    from analytics_site.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["reports-rollups-advance"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    assert entry["schedule"] == settings.ROLLUP_INTERVAL_SECONDS


def test_quality_blocks_count_quarantine_and_warnings_and_link_incidents(pg):
    """Each block says how much of its period was quarantined or warned, names the share of
    purchases held in quarantine, and lists the open incidents touching it (a revenue incident
    shows on overview and products, not on the funnel; a country incident on audience)."""
    from quality.models import QualityIncident
    from tests.factories import RejectedEventFactory

    for index in range(8):
        EventFactory(
            purchase=index < 4,
            timestamp=NOW - dt.timedelta(hours=index + 1),
            received_at=NOW - dt.timedelta(hours=index),
            warnings=[{"field": "page_url", "rule": "w", "message": "w"}] if index == 0 else [],
        )
    RejectedEventFactory(event_type="purchase", received_at=NOW - dt.timedelta(hours=2))
    RejectedEventFactory(event_type="purchase", received_at=NOW - dt.timedelta(days=30))  # outside
    RejectedEventFactory(event_type="page_view", received_at=NOW, status="replayed")  # not held
    advance()

    def incident(key: str, fields: list[str], event_types: list[str]) -> QualityIncident:
        return QualityIncident.objects.create(
            source_type="rule",
            source_key=key,
            title=key,
            opened_at=NOW,
            last_seen_at=NOW,
            fields=fields,
            event_types=event_types,
        )

    revenue = incident("rule:1", ["revenue"], ["purchase"])
    country = incident("rule:2", ["country"], [])
    f = filters_from_query({}, now=NOW)
    overview = pages.overview(f)["quality"]
    assert (overview["quarantined"], overview["warned"], overview["total"]) == (1, 1, 9)
    assert overview["quarantined_pct"] == pytest.approx(11.11)
    assert overview["note"].startswith("revenue excludes 20.0% of purchases")
    assert {i["id"] for i in overview["incidents"]} == {revenue.pk, country.pk}
    products = pages.products(f)["quality"]
    assert revenue.pk in {i["id"] for i in products["incidents"]}
    assert (products["quarantined"], products["total"]) == (1, 5)
    assert {i["id"] for i in pages.funnel(f)["quality"]["incidents"]} == {revenue.pk}
    assert country.pk in {i["id"] for i in pages.audience(f)["quality"]["incidents"]}


def test_live_counts_per_minute_zero_filled_and_lists_newest(pg):
    """Live: 30 one-minute buckets ending with the current minute (events just before the
    window are left out), zeros where nothing happened, and the 20 newest events first."""
    now = dt.datetime(2026, 3, 10, 12, 30, 40, tzinfo=dt.UTC)
    EventFactory(timestamp=dt.datetime(2026, 3, 10, 12, 30, 5, tzinfo=dt.UTC), received_at=now)
    for second in (0, 59):
        EventFactory(timestamp=dt.datetime(2026, 3, 10, 12, 1, second, tzinfo=dt.UTC))
    EventFactory(timestamp=dt.datetime(2026, 3, 10, 12, 0, 59, tzinfo=dt.UTC))  # outside
    for index in range(25):
        EventFactory(timestamp=now - dt.timedelta(hours=2, minutes=index))
    live = pages.live(now=now)
    minutes = live["per_minute"]
    assert len(minutes) == 30
    assert minutes[0] == {"minute": "2026-03-10T12:01:00+00:00", "count": 2}
    assert minutes[-1] == {"minute": "2026-03-10T12:30:00+00:00", "count": 1}
    assert sum(m["count"] for m in minutes) == 3
    assert len(live["newest"]) == 20
    stamps = [event["timestamp"] for event in live["newest"]]
    assert stamps == sorted(stamps, reverse=True)
    assert stamps[0] == dt.datetime(2026, 3, 10, 12, 30, 5, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_replayed_events_behind_the_watermark_are_folded_and_read():
    """A replay stores events at their original receipt time, which the watermark has passed:
    they are folded at once, so every number equals a rebuild from raw events."""
    from events.services import IngestSource, event_batch_ingest
    from quality.services import replay
    from quality.services.rules import rules_set_enabled
    from tests.factories import QualityRuleFactory, event_payload, purchase_payload

    rule = QualityRuleFactory(
        name="price-cap", kind="range", field="price", params={"max": 100}, event_types=["purchase"]
    )
    held = purchase_payload(price=150, quantity=1, revenue=150, user_id="buyer", session_id="s1")
    outcomes = event_batch_ingest([held, event_payload()], source=IngestSource(ip="10.0.0.1"))
    assert [o.status for o in outcomes] == ["rejected", "accepted"]
    event_batch_ingest([event_payload(session_id="s2")], source=IngestSource(ip="10.0.0.1"))
    later = timezone.now() + dt.timedelta(minutes=1)
    assert rollups_advance(now=later).events == 2  # watermark past the rejected one
    f = filters_from_query({"preset": "7d"})
    kpis = pages.overview(f)["kpis"]
    assert (kpis["events"]["value"], kpis["revenue"]["value"], kpis["users"]["value"]) == (2, 0, 1)

    rules_set_enabled([rule.pk], False)
    assert replay.quarantine_replay([outcomes[0].rejected_id]).accepted == 1
    kpis = pages.overview(f)["kpis"]
    assert (kpis["events"]["value"], kpis["revenue"]["value"], kpis["users"]["value"]) == (
        3,
        150,
        2,
    )
    assert rollups_advance(now=later).events == 0  # nothing left for the next advance
    assert_event_totals_exact()
    assert_session_totals_exact()
    folded = table_state()
    rollups_rebuild(now=later)
    assert table_state() == folded


def test_product_totals_equal_product_metrics_summed_over_device_and_country(pg):
    """Unfiltered product views read the totals table: it must hold exactly the per-device-and-
    country rows summed, and a filtered view must still see only its device."""
    from django.db.models import Sum

    from reports.models import ProductMetricDaily, ProductTotalDaily

    for index, (device, country) in enumerate(
        [("mobile", "US"), ("desktop", "US"), ("mobile", "DE"), ("tablet", "FR")] * 3
    ):
        EventFactory(
            event_type=("product_view", "add_to_cart", "purchase")[index % 3],
            product_id=f"sku_{index % 2}",
            category="books",
            revenue=Decimal("5.00") if index % 3 == 2 else None,
            device_type=device,
            country=country,
            timestamp=NOW - dt.timedelta(hours=index),
            received_at=NOW,
        )
    advance()
    keys = ("bucket", "product_id", "category", "event_type")
    summed = {
        tuple(row[k] for k in keys): (row["e"], row["r"])
        for row in ProductMetricDaily.objects.values(*keys).annotate(
            e=Sum("events"), r=Sum("revenue")
        )
    }
    totals = {
        tuple(row[k] for k in keys): (row["events"], row["revenue"])
        for row in ProductTotalDaily.objects.values(*keys, "events", "revenue")
    }
    assert totals == summed and sum(e for e, _ in totals.values()) == 12
    f = filters_from_query({"preset": "7d"}, now=NOW)
    everything = pages.products(f)
    mobile = pages.products(filters_from_query({"preset": "7d", "device": "mobile"}, now=NOW))
    assert everything != mobile
    assert sum(row["count"] for row in everything["top_viewed"]) == 4
    assert sum(row["count"] for row in mobile["top_viewed"]) == 2


def test_rebuild_leaves_planner_statistics_on_every_rollup_table(pg):
    """A rebuild empties and refills the rollups in bulk; it analyzes them, so the planner does
    not guess a 30-day read returns a few hundred rows (and sort or spill accordingly)."""
    for index in range(6):
        EventFactory(
            event_type="product_view",
            product_id=f"sku_{index}",
            timestamp=NOW - dt.timedelta(days=index),
            received_at=NOW,
        )
    rollups_rebuild(now=LATER)
    with connection.cursor() as cursor:
        for model in ALL_MODELS:
            table = model._meta.db_table
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
            assert cursor.fetchone()[0] == model.objects.count(), table


def test_weekly_product_totals_are_the_daily_totals_summed_after_folds_and_a_partial_rebuild(pg):
    """Unfiltered product views over days read whole weeks from the weekly totals: each week
    must hold exactly its days, after incremental folds (a late event included) and after a
    rebuild from a mid-week date (its week keeps the days before that date)."""
    from django.db.models import Sum

    from reports.models import ProductTotalDaily, ProductTotalWeekly

    for index in range(24):  # 2026-02-15 (Sunday) .. 2026-03-09 (Monday), two per day or so
        EventFactory(
            event_type=("product_view", "add_to_cart", "purchase")[index % 3],
            product_id=f"sku_{index % 4}",
            category="books",
            revenue=Decimal("7.50") if index % 3 == 2 else None,
            timestamp=NOW - dt.timedelta(hours=22 * index + 5),
            received_at=NOW - dt.timedelta(hours=22 * index),
        )
    advance()
    EventFactory(  # late: received now, a Wednesday of an earlier week
        event_type="purchase",
        product_id="sku_1",
        category="books",
        revenue=Decimal("3.00"),
        timestamp=dt.datetime(2026, 2, 25, 9, tzinfo=dt.UTC),
        received_at=NOW,
    )
    advance(now=LATER + dt.timedelta(minutes=1))
    keys = ("product_id", "category", "event_type")

    def weekly_from_daily() -> dict:
        summed: dict = {}
        for row in ProductTotalDaily.objects.values("bucket", *keys, "events", "revenue"):
            monday = row["bucket"] - dt.timedelta(days=row["bucket"].weekday())
            cell = summed.setdefault((monday, *(row[k] for k in keys)), [0, Decimal(0)])
            cell[0] += row["events"]
            cell[1] += row["revenue"]
        return {key: tuple(cell) for key, cell in summed.items()}

    def weekly() -> dict:
        rows = ProductTotalWeekly.objects.values("bucket", *keys).annotate(
            e=Sum("events"), r=Sum("revenue")
        )
        return {(row["bucket"], *(row[k] for k in keys)): (row["e"], row["r"]) for row in rows}

    assert len({key[0] for key in weekly()}) >= 4
    assert all(key[0].weekday() == 0 for key in weekly())
    assert weekly() == weekly_from_daily()
    rollups_rebuild(since=dt.date(2026, 2, 26), now=LATER + dt.timedelta(minutes=1))
    assert weekly() == weekly_from_daily()
    assert sum(events for events, _ in weekly().values()) == 25


def _event_totals(grain: str) -> dict:
    rows = EVENT_TOTAL[grain].objects.values("bucket", "event_type", "events", "warned", "revenue")
    return {
        (row["bucket"], row["event_type"]): (row["events"], row["warned"], row["revenue"])
        for row in rows
    }


def _event_metrics_summed(grain: str) -> dict:
    from django.db.models import Sum

    rows = (
        EVENT_METRIC[grain]
        .objects.values("bucket", "event_type")
        .annotate(e=Sum("events"), w=Sum("warned"), r=Sum("revenue"))
    )
    return {(row["bucket"], row["event_type"]): (row["e"], row["w"], row["r"]) for row in rows}


def _raw_event_totals(grain: str) -> dict:
    """The totals computed in Python from the stored events under the watermark."""
    received_at, event_pk = watermark_get()
    totals: dict = {}
    for event in Event.objects.all():
        if received_at is None or (event.received_at, event.pk) > (received_at, event_pk):
            continue
        ts = event.timestamp.astimezone(dt.UTC)
        bucket = ts.replace(minute=0, second=0, microsecond=0)
        if grain == "day":
            bucket = bucket.replace(hour=0)
        cell = totals.setdefault((bucket, event.event_type), [0, 0, Decimal(0)])
        cell[0] += 1
        cell[1] += 1 if event.warnings else 0
        if event.event_type == "purchase":
            cell[2] += event.revenue or 0
    return {key: tuple(cell) for key, cell in totals.items()}


def assert_event_totals_exact() -> None:
    """Event totals of both grains equal the event metrics summed over device and country,
    and the raw events under the watermark."""
    for grain in GRAINS:
        totals = _event_totals(grain)
        assert totals, grain
        assert totals == _event_metrics_summed(grain), grain
        assert totals == _raw_event_totals(grain), grain


def _event_totals_dataset() -> None:
    """Several devices and countries per bucket, purchases, warnings, ties on received_at."""
    for index, (device, country) in enumerate(
        [("mobile", "US"), ("desktop", "US"), ("mobile", "DE"), ("tablet", "FR")] * 6
    ):
        EventFactory(
            event_type=("page_view", "product_view", "add_to_cart", "purchase")[index % 4],
            revenue=Decimal("4.25") if index % 4 == 3 else None,
            device_type=device,
            country=country,
            warnings=[{"field": "page_url", "rule": "w", "message": "w"}] if index % 5 == 0 else [],
            timestamp=NOW - dt.timedelta(hours=5 * index, minutes=index),
            received_at=NOW - dt.timedelta(seconds=index % 3),
        )


def test_event_totals_follow_folds_late_events_and_duplicates(db):
    """Unfiltered views read the event totals: after folds in small batches, a late event into
    an old bucket and a resent duplicate, they hold exactly the event metrics summed over
    device and country, and the raw events."""
    _event_totals_dataset()
    advance(batch=5)
    assert_event_totals_exact()
    late = EventFactory(
        event_type="purchase",
        revenue=Decimal("9.99"),
        device_type="tablet",
        country="BR",
        timestamp=NOW - dt.timedelta(days=6, minutes=13),
        received_at=NOW + dt.timedelta(minutes=2),
    )
    copy = Event(
        **{
            f.attname: getattr(late, f.attname)
            for f in Event._meta.concrete_fields
            if f.attname != "id"
        }
    )
    Event.objects.bulk_create([copy], ignore_conflicts=True)
    assert advance(now=LATER + dt.timedelta(minutes=5)) == 1
    assert_event_totals_exact()
    late_day = (late.timestamp.replace(hour=0, minute=0, second=0, microsecond=0), "purchase")
    assert _event_totals("day")[late_day] == (1, 0, Decimal("9.99"))


def test_event_totals_are_repaired_by_partial_and_full_rebuilds(db):
    """`rebuild_rollups --since` recomputes the totals' buckets from that day on, and a full
    rebuild empties and refolds them: damaged totals are exact again."""
    _event_totals_dataset()
    advance()
    since = (NOW - dt.timedelta(days=2)).date()
    since_at = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    for model in EVENT_TOTAL.values():
        assert model.objects.filter(bucket__lt=since_at).exists()
        assert model.objects.filter(bucket__gte=since_at).update(events=999, warned=999)
    rollups_rebuild(since=since, now=LATER)
    assert_event_totals_exact()
    for model in EVENT_TOTAL.values():
        model.objects.update(events=999, revenue=Decimal("1.00"))
        model.objects.create(bucket=NOW - dt.timedelta(days=400), event_type="page_view", events=7)
    rollups_rebuild(now=LATER)
    assert_event_totals_exact()


def test_unfiltered_event_reads_come_from_the_totals(db):
    """An unfiltered overview reads the event totals (the cheap table); a device filter reads
    the per-device-and-country metrics. Damaging the totals shows only in the unfiltered view,
    so the routing is real and the two reads are cached apart."""
    _event_totals_dataset()
    advance()
    everything = filters_from_query({"preset": "7d"}, now=NOW)
    mobile = filters_from_query({"preset": "7d", "device": "mobile"}, now=NOW)

    def events(f: DashboardFilters) -> int:
        return pages.overview(f)["kpis"]["events"]["value"]

    assert (events(everything), events(mobile)) == (24, 12)
    EVENT_TOTAL["day"].objects.update(events=100)
    cache.clear()
    days = (
        EVENT_TOTAL["day"]
        .objects.filter(bucket__gte=everything.start, bucket__lt=everything.end)
        .count()
    )
    assert events(everything) == 100 * days
    assert events(mobile) == 12


def test_migration_fills_event_totals_from_existing_event_metrics(db):
    """Deploying migration 0009 fills the totals from the event metrics already folded, so the
    unfiltered dashboards do not go empty until a rebuild."""
    import importlib
    from types import SimpleNamespace

    migration = importlib.import_module("reports.migrations.0009_event_totals")
    _event_totals_dataset()
    advance()
    expected = {grain: _event_totals(grain) for grain in GRAINS}
    for model in EVENT_TOTAL.values():
        model.objects.all().delete()
    migration.event_totals_fill(None, SimpleNamespace(connection=connection))
    for grain in GRAINS:
        assert _event_totals(grain) == expected[grain] == _event_metrics_summed(grain)
    assert_event_totals_exact()


# ---------------------------------------------------------------------------------------------
# Weekly product metrics per device and per country (views filtered by one of them).

DIMENSIONS = list(PRODUCT_WEEK_BY)


def _keys(field: str) -> tuple[str, ...]:
    return (field, "product_id", "category", "event_type")


def _dimension_weeks(field: str) -> dict:
    keys = _keys(field)
    rows = PRODUCT_WEEK_BY[field].objects.values("bucket", *keys, "events", "revenue")
    return {
        (row["bucket"], *(row[k] for k in keys)): (row["events"], row["revenue"]) for row in rows
    }


def _dimension_weeks_from_daily(field: str) -> dict:
    """The daily product metrics summed per UTC week (Monday) and `field`, over the other."""
    keys = _keys(field)
    summed: dict = {}
    for row in PRODUCT_METRIC["day"].objects.values("bucket", *keys, "events", "revenue"):
        monday = row["bucket"] - dt.timedelta(days=row["bucket"].weekday())
        cell = summed.setdefault((monday, *(row[k] for k in keys)), [0, Decimal(0)])
        cell[0] += row["events"]
        cell[1] += row["revenue"]
    return {key: tuple(cell) for key, cell in summed.items() if cell[0]}


def _raw_dimension_weeks(field: str) -> dict:
    """The same from raw product events under the watermark (duplicates are stored once)."""
    received_at, event_pk = watermark_get()
    summed: dict = {}
    for event in Event.objects.filter(event_type__in=PRODUCT_EVENT_TYPES):
        if (event.received_at, event.id) > (received_at, event_pk):
            continue
        day = event.timestamp.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        monday = day - dt.timedelta(days=day.weekday())
        key = (monday, *(getattr(event, k) for k in _keys(field)))
        cell = summed.setdefault(key, [0, Decimal(0)])
        cell[0] += 1
        cell[1] += event.revenue or 0
    return {key: tuple(cell) for key, cell in summed.items()}


def _assert_dimension_weeks_exact() -> None:
    for field in DIMENSIONS:
        weeks = _dimension_weeks(field)
        assert weeks, field
        assert weeks == _dimension_weeks_from_daily(field) == _raw_dimension_weeks(field), field


def _dimension_week_dataset() -> None:
    """2026-02-15 (Sunday) .. 2026-03-09 (Monday): several weeks, devices and countries."""
    for index in range(30):
        EventFactory(
            event_type=("product_view", "add_to_cart", "purchase")[index % 3],
            product_id=f"sku_{index % 4}",
            category="books",
            revenue=Decimal("7.50") if index % 3 == 2 else None,
            device_type=("mobile", "desktop", "tablet")[index % 3 - index % 2],
            country=("US", "DE", "FR")[(index // 2) % 3],
            timestamp=NOW - dt.timedelta(hours=18 * index + 5),
            received_at=NOW - dt.timedelta(hours=18 * index),
        )


def test_dimension_weeks_are_the_daily_product_metrics_summed_after_folds_and_rebuilds(db):
    """Device- or country-filtered product views over days read whole weeks from the weekly
    rows of that dimension: each must hold exactly its days (summed over the other dimension)
    after folds in small batches, a late event into an earlier week, a resent duplicate, a
    rebuild from a mid-week date (its week keeps the days before it) and a full rebuild of
    damaged rows."""
    _dimension_week_dataset()
    advance(batch=7)
    late = EventFactory(
        event_type="purchase",
        product_id="sku_1",
        category="books",
        revenue=Decimal("3.00"),
        device_type="mobile",
        country="BR",
        timestamp=dt.datetime(2026, 2, 25, 9, tzinfo=dt.UTC),  # a Wednesday weeks ago
        received_at=NOW,
    )
    copy = Event(
        **{
            f.attname: getattr(late, f.attname)
            for f in Event._meta.concrete_fields
            if f.attname != "id"
        }
    )
    Event.objects.bulk_create([copy], ignore_conflicts=True)
    advance(now=LATER + dt.timedelta(minutes=1))
    for field in DIMENSIONS:
        weeks = _dimension_weeks(field)
        assert len({key[0] for key in weeks}) >= 4 and all(key[0].weekday() == 0 for key in weeks)
        assert len({key[1] for key in weeks}) >= 3
        assert sum(events for events, _ in weeks.values()) == 31
    _assert_dimension_weeks_exact()
    for model in PRODUCT_WEEK_BY.values():
        model.objects.filter(bucket__gte=dt.datetime(2026, 2, 23, tzinfo=dt.UTC)).update(events=999)
    rollups_rebuild(since=dt.date(2026, 2, 26), now=LATER + dt.timedelta(minutes=1))
    _assert_dimension_weeks_exact()
    for model in PRODUCT_WEEK_BY.values():
        model.objects.update(events=5, revenue=Decimal("1.00"))
    rollups_rebuild(now=LATER + dt.timedelta(minutes=1))
    _assert_dimension_weeks_exact()


@pytest.mark.parametrize(
    ("field", "value", "other"),
    [("device_type", "mobile", {"device": "tablet"}), ("country", "DE", {"country": "US"})],
)
def test_filtered_product_reads_take_whole_weeks_from_their_dimension_weeks(
    db, field, value, other
):
    """A device or a country filter alone over days with whole weeks reads them from the
    weekly rows of that dimension: damaging those rows shows in that view only (not in the
    unfiltered view, not in another value's, not with both filters, which read the daily
    metrics)."""
    _dimension_week_dataset()
    advance()
    query = {"start": "2026-02-13", "end": "2026-03-10"}  # Friday .. Tuesday: 3 whole weeks
    name = "device" if field == "device_type" else "country"
    both = {"device": "mobile", "country": "DE"}

    def viewed(**filters: str) -> int:
        f = filters_from_query({**query, **filters}, now=NOW)
        return sum(item["count"] for item in pages.products(f)["top_viewed"])

    before = {
        "this": viewed(**{name: value}),
        "other": viewed(**other),
        "both": viewed(**both),
        "all": viewed(),
    }
    assert before["this"] > 0 and before["other"] > 0
    damaged = PRODUCT_WEEK_BY[field].objects.filter(**{field: value}, event_type="product_view")
    assert damaged.update(events=100)
    cache.clear()
    assert viewed(**{name: value}) > before["this"]
    assert viewed(**other) == before["other"]
    assert viewed(**both) == before["both"]
    assert viewed() == before["all"]


@pytest.mark.parametrize(
    ("field", "module", "fill"),
    [
        ("device_type", "0011_product_device_weeks", "product_device_weeks_fill"),
        ("country", "0013_product_country_weeks", "product_country_weeks_fill"),
    ],
)
def test_migrations_fill_dimension_weeks_from_existing_product_metrics(db, field, module, fill):
    """Deploying migrations 0011 (devices) and 0013 (countries) fills the weekly rows from the
    daily product metrics already folded, so filtered views stay exact without a rebuild."""
    import importlib
    from types import SimpleNamespace

    migration = importlib.import_module(f"reports.migrations.{module}")
    _dimension_week_dataset()
    advance()
    expected = _dimension_weeks(field)
    PRODUCT_WEEK_BY[field].objects.all().delete()
    getattr(migration, fill)(None, SimpleNamespace(connection=connection))
    assert _dimension_weeks(field) == expected == _dimension_weeks_from_daily(field)
    assert expected == _raw_dimension_weeks(field)


def _session_totals(grain: str) -> dict:
    """{(bucket, step): (sessions, revenue)} of the session totals; emptied rows (their sessions
    moved to another bucket or step) count as absent, and must hold no revenue either."""
    rows = SESSION_TOTAL[grain].objects.values_list("bucket", "reached_step", "sessions", "revenue")
    assert all(revenue == 0 for *_, sessions, revenue in rows if sessions == 0)
    return {(bucket, step): (n, revenue) for bucket, step, n, revenue in rows if n}


def _session_metrics_summed(grain: str) -> dict:
    from django.db.models import Sum

    rows = (
        SESSION_METRIC[grain]
        .objects.values_list("bucket", "reached_step")
        .annotate(n=Sum("sessions"), r=Sum("revenue"))
    )
    return {(bucket, step): (n, revenue) for bucket, step, n, revenue in rows if n}


def _raw_session_totals(grain: str) -> dict:
    """Sessions per (start bucket, furthest step) computed in Python from the stored events
    under the watermark: a session starts at its first event by (timestamp, id)."""
    received_at, event_pk = watermark_get()
    sessions: dict = {}
    for event in Event.objects.all():
        if received_at is None or (event.received_at, event.pk) > (received_at, event_pk):
            continue
        state = sessions.setdefault(event.session_id, {"first": None, "step": 0, "revenue": 0})
        key = (event.timestamp, event.pk)
        if state["first"] is None or key < state["first"]:
            state["first"] = key
        if event.event_type in FUNNEL_STEPS:
            step = FUNNEL_STEPS.index(event.event_type) + 1
            state["step"] = max(state["step"], step)
        if event.event_type == "purchase":
            state["revenue"] += event.revenue or 0
    totals: dict = {}
    for state in sessions.values():
        bucket = state["first"][0].astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        if grain == "day":
            bucket = bucket.replace(hour=0)
        cell = totals.setdefault((bucket, state["step"]), [0, Decimal(0)])
        cell[0] += 1
        cell[1] += state["revenue"]
    return {key: tuple(cell) for key, cell in totals.items()}


def assert_session_totals_exact() -> None:
    """Session totals of both grains equal the session metrics summed over device and country,
    and the sessions computed from the raw events under the watermark."""
    for grain in GRAINS:
        totals = _session_totals(grain)
        assert totals, grain
        assert totals == _session_metrics_summed(grain), grain
        assert totals == _raw_session_totals(grain), grain


def _session_totals_dataset() -> None:
    """Sessions of one to five events over several hours and days, devices and countries, with
    purchases and ties on received_at."""
    devices = [("mobile", "US"), ("desktop", "US"), ("mobile", "DE"), ("tablet", "FR")]
    for index in range(12):
        device, country = devices[index % 4]
        for offset, event_type in enumerate(FUNNEL_STEPS[: index % 5 + 1]):
            EventFactory(
                session_id=f"s{index}",
                user_id=f"u{index % 5}",
                event_type=event_type,
                revenue=Decimal("7.50") if event_type == "purchase" else None,
                device_type=device,
                country=country,
                timestamp=NOW - dt.timedelta(hours=9 * index, minutes=20 * offset),
                received_at=NOW - dt.timedelta(seconds=(index + offset) % 3),
            )


def _late_session_event(session: str, **fields) -> Event:
    """An event of an existing session received after everything else (a late event)."""
    values = {
        "session_id": session,
        "user_id": "late",
        "received_at": NOW + dt.timedelta(minutes=2),
        **fields,
    }
    return EventFactory(**values)


def test_session_totals_follow_folds_late_events_and_duplicates(db):
    """Unsplit unfiltered session numbers read the session totals: after folds in small
    batches, a late event that moves a session to an earlier bucket, another device and a
    further step, and a resent duplicate, they hold exactly the session metrics summed over
    device and country, and the sessions computed from raw events."""
    _session_totals_dataset()
    advance(batch=4)
    assert_session_totals_exact()
    moved = SessionRollup.objects.get(session_id="s3")
    assert moved.reached_step == 4
    late = _late_session_event(
        "s3",
        event_type="purchase",
        revenue=Decimal("19.99"),
        device_type="tablet",
        country="BR",
        timestamp=moved.started_at - dt.timedelta(days=2),
    )
    copy = Event(
        **{
            f.attname: getattr(late, f.attname)
            for f in Event._meta.concrete_fields
            if f.attname != "id"
        }
    )
    Event.objects.bulk_create([copy], ignore_conflicts=True)
    old_day = moved.started_at.replace(hour=0, minute=0, second=0, microsecond=0)
    before = _session_totals("day")
    assert advance(now=LATER + dt.timedelta(minutes=5)) == 1
    assert_session_totals_exact()
    after = _session_totals("day")
    new_day = late.timestamp.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert after.get((old_day, 4), (0,))[0] == before[(old_day, 4)][0] - 1
    assert after[(new_day, 5)][0] == before.get((new_day, 5), (0,))[0] + 1


def test_session_totals_follow_a_partial_rebuild_and_are_repaired_by_a_full_one(db):
    """`rebuild_rollups --since` recomputes the sessions touched from that day on (one of them
    started before it and gets a late event after it) and keeps the totals exact; a full
    rebuild empties and refolds damaged totals."""
    _session_totals_dataset()
    advance()
    since = (NOW - dt.timedelta(days=2)).date()
    since_at = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    spanning = SessionRollup.objects.filter(started_at__lt=since_at).order_by("-started_at")[0]
    _late_session_event(
        spanning.session_id,
        event_type="purchase",
        revenue=Decimal("3.00"),
        timestamp=since_at + dt.timedelta(hours=1),
    )
    rollups_rebuild(since=since, now=LATER + dt.timedelta(minutes=5))
    assert_session_totals_exact()
    assert SessionRollup.objects.get(session_id=spanning.session_id).reached_step == 5
    for model in SESSION_TOTAL.values():
        model.objects.update(sessions=999, revenue=Decimal("1.00"))
        model.objects.create(bucket=NOW - dt.timedelta(days=400), reached_step=1, sessions=7)
    rollups_rebuild(now=LATER + dt.timedelta(minutes=5))
    assert_session_totals_exact()


def test_unsplit_unfiltered_session_reads_come_from_the_totals(db):
    """The overview's sessions and the funnel's unsplit steps read the session totals when no
    device or country filter is set; the funnel's splits and filtered views read the session
    metrics. Damaging the totals shows only in the unfiltered unsplit numbers, so the routing is
    real and the two reads are cached apart."""
    _session_totals_dataset()
    advance()
    everything = filters_from_query({"preset": "7d"}, now=NOW)
    mobile = filters_from_query({"preset": "7d", "device": "mobile"}, now=NOW)

    def sessions(f: DashboardFilters) -> int:
        return pages.overview(f)["kpis"]["sessions"]["value"]

    def funnel_reached(f: DashboardFilters, split_by: str | None = None) -> tuple:
        funnel = pages.funnel(f, split_by)
        steps = [step["sessions"] for step in funnel["steps"]]
        splits = {
            split["key"]: [step["sessions"] for step in split["steps"]]
            for split in funnel["splits"]
        }
        return steps, splits

    assert (sessions(everything), sessions(mobile)) == (12, 6)
    steps, splits = funnel_reached(everything, "device")
    assert steps[0] == 12 and sum(values[0] for values in splits.values()) == 12
    mobile_steps, _ = funnel_reached(mobile)
    SESSION_TOTAL["day"].objects.filter(reached_step=1).update(sessions=100)
    cache.clear()
    damaged = (
        SESSION_TOTAL["day"]
        .objects.filter(bucket__gte=everything.start, bucket__lt=everything.end, reached_step=1)
        .count()
    )
    assert damaged
    assert sessions(everything) == 12 + 99 * damaged
    damaged_steps, same_splits = funnel_reached(everything, "device")
    assert damaged_steps != steps and same_splits == splits
    assert sessions(mobile) == 6
    assert funnel_reached(mobile) == (mobile_steps, {})


def test_migration_fills_session_totals_from_existing_session_metrics(db):
    """Deploying migration 0012 fills the totals from the session metrics already folded
    (emptied rows included), so unfiltered session numbers stay exact without a rebuild."""
    import importlib
    from types import SimpleNamespace

    migration = importlib.import_module("reports.migrations.0012_session_totals")
    _session_totals_dataset()
    advance(batch=4)
    _late_session_event(
        "s2", event_type="page_view", timestamp=NOW - dt.timedelta(days=5), device_type="mobile"
    )
    advance(now=LATER + dt.timedelta(minutes=5))
    assert SESSION_METRIC["day"].objects.filter(sessions=0).exists()
    expected = {grain: _session_totals(grain) for grain in GRAINS}
    for model in SESSION_TOTAL.values():
        model.objects.all().delete()
    migration.session_totals_fill(None, SimpleNamespace(connection=connection))
    for grain in GRAINS:
        assert _session_totals(grain) == expected[grain] == _session_metrics_summed(grain)
    assert_session_totals_exact()
