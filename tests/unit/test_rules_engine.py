"""The pure rule engine: every rule kind, parameter validation, severities and strict mode.

No database: rules are given as specs and stored events as in-memory facts.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from quality.engine.rules import (
    MemoryFacts,
    NoStoredFacts,
    RuleParamError,
    RuleSpec,
    rule_compile,
    ruleset_compile,
)
from quality.validators import EventValidator
from tests.factories import event_payload, purchase_payload

# Receipt time of every test batch; factory payloads are stamped a minute before "now".
RECEIVED = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)


def spec(kind: str, field: str, params: dict | None = None, **extra) -> RuleSpec:
    return RuleSpec(
        id=extra.pop("id", 7),
        name=extra.pop("name", f"{kind}-{field}"),
        kind=kind,
        field=field,
        params=params or {},
        **extra,
    )


def at(minutes: float = -1) -> str:
    """An event `minutes` from RECEIVED (negative = before)."""
    return (RECEIVED + dt.timedelta(minutes=minutes)).isoformat()


def validate(rules, payloads, *, facts=None, strict=False):
    validator = EventValidator(strict, rules=rules, facts=facts or NoStoredFacts())
    return validator.validate_batch(payloads, received_at=RECEIVED)


def failed(rule: RuleSpec, payload: dict, **kwargs) -> bool:
    result = validate([rule], [payload], **kwargs)[0]
    assert result.row is not None, f"schema refused the test payload: {result.errors}"
    return bool(result.errors)


ROW_CASES = [
    # (rule, payload, should fail)
    (spec("required", "category"), event_payload(category=""), True),
    (spec("required", "category"), event_payload(category="   "), True),
    (spec("required", "category"), event_payload(category="shoes"), False),
    (spec("required", "price"), event_payload(), True),
    (spec("regex", "product_id", {"pattern": "sku_[0-9]+"}), event_payload(product_id="x1"), True),
    (
        spec("regex", "product_id", {"pattern": "sku_[0-9]+"}),
        event_payload(product_id="sku_9"),
        False,
    ),
    (spec("regex", "product_id", {"pattern": "sku"}), event_payload(product_id="my_sku_1"), True),
    (
        spec("regex", "product_id", {"pattern": "sku", "full_match": False}),
        event_payload(product_id="my_sku_1"),
        False,
    ),
    (spec("regex", "product_id", {"pattern": "sku_[0-9]+"}), event_payload(), False),
    (spec("range", "price", {"min": 0.01, "max": 100}), event_payload(price=0), True),
    (spec("range", "price", {"min": 0.01, "max": 100}), event_payload(price=100.01), True),
    (spec("range", "price", {"min": 0.01, "max": 100}), event_payload(price=100), False),
    (spec("range", "price", {"min": 0.01, "max": 100}), event_payload(), False),
    (spec("range", "quantity", {"max": 5}), event_payload(quantity=6), True),
    (spec("range", "quantity", {"min": -1}), event_payload(quantity=-1), False),
    (
        spec("range", "properties.score", {"min": 0, "max": 1}),
        event_payload(properties={"score": "high"}),
        True,
    ),
    (
        spec("range", "properties.score", {"min": 0, "max": 1}),
        event_payload(properties={"score": 0.5}),
        False,
    ),
    (
        spec("allowed_values", "currency", {"values": ["USD", "EUR"]}),
        event_payload(currency="GBP"),
        True,
    ),
    (
        spec("allowed_values", "currency", {"values": ["USD", "EUR"]}),
        event_payload(currency="EUR"),
        False,
    ),
    (spec("allowed_values", "currency", {"values": ["USD"]}), event_payload(), False),
    (
        spec("allowed_values", "properties.tier", {"values": ["a"]}),
        event_payload(properties={"tier": ["a"]}),
        True,
    ),
    (spec("max_length", "search_query", {"max": 5}), event_payload(search_query="sneakers"), True),
    (spec("max_length", "search_query", {"max": 5}), event_payload(search_query="shoes"), False),
    (spec("max_age", "timestamp", {"days": 30}), event_payload(timestamp=at(-31 * 1440)), True),
    (spec("max_age", "timestamp", {"days": 30}), event_payload(timestamp=at(-29 * 1440)), False),
    (spec("future_skew", "timestamp", {"seconds": 60}), event_payload(timestamp=at(2)), True),
    (spec("future_skew", "timestamp", {"seconds": 60}), event_payload(timestamp=at(0.5)), False),
    (spec("revenue_matches", "revenue"), purchase_payload(revenue=199.98), False),
    (spec("revenue_matches", "revenue"), purchase_payload(revenue=150), True),
    (
        spec("revenue_matches", "revenue", {"tolerance": 0.05}),
        purchase_payload(revenue=200.02),
        False,
    ),
    (spec("revenue_matches", "revenue"), purchase_payload(revenue=200.02), True),
    (
        spec("revenue_matches", "revenue", {"relative_tolerance": 0.1}),
        purchase_payload(revenue=210),
        False,
    ),
    (spec("revenue_matches", "revenue"), purchase_payload(price=None, quantity=None), False),
    (
        spec("required_if", "currency", {"when_field": "event_type", "values": ["purchase"]}),
        purchase_payload(currency=""),
        True,
    ),
    (
        spec("required_if", "currency", {"when_field": "event_type", "values": ["purchase"]}),
        event_payload(currency=""),
        False,
    ),
    (
        spec("regex", "properties.plan", {"pattern": "free|pro"}),
        event_payload(properties={"plan": "x"}),
        True,
    ),
]


@pytest.mark.parametrize(("rule", "payload", "should_fail"), ROW_CASES)
def test_row_rule_kinds(rule, payload, should_fail):
    """Each row-level kind fails exactly the events it should (absent values are left to
    `required`), for fields and custom properties alike."""
    assert failed(rule, payload) is should_fail


def _fix_time(payload: dict, minutes: float = -1) -> dict:
    payload["timestamp"] = at(minutes)
    return payload


def test_rule_failure_names_the_rule_and_its_id():
    """The API reports failed stored rules by name, with the rule id."""
    rule = spec("range", "price", {"max": 10}, name="price-cap", id=42)
    result = validate([rule], [_fix_time(event_payload(price=11))])[0]
    assert not result.is_valid
    (error,) = result.errors
    assert (error.field, error.rule, error.rule_id, error.severity) == (
        "price",
        "price-cap",
        42,
        "error",
    )
    assert error.as_dict()["rule"] == "price-cap"
    assert "at most 10" in error.message


def test_warning_accepts_the_event_and_strict_mode_rejects_it():
    """Severity warning: valid with a warning; strict mode treats warnings as errors."""
    rule = spec("allowed_values", "currency", {"values": ["USD"]}, severity="warning")
    payload = _fix_time(event_payload(currency="EUR"))
    lenient = validate([rule], [payload])[0]
    assert lenient.is_valid and [w.rule for w in lenient.warnings] == [rule.name]
    strict = validate([rule], [payload], strict=True)[0]
    assert not strict.is_valid and [e.rule for e in strict.errors] == [rule.name]


def test_rules_apply_only_to_their_event_types():
    rule = spec("required", "category", event_types=frozenset({"product_view"}))
    page_view, product_view = validate(
        [rule],
        [
            _fix_time(event_payload()),
            _fix_time(event_payload(event_type="product_view", product_id="p")),
        ],
    )
    assert page_view.is_valid and not product_view.is_valid


def test_schema_errors_skip_the_rules():
    """An event the schema layer refused is not judged by rules (its row does not exist)."""
    rule = spec("required", "category")
    result = validate([rule], [event_payload(country="XX")])[0]
    assert result.row is None
    assert [e.rule for e in result.errors] == ["format"]


def test_readme_python_api_without_rules():
    """The original README's API works as a pure function (no stored rules given)."""
    result = EventValidator(strict_mode=True, rules=[]).validate_event(event_payload())
    assert result.is_valid and result.errors == [] and result.warnings == []


# --- batch rules -------------------------------------------------------------------------------

SESSION_RULE = spec(
    "session_exists", "session_id", {"lookback_days": 7}, event_types=frozenset({"checkout_start"})
)


def checkout(session: str, minutes: float = -1) -> dict:
    return _fix_time(event_payload(event_type="checkout_start", session_id=session), minutes)


def test_session_exists_fails_for_an_unknown_session():
    assert not validate([SESSION_RULE], [checkout("s-new")])[0].is_valid


def test_session_exists_passes_with_an_earlier_event_in_the_batch_in_any_order():
    """Earlier by event time, not by position: clients may batch out of order."""
    earlier_view = _fix_time(event_payload(session_id="s1"), -5)
    results = validate([SESSION_RULE], [checkout("s1", -1), earlier_view])
    assert all(result.is_valid for result in results)


def test_session_exists_fails_when_the_only_other_event_is_later():
    later_view = _fix_time(event_payload(session_id="s1"), -0.5)
    results = validate([SESSION_RULE], [checkout("s1", -1), later_view])
    assert not results[0].is_valid


def test_session_exists_passes_with_a_stored_session_within_the_lookback():
    stored = [{"session_id": "s2", "timestamp": RECEIVED - dt.timedelta(days=1)}]
    old = [{"session_id": "s3", "timestamp": RECEIVED - dt.timedelta(days=30)}]
    facts = MemoryFacts(stored + old)
    ok, too_old = validate([SESSION_RULE], [checkout("s2"), checkout("s3")], facts=facts)
    assert ok.is_valid and not too_old.is_valid


ORDER_RULE = spec("unique_per_day", "order_id", event_types=frozenset({"purchase"}))


def test_unique_per_day_rejects_the_second_use_in_a_batch():
    first = _fix_time(purchase_payload(order_id="o-1"))
    second = _fix_time(purchase_payload(order_id="o-1"), -2)
    results = validate([ORDER_RULE], [first, second])
    assert results[0].is_valid and not results[1].is_valid
    assert "already used" in results[1].errors[0].message


def test_unique_per_day_ignores_a_resent_event_id():
    """A repeat of the same event is a duplicate (deduped by event_id), not a second order."""
    first = _fix_time(purchase_payload(order_id="o-2"))
    results = validate([ORDER_RULE], [first, dict(first)])
    assert all(result.is_valid for result in results)
    stored = [
        {
            "order_id": "o-2",
            "event_type": "purchase",
            "timestamp": RECEIVED - dt.timedelta(minutes=1),
            "event_id": first["event_id"],
        }
    ]
    assert validate([ORDER_RULE], [first], facts=MemoryFacts(stored))[0].is_valid


def test_unique_per_day_uses_stored_events_of_the_same_utc_day_only():
    def stored(order_id: str, days_ago: float) -> dict:
        return {
            "order_id": order_id,
            "event_type": "purchase",
            "timestamp": RECEIVED - dt.timedelta(days=days_ago),
            "event_id": str(uuid.uuid4()),
        }

    facts = MemoryFacts([stored("o-3", 0.01), stored("o-4", 1)])
    same_day, other_day = validate(
        [ORDER_RULE],
        [_fix_time(purchase_payload(order_id="o-3")), _fix_time(purchase_payload(order_id="o-4"))],
        facts=facts,
    )
    assert not same_day.is_valid and other_day.is_valid


def test_batch_rules_on_an_empty_batch_and_without_targets():
    assert validate([ORDER_RULE, SESSION_RULE], []) == []
    assert validate([ORDER_RULE, SESSION_RULE], [_fix_time(event_payload())])[0].is_valid


def test_evaluated_counts_per_rule_for_the_counters():
    rule = spec("required", "category", event_types=frozenset({"page_view"}), id=3)
    results = validate([rule, ORDER_RULE], [_fix_time(event_payload()), _fix_time(event_payload())])
    assert results.evaluated == {3: 2, ORDER_RULE.id: 0}


@pytest.mark.parametrize("batch_size", [1, 7])
def test_evaluated_counts_match_each_rules_event_types(batch_size):
    """Each rule's checked count is the number of events of its types, for single events and
    batches alike, row and batch rules, typed and untyped; duplicate ids (unsaved specs) count
    as the last rule of that id, as before."""
    rules = [
        spec("required", "category", event_types=frozenset({"page_view"}), id=3),
        spec("max_length", "page_url", {"max": 500}, id=4),
        spec("required", "product_id", event_types=frozenset({"product_view", "search"}), id=5),
        ORDER_RULE,  # id 7
        spec("session_exists", "session_id", {"lookback_days": 7}, id=8),
    ]
    kinds = ["page_view", "product_view", "search", "purchase"]
    payloads = [
        _fix_time(event_payload(event_type=kinds[n % len(kinds)], search_query="q"))
        for n in range(batch_size)
    ]
    results = validate(rules, payloads, facts=MemoryFacts([]))
    ruleset = ruleset_compile(rules)
    types = [row["event_type"] for row in (result.row for result in results) if row is not None]
    expected = {
        rule.id: sum(1 for event_type in types if event_type in rule.types)
        for rule in ruleset.rules
    }
    assert results.evaluated == expected
    assert ruleset.rule_ids_by_type is not None  # ids are unique: counted by event type
    twins = [
        spec("max_length", "page_url", {"max": 500}, id=9),
        spec("required", "category", event_types=frozenset({"page_view"}), id=9),
    ]
    page_views = sum(1 for event_type in types if event_type == "page_view")
    assert validate(twins, payloads).evaluated == {9: page_views}


# --- parameter validation ------------------------------------------------------------------------

BAD_SPECS = [
    (spec("regex", "product_id", {"pattern": "("}), "Invalid regular expression"),
    (spec("regex", "product_id", {}), "pattern"),
    (spec("range", "price", {"min": 10, "max": 1}), "must not be greater"),
    (spec("range", "price", {}), "Give 'min', 'max' or both"),
    (spec("range", "price", {"min": "cheap"}), "must be a number"),
    (spec("allowed_values", "currency", {"values": []}), "non-empty list"),
    (spec("max_length", "search_query", {"max": -1}), "whole number"),
    (spec("max_age", "timestamp", {"days": 0}), "greater than 0"),
    (spec("max_age", "country", {"days": 3}), "time field"),
    (spec("future_skew", "timestamp", {"seconds": -5}), "0 or more"),
    (spec("required", "colour"), "Unknown field"),
    (spec("required", "price", {"extra": 1}), "Unknown parameter"),
    (spec("teleport", "price"), "Unknown kind"),
    (spec("required", "price", event_types=frozenset({"login"})), "Unknown event types"),
    (spec("session_exists", "user_id"), "session_id"),
    (spec("unique_per_day", "price"), "text field"),
    (spec("required_if", "currency", {"when_field": "nope", "values": ["x"]}), "Unknown field"),
    (spec("revenue_matches", "revenue", {"tolerance": -1}), "0 or more"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_SPECS)
def test_invalid_rule_parameters_are_refused_at_compile_time(bad, message):
    """A bad rule is a clear error when saved, never a crash at ingestion."""
    with pytest.raises(RuleParamError, match=message):
        rule_compile(bad)


def test_ruleset_compile_skips_a_broken_rule_and_keeps_the_rest():
    """A rule broken by a hand edit in the database must not stop ingestion."""
    ruleset = ruleset_compile(
        [spec("regex", "product_id", {"pattern": "("}), spec("required", "category")]
    )
    assert [rule.spec.kind for rule in ruleset.rules] == ["required"]
    assert len(ruleset.rules_for("page_view")) == 1


def test_session_exists_two_events_at_the_same_instant_do_not_vouch_for_each_other():
    """Same timestamp: the first by position counts as earlier, the second passes."""
    first, second = checkout("s9"), checkout("s9")
    second["timestamp"] = first["timestamp"]
    results = validate([SESSION_RULE], [first, second])
    assert [r.is_valid for r in results] == [False, True]


class _NoLookups(NoStoredFacts):
    def sessions_existing(self, session_ids, since):
        raise AssertionError("no stored lookup expected")


def test_session_exists_skips_the_lookup_when_the_batch_vouches_for_every_session():
    """Sessions that show up earlier in the batch need no query to stored events."""
    view = _fix_time(event_payload(session_id="s10"), -5)
    results = validate([SESSION_RULE], [view, checkout("s10")], facts=_NoLookups())
    assert all(result.is_valid for result in results)
