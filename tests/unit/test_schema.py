"""The schema layer on its own (no database): normalized rows, every rule by name, and the
inputs that used to crash validators (deep nesting, surrogates, huge numbers, NUL)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import orjson
import pytest

from events.schema import (
    MAX_ERRORS_PER_EVENT,
    ROW_DEFAULTS,
    text_safe,
    validate_event_schema,
)

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
SKEW = dt.timedelta(minutes=5)


def event(**overrides):
    payload = {
        "event_id": "123e4567-e89b-12d3-a456-426614174000",
        "event_type": "page_view",
        "timestamp": "2024-06-01T11:59:00Z",
        "user_id": "user_12345",
        "session_id": "session_67890",
        "page_url": "/products/laptop",
        "device_type": "desktop",
        "country": "US",
    }
    payload.update(overrides)
    return payload


def validate(payload):
    return validate_event_schema(payload, received_at=NOW, max_future_skew=SKEW)


def pairs(result) -> set[tuple[str, str]]:
    return {(error.field, error.rule) for error in result.errors}


def test_readme_event_becomes_a_complete_row():
    """A valid event yields every Event field: defaults filled, UTC times, receipt time."""
    result = validate(event())
    assert result.errors == []
    row = result.row
    assert set(ROW_DEFAULTS) <= set(row)
    assert row["event_id"] == uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
    assert row["timestamp"] == dt.datetime(2024, 6, 1, 11, 59, tzinfo=dt.UTC)
    assert row["client_timestamp"] == row["timestamp"]
    assert row["received_at"] == NOW
    assert row["properties"] == {} and row["price"] is None and row["referrer"] == ""
    assert "sent_at" not in row
    orjson.dumps(row, default=str)  # storable as the JSON document the insert sends


def test_rows_do_not_share_the_default_properties_dict():
    first, second = validate(event()).row, validate(event()).row
    first["properties"]["x"] = 1
    assert second["properties"] == {}


def test_money_is_exact_decimal():
    row = validate(event(event_type="purchase", order_id="o1", revenue="19.99", price=9.99)).row
    assert row["revenue"] == Decimal("19.99") and row["price"] == Decimal("9.99")


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2024-06-01T10:30:00", dt.datetime(2024, 6, 1, 10, 30, tzinfo=dt.UTC)),
        ("2024-06-01T12:30:00+02:00", dt.datetime(2024, 6, 1, 10, 30, tzinfo=dt.UTC)),
        ("2024-06-01T05:30:00-05:00", dt.datetime(2024, 6, 1, 10, 30, tzinfo=dt.UTC)),
        ("2024-06-01T10:30:00.250Z", dt.datetime(2024, 6, 1, 10, 30, 0, 250000, tzinfo=dt.UTC)),
    ],
)
def test_timestamps_are_normalized_to_utc(timestamp, expected):
    row = validate(event(timestamp=timestamp)).row
    assert row["timestamp"] == expected
    assert row["timestamp"].utcoffset() == dt.timedelta(0)


def test_sent_at_skew_correction():
    """timestamp = received_at - (sent_at - timestamp); client_timestamp keeps the raw one."""
    result = validate(
        event(timestamp="2024-06-01T14:59:50+01:00", sent_at="2024-06-01T15:00:00+01:00")
    )
    assert result.row["timestamp"] == NOW - dt.timedelta(seconds=10)
    assert result.row["client_timestamp"] == dt.datetime(2024, 6, 1, 13, 59, 50, tzinfo=dt.UTC)


def test_future_limit_applies_after_skew_correction():
    ahead = (NOW + dt.timedelta(minutes=6)).isoformat()
    assert pairs(validate(event(timestamp=ahead))) == {("timestamp", "not_in_future")}
    corrected = validate(
        event(timestamp=ahead, sent_at=(NOW + dt.timedelta(minutes=7)).isoformat())
    )
    assert corrected.errors == []
    assert corrected.row["timestamp"] == NOW - dt.timedelta(minutes=1)


def test_dates_at_the_edge_of_the_calendar_are_refused_not_crashing():
    result = validate(event(timestamp="9999-12-31T23:59:59-05:00"))
    assert pairs(result) == {("timestamp", "iso8601")}


@pytest.mark.parametrize("year", ["0001", "9999"])
def test_years_outside_the_documented_range_are_refused_whatever_the_offset(year):
    """The OpenAPI pattern allows years 0002 to 9998: the validator refuses the same."""
    assert pairs(validate(event(timestamp=f"{year}-06-01T00:00:00Z"))) == {("timestamp", "iso8601")}
    assert pairs(validate(event(sent_at=f"{year}-06-01T00:00:00Z"))) == {("sent_at", "iso8601")}
    assert validate(event(timestamp="0002-01-01T00:00:00+23:59")).errors == []


def test_a_sent_at_correction_out_of_the_calendar_is_refused_by_a_runtime_rule():
    behind = validate(event(timestamp="0002-01-01T00:00:00Z", sent_at="9998-01-01T00:00:00Z"))
    assert pairs(behind) == {("timestamp", "date_range")}
    ahead = validate(event(timestamp="9998-01-01T00:00:00Z", sent_at="0002-01-01T00:00:00Z"))
    assert pairs(ahead) == {("timestamp", "not_in_future")}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"event_type": "purchase"}, {("order_id", "required"), ("revenue", "required")}),
        ({"event_type": "add_to_cart"}, {("product_id", "required"), ("quantity", "required")}),
        ({"event_type": "add_to_cart", "product_id": "p", "quantity": 0}, {("quantity", "range")}),
        (
            {"event_type": "remove_from_cart", "product_id": "p", "quantity": -1},
            {("quantity", "range")},
        ),
        ({"event_type": "product_view"}, {("product_id", "required")}),
        ({"event_type": "search", "search_query": ""}, {("search_query", "required")}),
        ({"event_type": "refund\n"}, {("event_type", "printable")}),
        ({"event_type": "x" * 129}, {("event_type", "max_length")}),
        ({"device_type": "Mobile"}, {("device_type", "allowed_values")}),
        ({"country": "XX"}, {("country", "format")}),
        ({"country": "USA"}, {("country", "max_length")}),
        ({"currency": "usd"}, {("currency", "format")}),
        ({"event_id": "123"}, {("event_id", "uuid")}),
        ({"timestamp": "soon"}, {("timestamp", "iso8601")}),
        ({"user_id": ""}, {("user_id", "required")}),
        ({"user_id": 12}, {("user_id", "string")}),
        ({"session_id": "a\x00"}, {("session_id", "no_nul_bytes")}),
        ({"price": -0.01}, {("price", "range")}),
        ({"price": 1e11}, {("price", "range")}),
        ({"price": 0.001}, {("price", "decimal_places")}),
        ({"price": float("inf")}, {("price", "finite_number")}),
        ({"price": float("nan")}, {("price", "finite_number")}),
        ({"quantity": True}, {("quantity", "integer")}),
        ({"quantity": 100_001}, {("quantity", "range")}),
        ({"properties": "x"}, {("properties", "object")}),
        ({"utm": "x"}, {("utm", "unknown_field")}),
    ],
)
def test_each_rule_is_named(overrides, expected):
    payload = event(**overrides)
    assert pairs(validate(payload)) == expected


def test_missing_required_fields_are_each_named():
    """session_id, device_type and country are derived when absent; user_id is required only
    without anonymous_id, checked once the types pass (test_open_event_model.py)."""
    result = validate({"event_type": "page_view"})
    assert pairs(result) == {(name, "required") for name in ("event_id", "timestamp")}


@pytest.mark.parametrize("payload", [None, 1, "x", [], [event()], True])
def test_non_objects_are_refused(payload):
    assert pairs(validate(payload)) == {("event", "object")}


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


@pytest.mark.parametrize("depth", [6, 100, 5_000])
def test_deep_properties_are_refused_without_recursion(depth):
    """5,000 levels (deeper than Python's recursion limit) is a rule error, not a crash."""
    result = validate(event(properties=nested(depth)))
    assert {rule for _, rule in pairs(result)} == {"max_depth"}


def test_properties_bounds():
    assert validate(event(properties=nested(5))).errors == []
    too_many = {f"k{n}": n for n in range(101)}
    assert pairs(validate(event(properties=too_many))) == {("properties", "max_keys")}
    too_big = {"blob": "x" * 9000}
    assert pairs(validate(event(properties=too_big))) == {("properties", "max_size")}
    assert pairs(validate(event(properties={"a": [1, {"b": "\x00"}]}))) == {
        ("properties", "no_nul_bytes")
    }
    assert pairs(validate(event(properties={"a": float("inf")}))) == {
        ("properties", "finite_number")
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user_id": "\ud800"}, "user_id"),
        ({"event_id": "\udfff"}, "event_id"),
        ({"properties": {"k": ["ok", "\ud83d"]}}, "properties.k.1"),
        ({"properties": {"\ud800": 1}}, "properties.\\ud800"),
    ],
)
def test_lone_surrogates_are_refused_with_a_printable_field(overrides, field):
    result = validate(event(**overrides))
    assert (field, "valid_unicode") in pairs(result)
    for error in result.errors:
        error.field.encode("utf-8")  # every name is valid UTF-8
        error.message.encode("utf-8")


@pytest.mark.parametrize("name", ["quantity", "price"])
def test_integers_beyond_64_bits_are_refused(name):
    assert pairs(validate(event(**{name: 10**30}))) == {(name, "range")}


def test_error_count_is_bounded():
    result = validate(event(**{f"x{n}": n for n in range(300)}))
    assert len(result.errors) == MAX_ERRORS_PER_EVENT + 1
    assert result.errors[-1].rule == "max_errors"


def test_errors_never_echo_nul_or_huge_input():
    key = "\x00" + "k" * 50_000
    result = validate(event(**{key: 1}))
    (error,) = result.errors
    assert "\x00" not in error.field and len(error.field) < 100
    json.dumps([e.as_dict() for e in result.errors])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("plain", "plain"), ("a\x00b", "a\\x00b"), ("\ud800", "\\ud800"), ("x" * 80, "x" * 64 + "…")],
)
def test_text_safe(value, expected):
    assert text_safe(value) == expected


def test_numbers_beyond_64_bits_in_properties_are_refused():
    """orjson reads 10**30 as a float; storing it would silently drop digits."""
    assert pairs(validate(event(properties={"id": 1e30}))) == {("properties", "range")}
    assert pairs(validate(event(properties={"id": 10**30}))) == {("properties.id", "range")}
    assert validate(event(properties={"ratio": 1.5e18, "n": 2**63})).errors == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("C:\\temp", set()),  # escaped, but no NUL
        ('say "hi"\n', set()),
        ("tab\tthen \x00", {("properties", "no_nul_bytes")}),  # a NUL after other escapes
        ("\x00", {("properties", "no_nul_bytes")}),
    ],
)
def test_properties_nul_is_found_among_other_escapes(value, expected):
    """The NUL check's shortcut (JSON without a backslash has no escape) refuses every NUL
    and only NULs."""
    assert pairs(validate(event(properties={"note": value}))) == expected
