"""Planted incidents (events.sample_data.scenarios): each breaks a clean hour the way its name
says, deterministically, so the detection benchmark and `--scenario` demos are reproducible."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

import events.sample_data as gen
from events.sample_data.scenarios import (
    BOT_USER,
    BROKEN_CLIENT,
    GONE_COUNTRY,
    HOUR_MS,
    SCENARIOS,
    scenario_apply,
)
from events.schema import validate_event_schema

START = dt.datetime(2026, 1, 8, 14, tzinfo=dt.UTC)
START_MS = int(START.timestamp() * 1000)


@pytest.fixture(scope="module")
def hour():
    """About 1,500 clean events stamped and received in [START, START + 1 h)."""
    config = gen.SampleConfig(
        events=36_000, end=START + dt.timedelta(hours=1), days=1, seed=9, bad_rate=0,
        duplicate_rate=0, late_rate=0,
    )  # fmt: skip
    items = []
    for event in gen.sample_events(config):
        stamp = dt.datetime.fromisoformat(event.payload["timestamp"].replace("Z", "+00:00"))
        if START <= stamp < START + dt.timedelta(hours=1):
            items.append((max(event.received_ms, START_MS), event.payload))
    assert len(items) > 1000
    return items


def _apply(name, hour):
    return scenario_apply(name, hour, seed=1, start_ms=START_MS)


def test_every_scenario_is_deterministic_and_sorted_by_receipt(hour):
    for name in SCENARIOS:
        first, second = _apply(name, hour), _apply(name, hour)
        assert first == second, name
        assert [r for r, _ in first] == sorted(r for r, _ in first), name


def test_volume_drop_keeps_about_a_tenth(hour):
    assert len(_apply("volume-drop", hour)) == pytest.approx(len(hour) * 0.1, rel=0.3)


def test_category_missing_on_about_30_percent_of_product_views(hour):
    views = [p for _, p in _apply("category-missing", hour) if p["event_type"] == "product_view"]
    missing = sum("category" not in p for p in views) / len(views)
    assert missing == pytest.approx(0.3, abs=0.07)


def test_resent_new_ids_repeat_content_under_new_ids(hour):
    planted = [p for _, p in _apply("resent-new-ids", hour)]
    keys = Counter((p["session_id"], p["event_type"], p.get("product_id"), p["timestamp"])
                   for p in planted)  # fmt: skip
    assert len({p["event_id"] for p in planted}) == len(planted)
    extra = len(planted) - len(hour)
    assert extra == pytest.approx(len(hour) * 0.05, rel=0.35)
    assert sum(n - 1 for n in keys.values()) >= extra


def test_silence_leaves_the_first_30_minutes_empty(hour):
    planted = _apply("silence-30m", hour)
    assert planted and min(r for r, _ in planted) >= START_MS + HOUR_MS // 2


def _valid(payload) -> bool:
    result = validate_event_schema(
        payload, received_at=START + dt.timedelta(hours=1), max_future_skew=dt.timedelta(0)
    )
    return not result.errors


def test_broken_payloads_fail_the_schema(hour):
    invalid = _apply("invalid-events", hour)
    bad = sum(not _valid(p) for _, p in invalid)
    assert bad == pytest.approx(len(hour) * 0.05, rel=0.35)
    wrong = [p for _, p in _apply("wrong-type", hour) if isinstance(p["user_id"], int)]
    assert wrong and all(p["properties"]["app_version"] == BROKEN_CLIENT for p in wrong)
    assert not any(_valid(p) for p in wrong)


def test_prices_in_cents_and_currency_switch(hour):
    clean = {p["event_id"]: p for _, p in hour}
    cents = [p for _, p in _apply("prices-in-cents", hour) if "price" in p]
    assert all(p["price"] == pytest.approx(clean[p["event_id"]]["price"] * 100) for p in cents)
    currencies = {p["currency"] for _, p in _apply("currency-switch", hour) if "currency" in p}
    assert currencies == {"EUR"}


def test_country_missing_bot_and_late_batch(hour):
    assert GONE_COUNTRY not in {p["country"] for _, p in _apply("country-missing", hour)}
    planted = _apply("bot-traffic", hour)
    share = sum(p["user_id"] == BOT_USER for _, p in planted) / len(planted)
    assert share == pytest.approx(0.2, abs=0.01)
    late = [(r, p) for r, p in _apply("late-batch", hour) if r == START_MS + 300_000]
    stamps = [dt.datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00")) for _, p in late]
    assert len(late) >= len(hour) // 3
    assert sum(stamp < START - dt.timedelta(hours=2) for stamp in stamps) >= len(hour) // 3
