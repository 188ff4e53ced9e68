"""The sample-data generator (events.sample_data), without a database: determinism, the shape
of the traffic, the bad events it plants, and that good events pass the schema layer and the
obvious stored rules."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter, defaultdict
from decimal import Decimal

import numpy as np
import pycountry
import pytest

from events import sample_data as gen
from events.schema import validate_event_schema
from quality.engine.rules import MemoryFacts, RuleSpec, ruleset_compile, ruleset_evaluate

END = dt.datetime(2026, 3, 10, 14, 30, tzinfo=dt.UTC)
SKEW = dt.timedelta(minutes=5)
COUNTRY_CODES = {country.alpha_2 for country in pycountry.countries}


def _config(**overrides) -> gen.SampleConfig:
    values = {"events": 20_000, "end": END, "seed": 42, "bad_rate": 0.01}  # every bad kind shows
    values.update(overrides)
    return gen.SampleConfig(**values)


@pytest.fixture(scope="module")
def events() -> list[gen.SampleEvent]:
    return list(gen.sample_events(_config()))


@pytest.fixture(scope="module")
def good(events) -> list[gen.SampleEvent]:
    return [event for event in events if event.is_good and not event.duplicate]


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _schema_row(event: gen.SampleEvent):
    received_at = dt.datetime.fromtimestamp(event.received_ms / 1000, tz=dt.UTC)
    return validate_event_schema(event.payload, received_at=received_at, max_future_skew=SKEW)


def test_same_seed_and_end_give_identical_payloads():
    """Same seed + fixed --end -> the very same events, event_ids included."""
    first = [event.payload for event in gen.sample_events(_config(events=3000))]
    second = [event.payload for event in gen.sample_events(_config(events=3000))]
    assert first == second
    other_seed = [event.payload for event in gen.sample_events(_config(events=3000, seed=43))]
    assert {p["event_id"] for p in first}.isdisjoint({p["event_id"] for p in other_seed})


def test_ids_and_fates_depend_on_the_seed_only_so_reruns_are_idempotent():
    """A rerun later (another `end`) sends the same good event_ids, and plants its bad events
    and duplicates on the same ids: nothing new is stored."""

    def ids(end: dt.datetime) -> dict[str, set[str]]:
        sent = list(gen.sample_events(_config(events=4000, end=end, bad_rate=0.05)))
        return {
            "good": {e.payload["event_id"] for e in sent if e.is_good},
            "duplicate": {e.payload["event_id"] for e in sent if e.duplicate},
            "bad": {
                gen.malformed_event_id(e.payload["event_id"])
                for e in sent
                if e.kind and e.kind != "malformed_event_id"
            }
            | {e.payload["event_id"] for e in sent if e.kind == "malformed_event_id"},
        }

    earlier, later = ids(END), ids(END + dt.timedelta(hours=5, minutes=7))
    assert earlier == later
    assert len(earlier["good"]) > 3500


def test_event_ids_are_valid_uuids_unique_per_seed_and_ordered_within_a_run():
    """UUIDv8 (RFC 9562): a seed prefix, the event's index in the run, seeded random bits."""
    ids = gen.event_ids(42, 0, 1000)
    parsed = [uuid.UUID(bytes=raw.tobytes()) for raw in ids]
    assert {u.version for u in parsed} == {8}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    assert parsed == sorted(parsed, key=lambda u: u.bytes)
    assert len(set(parsed)) == 1000
    other_seed = {uuid.UUID(bytes=raw.tobytes()) for raw in gen.event_ids(43, 0, 1000)}
    assert other_seed.isdisjoint(parsed)
    split = np.concatenate([gen.event_ids(42, 0, 400), gen.event_ids(42, 400, 600)])
    assert (split == ids).all()


def test_exactly_the_requested_number_of_distinct_events_over_chunks():
    """--events counts distinct events (good and bad), whatever the chunking."""
    config = _config(events=5003, chunk_events=1000)
    assert config.chunk_count == 6
    sent = list(gen.sample_events(config))
    assert sum(1 for event in sent if not event.duplicate) == 5003
    ids = [event.payload["event_id"] for event in sent if not event.duplicate]
    assert len(set(ids)) == len(ids)


def test_funnel_drops_off_monotonically_at_plausible_rates(good):
    """Sessions reaching each funnel step: ~60% / 25% / 12% / 4%, never increasing."""
    steps_by_session: dict[str, set[str]] = defaultdict(set)
    for event in good:
        steps_by_session[event.payload["session_id"]].add(event.payload["event_type"])
    sessions = len(steps_by_session)
    reached = [
        sum(step in steps for steps in steps_by_session.values()) / sessions
        for step in gen.FUNNEL_STEPS
    ]
    assert reached == sorted(reached, reverse=True)
    assert reached[0] > 0.97  # sessions start with a page view
    assert 0.50 <= reached[1] <= 0.70
    assert 0.18 <= reached[2] <= 0.32
    assert 0.08 <= reached[3] <= 0.16
    assert 0.025 <= reached[4] <= 0.065
    searching = sum("search" in steps for steps in steps_by_session.values()) / sessions
    assert 0.25 <= searching <= 0.45
    assert any("remove_from_cart" in steps for steps in steps_by_session.values())


def test_purchases_have_order_ids_and_revenue_equal_to_their_items(good):
    """revenue == price * quantity for one-line orders, == sum over items otherwise; USD."""
    purchases = [e.payload for e in good if e.payload["event_type"] == "purchase"]
    assert len(purchases) > 100
    assert len({p["order_id"] for p in purchases}) == len(purchases)
    multi_line = 0
    for purchase in purchases:
        assert purchase["currency"] == "USD"
        revenue = Decimal(str(purchase["revenue"]))
        if "price" in purchase:
            assert revenue == Decimal(str(purchase["price"])) * purchase["quantity"]
        else:
            multi_line += 1
            items = purchase["properties"]["items"]
            assert len(items) > 1
            assert revenue == sum(Decimal(str(i["price"])) * i["quantity"] for i in items)
            assert purchase["quantity"] == sum(item["quantity"] for item in items)
        assert revenue > 0
    assert 0 < multi_line < len(purchases)


def test_cart_events_use_catalog_prices(good):
    """Product events carry the catalog's category and price for their product_id."""
    catalog = {product.product_id: product for product in gen.product_catalog()}
    assert len(catalog) == sum(count for count, _, _, _ in gen.CATEGORIES.values())
    for event in good:
        payload = event.payload
        if payload["event_type"] in ("product_view", "add_to_cart", "remove_from_cart"):
            product = catalog[payload["product_id"]]
            assert payload["category"] == product.category
            assert Decimal(str(payload["price"])) == product.price
        if payload["event_type"] in ("add_to_cart", "remove_from_cart"):
            assert payload["quantity"] >= 1


def test_bad_duplicate_and_late_shares_follow_the_rates():
    """The planted shares are close to --bad-rate, --duplicate-rate and --late-rate."""
    config = _config(events=40_000, bad_rate=0.05, duplicate_rate=0.02, late_rate=0.01)
    sent = list(gen.sample_events(config))
    distinct = [event for event in sent if not event.duplicate]
    bad = sum(1 for event in distinct if not event.is_good)
    duplicates = sum(1 for event in sent if event.duplicate)
    late = sum(1 for event in distinct if event.late)
    assert bad / len(distinct) == pytest.approx(0.05, rel=0.1)
    assert duplicates / len(distinct) == pytest.approx(0.02 * 0.95, rel=0.15)
    assert late / len(distinct) == pytest.approx(0.01 * 0.95, rel=0.2)
    kinds = Counter(event.kind for event in distinct if event.kind)
    assert set(kinds) == {kind.name for kind in gen.BAD_KINDS}


def test_zero_rates_plant_nothing():
    sent = list(gen.sample_events(_config(events=3000, bad_rate=0, duplicate_rate=0, late_rate=0)))
    assert len(sent) == 3000
    assert all(event.is_good and not event.late for event in sent)


def test_duplicates_resend_an_earlier_good_event_unchanged(events):
    originals = {e.payload["event_id"]: e for e in events if e.is_good and not e.duplicate}
    duplicates = [event for event in events if event.duplicate]
    assert duplicates
    for duplicate in duplicates:
        original = originals[duplicate.payload["event_id"]]
        assert duplicate.payload == original.payload
        assert duplicate.received_ms >= original.received_ms


def test_good_events_are_in_the_window_and_never_in_the_future(good):
    """All good timestamps lie in [end - days, end]; arrival is after the event, by --end."""
    start_ms = _ms(END.isoformat()) - 7 * 86_400_000
    end_ms = _ms(END.isoformat())
    for event in good:
        timestamp = _ms(event.payload["timestamp"])
        assert start_ms <= timestamp <= end_ms
        assert timestamp <= event.received_ms <= end_ms
        if event.late:
            assert event.received_ms - timestamp >= 3_600_000


def test_countries_and_devices_are_valid_with_realistic_weights(good):
    countries = Counter(event.payload["country"] for event in good)
    devices = Counter(event.payload["device_type"] for event in good)
    assert set(countries) <= COUNTRY_CODES
    assert len(countries) >= 10
    assert countries.most_common(1)[0][0] == "US"
    assert set(devices) <= {"desktop", "mobile", "tablet", "other"}
    assert devices.most_common(1)[0][0] == "mobile"
    assert devices["desktop"] > devices["tablet"] > devices["other"] > 0


def test_users_return_over_several_sessions_on_their_usual_device(good):
    """New vs returning matters for dashboards: many users have more than one session."""
    sessions_of: dict[str, set[str]] = defaultdict(set)
    devices_of: dict[str, Counter] = defaultdict(Counter)
    countries_of: dict[str, set[str]] = defaultdict(set)
    for event in good:
        user = event.payload["user_id"]
        sessions_of[user].add(event.payload["session_id"])
        devices_of[user][event.payload["device_type"]] += 1
        countries_of[user].add(event.payload["country"])
    returning = sum(1 for sessions in sessions_of.values() if len(sessions) > 1)
    assert 0.3 <= returning / len(sessions_of) <= 0.9
    assert all(len(countries) == 1 for countries in countries_of.values())
    usual = sum(c.most_common(1)[0][1] for c in devices_of.values()) / len(good)
    assert usual > 0.8


def test_traffic_follows_a_day_night_rhythm(good):
    """The quietest UTC hour has well under the traffic of the busiest one."""
    per_hour = Counter(event.payload["timestamp"][11:13] for event in good)
    assert len(per_hour) == 24
    assert min(per_hour.values()) < 0.6 * max(per_hour.values())


def test_good_events_pass_the_schema_layer(good):
    """Thousands of good events validate, and normalize to what was generated."""
    for event in good[:5000]:
        result = _schema_row(event)
        assert result.errors == [], (event.payload, result.errors)
        assert result.row["timestamp"] == dt.datetime.fromisoformat(
            event.payload["timestamp"].replace("Z", "+00:00")
        )


def _rules() -> list[RuleSpec]:
    """The obvious stored rules of issue 3 (their default names and parameters)."""
    return [
        RuleSpec(1, "revenue", "revenue_matches", "revenue", {"tolerance": 0.01}),
        RuleSpec(
            2,
            "order id",
            "required_if",
            "order_id",
            {"when_field": "event_type", "values": ["purchase"]},
        ),
        RuleSpec(3, "max age", "max_age", "timestamp", {"days": 30}),
        RuleSpec(4, "future", "future_skew", "timestamp", {"seconds": 300}),
        RuleSpec(5, "session", "session_exists", "session_id", {}, "error", {"checkout_start"}),
        RuleSpec(6, "order unique", "unique_per_day", "order_id", {}, "error", {"purchase"}),
        RuleSpec(7, "quantity", "range", "quantity", {"min": 1, "max": 100}),
        RuleSpec(8, "price", "range", "price", {"min": 0.01, "max": 100000}),
        RuleSpec(9, "user max", "max_length", "user_id", {"max": 64}),
    ]


def test_good_events_are_clean_by_the_obvious_stored_rules(good):
    rows = [_schema_row(event).row for event in good]
    ruleset = ruleset_compile(_rules())
    evaluation = ruleset_evaluate(ruleset, rows, received_at=END, facts=MemoryFacts([]))
    failures = [
        (row["event_type"], f) for row, f in zip(rows, evaluation.failures, strict=True) if f
    ]
    assert failures == []


def test_schema_kinds_are_refused_by_the_schema_layer_naming_their_field(events):
    """Every non-rule_only bad event is refused, and the reason names the broken field."""
    bad = [event for event in events if event.kind and not event.rule_only]
    assert len(bad) > 100
    for event in bad:
        result = _schema_row(event)
        assert result.row is None, (event.kind, event.payload)
        fields = {error.field for error in result.errors}
        kind = gen.BAD_KIND_BY_NAME[event.kind]
        if kind.field:
            assert kind.field in fields, (event.kind, fields)
        assert all(fields)


def test_rule_only_kinds_pass_the_schema_but_not_the_rules():
    """rule_only kinds (revenue mismatch, stale timestamp, orphan checkout) are left to the
    stored rules: the schema layer accepts them and the matching rule refuses them."""
    config = _config(events=30_000, bad_rate=0.2)
    sent = list(gen.sample_events(config))
    good_rows = [_schema_row(e).row for e in sent if e.is_good and not e.duplicate]
    rule_only = [event for event in sent if event.rule_only]
    assert {event.kind for event in rule_only} == set(gen.RULE_ONLY_KINDS)
    rows = []
    for event in rule_only:
        result = _schema_row(event)
        assert result.errors == [], (event.kind, result.errors)
        rows.append(result.row)
    ruleset = ruleset_compile(_rules())
    evaluation = ruleset_evaluate(ruleset, rows, received_at=END, facts=MemoryFacts(good_rows))
    expected_rule = {"revenue_mismatch": 1, "stale_timestamp": 3, "orphan_checkout": 5}
    for event, failures in zip(rule_only, evaluation.failures, strict=True):
        assert expected_rule[event.kind] in {rule.id for rule, _ in failures}, event.kind


def test_catalog_is_the_same_for_every_seed_and_priced_like_a_shop():
    assert gen.product_catalog() == gen.product_catalog()
    assert all(product.price_cents % 100 == 99 for product in gen.product_catalog())
    assert len({product.product_id for product in gen.product_catalog()}) == len(
        gen.product_catalog()
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"events": -1},
        {"events": 100_000_001},
        {"days": 0},
        {"bad_rate": 1.5},
        {"end": dt.datetime(2026, 1, 1)},
    ],
)
def test_invalid_configs_are_refused(overrides):
    with pytest.raises(ValueError):
        _config(**overrides)
