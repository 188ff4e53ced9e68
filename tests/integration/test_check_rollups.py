"""Check rollups (ADR 0019): every count a default dataset check judges (volume, null rate,
duplicates, drift, funnel, pass rate, mean price) equals the same count computed from raw rows,
for hour and day windows, aligned or not, whatever is folded, in the raw tail, erased or
replayed."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from decimal import Decimal

import pytest
from django.core.management import call_command

from events.models import Event, RejectedEvent
from quality import selectors
from quality.models import EventHour, NullHour
from quality.services import intake, replay
from quality.services.checks import checks_evaluate
from quality.services.defaults import defaults_load
from quality.services.rules import rules_set_enabled
from tests.factories import EventFactory, QualityRuleFactory, RejectedEventFactory
from tests.integration.test_intake_rollups import quarantine_purchases

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)  # on the hour, as a scheduled run
LATER = NOW + dt.timedelta(minutes=5)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
TYPES = ("page_view", "product_view", "checkout_start", "purchase")


# --- the raw computations the reads must equal -----------------------------------------------


def _rows() -> list[dict]:
    return list(Event.objects.values())


def _in(row: dict, start: dt.datetime, end: dt.datetime) -> bool:
    return start <= row["timestamp"] < end


def raw_volume(rows: list[dict], start: dt.datetime, end: dt.datetime) -> int:
    return sum(_in(row, start, end) for row in rows)


def raw_nulls(
    rows: list[dict], field: str, types: tuple, start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    rows = [r for r in rows if _in(r, start, end) and (not types or r["event_type"] in types)]
    if field.startswith("properties."):
        values = [r["properties"].get(field.split(".", 1)[1]) for r in rows]
    else:
        values = [r[field] for r in rows]
    return sum(value is None or value == "" for value in values), len(rows)


def raw_duplicates(rows: list[dict], start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    rows = [r for r in rows if _in(r, start, end)]
    keys = {(r["session_id"], r["event_type"], r["product_id"], r["timestamp"]) for r in rows}
    return len(rows) - len(keys), len(rows)


def raw_categories(rows: list[dict], field: str, start: dt.datetime, end: dt.datetime) -> dict:
    return dict(Counter(str(r[field]) for r in rows if _in(r, start, end)))


def raw_mean(rows: list[dict], field: str, start: dt.datetime, end: dt.datetime) -> tuple:
    values = [r[field] for r in rows if _in(r, start, end) and r[field] is not None]
    return (float(sum(values) / len(values)) if values else None), len(values)


def raw_orphans(rows: list[dict], start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    checkouts = {r["session_id"] for r in rows if r["event_type"] == "checkout_start"}
    purchases = [r for r in rows if r["event_type"] == "purchase" and _in(r, start, end)]
    return sum(r["session_id"] not in checkouts for r in purchases), len(purchases)


def raw_validation(start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    accepted = sum(
        start <= received < end for received in Event.objects.values_list("received_at", flat=True)
    )
    rejected = sum(
        start <= received < end
        for received in RejectedEvent.objects.filter(status="quarantined").values_list(
            "received_at", flat=True
        )
    )
    return accepted, rejected


def windows(now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Hour and day windows ending on the hour and off it, a 7-day baseline, one inside an
    hour, and one reaching past the newest event."""
    odd = now - dt.timedelta(minutes=17, seconds=3)
    return [
        (now - HOUR, now),
        (now - DAY, now),
        (odd - HOUR, odd),
        (odd - DAY, odd),
        (now - 8 * DAY, now - DAY),
        (odd - dt.timedelta(minutes=20), odd - dt.timedelta(minutes=5)),
        (now - 2 * HOUR, now + HOUR),
    ]


def assert_check_counts_equal_raw(now: dt.datetime = NOW) -> None:
    spans, rows = windows(now), _rows()
    volume_windows = spans + [(s - d * DAY, e - d * DAY) for s, e in spans[:4] for d in (1, 3)]
    assert selectors.event_counts_in_windows(volume_windows) == [
        raw_volume(rows, s, e) for s, e in volume_windows
    ]
    for start, end in spans:
        for field, types in (
            ("category", ("product_view",)),
            ("currency", ("purchase",)),
            ("price", ()),
            ("country", ()),
            ("properties.plan", ()),
        ):
            assert selectors.field_null_counts(field, types, start, end) == raw_nulls(
                rows, field, types, start, end
            ), (field, start, end)
        assert selectors.duplicate_counts(start, end) == raw_duplicates(rows, start, end), (
            start,
            end,
        )
        for field in ("device_type", "event_type", "country", "currency"):
            assert selectors.category_counts(field, start, end) == raw_categories(
                rows, field, start, end
            ), (field, start, end)
        assert selectors.field_mean("price", start, end) == raw_mean(rows, "price", start, end), (
            start,
            end,
        )
        assert selectors.purchases_without_checkout(start, end) == raw_orphans(rows, start, end), (
            start,
            end,
        )
        assert selectors.validation_counts(start, end) == raw_validation(start, end)


# --- data ------------------------------------------------------------------------------------


def generated(seed: int, count: int, newest: dt.datetime, days: float = 9) -> list[Event]:
    """Events over `days` days up to `newest`, in a few sessions so that purchases and their
    checkouts arrive in any order: 8% re-sent under a new id (same content key), nulls in
    category, currency, price and a property, some exactly on an hour boundary, 5% late."""
    rng = random.Random(seed)
    made: list[Event] = []
    for index in range(count):
        timestamp = newest - dt.timedelta(seconds=rng.randrange(int(days * 86400)))
        if index % 13 == 0:
            timestamp = timestamp.replace(minute=0, second=0, microsecond=0)
        if made and rng.random() < 0.08:
            twin = rng.choice(made)
            fields = ("session_id", "event_type", "product_id", "timestamp", "device_type")
            copy = {name: getattr(twin, name) for name in (*fields, "received_at")}
            made.append(EventFactory(**copy))
            continue
        late = dt.timedelta(hours=rng.randrange(1, 30)) if rng.random() < 0.05 else dt.timedelta()
        made.append(
            EventFactory(
                timestamp=timestamp,
                received_at=timestamp + late + dt.timedelta(seconds=rng.randrange(5)),
                event_type=rng.choice(TYPES),
                session_id=f"s{rng.randrange(60)}",
                device_type=rng.choice(["desktop", "mobile", "tablet"]),
                country=rng.choice(["US", "DE", "FR"]),
                product_id=rng.choice(["", "sku_1", "sku_2"]),
                category=rng.choice(["", "shoes", "bags"]),
                currency=rng.choice(["", "USD", "EUR"]),
                price=rng.choice([None, Decimal("10"), Decimal("12.35"), Decimal("0.99")]),
                properties=rng.choice([{}, {"plan": "pro"}, {"plan": ""}]),
            )
        )
    for _ in range(count // 10):
        RejectedEventFactory(received_at=newest - dt.timedelta(seconds=rng.randrange(86400)))
    return made


def rollup_rows() -> tuple:
    """Every non-zero check rollup row."""
    hours = EventHour.objects.values_list(
        "dimension", "bucket", "value", "events", "duplicates", "orphans"
    )
    nulls = NullHour.objects.values_list("bucket", "event_type", "field", "nulls")
    return (
        sorted(row for row in hours if any(row[3:])),
        sorted(row for row in nulls if row[3]),
    )


# --- tests -----------------------------------------------------------------------------------


def test_counts_equal_raw_unfolded_folded_in_batches_with_a_tail_and_after_a_rebuild():
    """All raw tail, folded in small batches, with newer rows in the tail (re-sent copies of
    folded events, checkouts for folded purchases, late events), and after a rebuild: every
    count equals the raw computation, and the rollups hold the same rows either way."""
    made = generated(seed=1, count=500, newest=NOW)
    assert_check_counts_equal_raw()
    intake.intake_advance(now=LATER, batch=37)
    assert EventHour.objects.filter(duplicates__gt=0).exists()
    assert EventHour.objects.filter(orphans__gt=0).exists()
    assert NullHour.objects.exists()
    assert_check_counts_equal_raw()
    # The tail: copies of folded events, checkouts of sessions with orphan purchases.
    for twin in made[:40:3]:
        EventFactory(
            session_id=twin.session_id,
            event_type=twin.event_type,
            product_id=twin.product_id,
            timestamp=twin.timestamp,
            received_at=LATER,
        )
    for session in sorted({e.session_id for e in made if e.event_type == "purchase"})[:15]:
        EventFactory(
            session_id=session,
            event_type="checkout_start",
            timestamp=NOW - 2 * HOUR,
            received_at=LATER,
        )
    generated(seed=2, count=60, newest=NOW + dt.timedelta(minutes=10), days=2)
    assert_check_counts_equal_raw()
    intake.intake_advance(now=NOW + dt.timedelta(minutes=30), batch=23)
    assert_check_counts_equal_raw()
    incremental = rollup_rows()
    intake.intake_rebuild(now=NOW + dt.timedelta(minutes=30))
    assert rollup_rows() == incremental


def test_a_late_checkout_takes_back_its_folded_orphan_purchase():
    """A purchase folded without a checkout is an orphan; its session's checkout_start arriving
    later turns it into a normal purchase, in the tail and once folded."""
    EventFactory(
        purchase=True,
        session_id="s1",
        timestamp=NOW - 30 * dt.timedelta(minutes=1),
        received_at=NOW - 20 * dt.timedelta(minutes=1),
    )
    intake.intake_advance(now=LATER)
    assert selectors.purchases_without_checkout(NOW - HOUR, NOW) == (1, 1)
    EventFactory(
        event_type="checkout_start", session_id="s1", timestamp=NOW - 2 * DAY, received_at=LATER
    )
    assert selectors.purchases_without_checkout(NOW - HOUR, NOW) == (0, 1)
    intake.intake_advance(now=LATER + HOUR)
    assert EventHour.objects.get(dimension="event_type", value="purchase").orphans == 0
    assert selectors.purchases_without_checkout(NOW - HOUR, NOW) == (0, 1)


def test_an_erasure_keeps_counts_equal_raw():
    """Erasing a person deletes folded and tail events; the rollups lose exactly their share
    (a session's first copy gone makes its re-sent copy the original)."""
    generated(seed=3, count=300, newest=NOW)
    intake.intake_advance(now=LATER, batch=101)
    person = Event.objects.order_by("id").values_list("user_id", flat=True)[7]
    victim = Event.objects.filter(user_id=person).first()
    EventFactory(  # a re-sent copy by someone else, of one of the person's events
        user_id="other",
        session_id=victim.session_id,
        event_type=victim.event_type,
        product_id=victim.product_id,
        timestamp=victim.timestamp,
        received_at=LATER,
    )
    intake.intake_advance(now=LATER + HOUR)
    call_command("forget_user", person)
    assert not Event.objects.filter(user_id=person).exists()
    assert_check_counts_equal_raw()
    after = rollup_rows()
    intake.intake_rebuild(now=LATER + HOUR)
    assert rollup_rows() == after


@pytest.mark.parametrize("folded_before_replay", [True, False])
def test_replays_keep_counts_equal_raw(folded_before_replay):
    """Replayed purchases are stored at their old receipt time; in the tail or folded, the
    counts equal raw, and the next fold does not count them twice."""
    rule = QualityRuleFactory(
        name="price-cap", kind="range", field="price", params={"max": 100}, event_types=["purchase"]
    )
    generated(seed=4, count=150, newest=NOW)
    ids = quarantine_purchases(NOW - dt.timedelta(hours=7, minutes=59), 3, "EUR")
    if folded_before_replay:
        intake.intake_advance(now=LATER)
    rules_set_enabled([rule.pk], False)
    replay.quarantine_replay(ids)
    assert_check_counts_equal_raw()
    intake.intake_advance(now=LATER)
    assert_check_counts_equal_raw()
    before = rollup_rows()
    intake.intake_rebuild(now=LATER)
    assert rollup_rows() == before


def test_default_checks_read_the_same_verdicts_from_rollups_as_from_raw():
    """The default suite judged before any fold (everything raw tail) and after a fold gives
    the same outcomes and metrics."""
    generated(seed=5, count=400, newest=NOW)
    defaults_load()
    raw = [(c.name, r.outcome, r.metric) for c, r, _ in checks_evaluate(now=NOW)]
    intake.intake_advance(now=LATER)
    assert [(c.name, r.outcome, r.metric) for c, r, _ in checks_evaluate(now=NOW)] == raw
    assert "error" not in {outcome for _, outcome, _ in raw}
