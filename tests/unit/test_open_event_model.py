"""The open event model without a database (ADR 0014): any printable name is an event, null
means absent, one of user_id and anonymous_id identifies the sender, device type and country
are derived from real User-Agents and real IPs, and a timestamp without offset is a warning."""

from __future__ import annotations

import datetime as dt

import pytest

from events.derivation import (
    ClientContext,
    country_from_ip,
    device_type_from_user_agent,
    row_derive,
)
from events.schema import (
    EVENT_NAME_MAX_CHARS,
    ROW_DEFAULTS,
    UNKNOWN_COUNTRY,
    validate_event_schema,
)
from events.validation import event_schema_results
from quality.engine.rules import RuleSpec, ruleset_compile, ruleset_evaluate

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
SKEW = dt.timedelta(minutes=5)

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def minimal(**overrides):
    """What an SDK sends at the least: id, name, time and who."""
    payload = {
        "event_id": "123e4567-e89b-12d3-a456-426614174000",
        "event_type": "newsletter_signup",
        "timestamp": "2024-06-01T11:59:00Z",
        "anonymous_id": "anon-1",
    }
    payload.update(overrides)
    return payload


def validate(payload):
    return validate_event_schema(payload, received_at=NOW, max_future_skew=SKEW)


def pairs(result) -> set[tuple[str, str]]:
    return {(error.field, error.rule) for error in result.errors}


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["newsletter_signup", "Order Completed", "$pageview", "video.play", "Ä-ß 注文", "x" * 128],
)
def test_any_bounded_printable_name_is_a_custom_event(name):
    """A custom event needs no product fields; its name is stored as sent."""
    result = validate(minimal(event_type=name))
    assert result.errors == []
    assert result.row["event_type"] == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "min_length"),
        ("x" * (EVENT_NAME_MAX_CHARS + 1), "max_length"),
        ("tab\there", "printable"),
        ("new\nline", "printable"),
        (" padded", "printable"),
        ("padded ", "printable"),
        ("bell\x07", "printable"),
        ("nul\x00", "printable"),
        ("c1\x85", "printable"),
        (7, "string"),
        (None, "string"),
    ],
)
def test_names_that_are_not_bounded_printable_text_are_refused(name, rule):
    assert pairs(validate(minimal(event_type=name))) == {("event_type", rule)}


def test_the_seven_types_keep_their_field_requirements():
    assert pairs(validate(minimal(event_type="purchase"))) == {
        ("order_id", "required"),
        ("revenue", "required"),
    }
    assert pairs(validate(minimal(event_type="search"))) == {("search_query", "required")}


# --- identity and absent fields --------------------------------------------------------------


def test_anonymous_id_alone_identifies_the_sender():
    row = validate(minimal()).row
    assert row["anonymous_id"] == "anon-1" and row["user_id"] == ""


@pytest.mark.parametrize(
    "identity",
    [{}, {"user_id": None}, {"user_id": "", "anonymous_id": ""}, {"anonymous_id": None}],
)
def test_an_event_without_user_id_or_anonymous_id_is_refused(identity):
    payload = minimal(**identity)
    payload.pop("anonymous_id", None) if "anonymous_id" not in identity else None
    assert pairs(validate(payload)) == {("user_id", "required")}


OPTIONAL_FIELDS = [
    "sent_at",
    "session_id",
    "device_type",
    "country",
    "page_url",
    "referrer",
    "product_id",
    "category",
    "price",
    "quantity",
    "currency",
    "order_id",
    "revenue",
    "search_query",
    "properties",
    "user_id",
]


@pytest.mark.parametrize("name", OPTIONAL_FIELDS)
def test_null_in_an_optional_field_means_absent(name):
    """null is accepted where the field may be left out, and stored as if it were."""
    with_null = validate(minimal(**{name: None}))
    without = validate(minimal())
    assert with_null.errors == []
    assert with_null.row == without.row
    if name in ROW_DEFAULTS:
        assert with_null.row[name] == ROW_DEFAULTS[name]


def test_session_device_and_country_may_be_left_out_and_are_then_empty_until_derived():
    row = validate(minimal()).row
    assert (row["session_id"], row["device_type"], row["country"]) == ("", "", "")


# --- the timestamp warning --------------------------------------------------------------------


def test_a_timestamp_without_offset_is_taken_as_utc_with_a_warning():
    result = validate(minimal(timestamp="2024-06-01T11:59:00"))
    assert result.errors == []
    assert result.row["timestamp"] == dt.datetime(2024, 6, 1, 11, 59, tzinfo=dt.UTC)
    assert [(w.field, w.rule, w.severity) for w in result.warnings] == [
        ("timestamp", "utc_offset", "warning")
    ]
    assert validate(minimal(timestamp="2024-06-01T13:59:00+02:00")).warnings == []


# --- derivation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (IPHONE, "mobile"),
        (ANDROID_PHONE, "mobile"),
        (IPAD, "tablet"),
        (ANDROID_TABLET, "tablet"),
        (WINDOWS_CHROME, "desktop"),
        (MAC_SAFARI, "desktop"),
        (LINUX_FIREFOX, "desktop"),
        (GOOGLEBOT, "other"),
        ("python-requests/2.32", "other"),
        ("", "other"),
    ],
)
def test_device_type_from_real_user_agents(user_agent, device):
    assert device_type_from_user_agent(user_agent) == device


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),
        ("81.2.69.160", "GB"),
        ("177.0.0.1", "BR"),
        ("10.0.0.1", UNKNOWN_COUNTRY),
        ("127.0.0.1", UNKNOWN_COUNTRY),
        ("192.168.1.20", UNKNOWN_COUNTRY),
        ("not an ip", UNKNOWN_COUNTRY),
        ("", UNKNOWN_COUNTRY),
        (None, UNKNOWN_COUNTRY),
    ],
)
def test_country_from_real_ips_of_the_offline_data(ip, country):
    assert country_from_ip(ip) == country


def test_derived_fields_are_recorded_and_explicit_values_win():
    derived = validate(minimal()).row
    row_derive(derived, ClientContext(IPHONE, "81.2.69.160"))
    assert (derived["device_type"], derived["country"]) == ("mobile", "GB")
    assert derived["derived"] == ["device_type", "country", "session_id"]

    sent = validate(minimal(device_type="tablet", country="DE", session_id="s1")).row
    row_derive(sent, ClientContext(IPHONE, "81.2.69.160"))
    assert (sent["device_type"], sent["country"], sent["derived"]) == ("tablet", "DE", [])


def test_per_event_contexts_override_the_batch_context():
    """A protocol passes one context per message (Segment's context.userAgent and ip)."""
    events = [minimal(), minimal(event_id="223e4567-e89b-12d3-a456-426614174000")]
    results = event_schema_results(
        events,
        received_at=NOW,
        max_future_skew=SKEW,
        contexts=[ClientContext(WINDOWS_CHROME, "8.8.8.8"), None],
    )
    assert [(r.row["device_type"], r.row["country"]) for r in results] == [
        ("desktop", "US"),
        ("other", UNKNOWN_COUNTRY),
    ]


# --- rules on custom events --------------------------------------------------------------------


def _rule(kind, field, params, severity="error", event_types=()):
    return RuleSpec(1, "allowed-event-names", kind, field, params, severity, frozenset(event_types))


def _failures(ruleset, rows):
    return [
        [rule.spec.name for rule, _ in failures]
        for failures in ruleset_evaluate(ruleset, rows, received_at=NOW, facts=None).failures
    ]


def test_an_allowed_names_rule_closes_the_taxonomy():
    """allowed_values on event_type, for all types, refuses every name not listed."""
    ruleset = ruleset_compile(
        [_rule("allowed_values", "event_type", {"values": ["page_view", "newsletter_signup"]})]
    )
    rows = [
        validate(minimal(event_type=name)).row
        for name in ("page_view", "newsletter_signup", "wishlist_add")
    ]
    assert _failures(ruleset, rows) == [[], [], ["allowed-event-names"]]


def test_rules_for_all_types_apply_to_custom_events_and_typed_rules_do_not():
    everyone = _rule("required", "page_url", {})
    purchases = RuleSpec(2, "page-on-purchase", "required", "page_url", {}, "error", {"purchase"})
    ruleset = ruleset_compile([everyone, purchases])
    row = validate(minimal(event_type="video_play")).row
    assert _failures(ruleset, [row]) == [["allowed-event-names"]]
