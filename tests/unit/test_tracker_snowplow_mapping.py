"""Snowplow tracker-protocol events to our events, without a database: page views, structured
and self-describing events (the e-commerce actions), base64 contexts, times, and events with
missing and unexpected fields."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from trackers.snowplow import (
    COOKIELESS_USER,
    SnowplowBodyError,
    snowplow_body_events,
    snowplow_event_map,
    snowplow_key,
)

EID = "f03f32b7-af86-4569-9fed-44a60c3230f3"
ECOM = "iglu:com.snowplowanalytics.snowplow.ecommerce"


def utc(text: str) -> dt.datetime:
    """The mapping hands times over as aware UTC datetimes (epoch milliseconds, converted)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def unstruct(schema, data):
    envelope = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
    return {"schema": envelope, "data": {"schema": schema, "data": data}}


def contexts(*entities):
    envelope = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"
    return {"schema": envelope, "data": [{"schema": s, "data": d} for s, d in entities]}


def event(**fields):
    base = {
        "e": "pv",
        "eid": EID,
        "dtm": "1767607200000",  # 2026-01-05T10:00:00Z
        "stm": "1767607205000",
        "aid": "KEY",
        "tna": "ns",
        "tv": "py-1.1.0",
        "p": "pc",
        "url": "https://shop.example/p/1",
        "refr": "https://search.example/",
        "uid": "user-1",
        "duid": "anon-1",
        "sid": "sess-1",
    }
    return base | fields


def test_body_must_be_payload_data():
    body = {"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"}
    assert snowplow_body_events(body | {"data": [event()]}) == [event()]
    for bad, field in (
        ({"data": []}, "schema"),
        (body | {"data": {}}, "data"),
        ([event()], "body"),
    ):
        with pytest.raises(SnowplowBodyError) as refused:
            snowplow_body_events(bad)
        assert refused.value.field == field


def test_key_is_the_app_id():
    assert snowplow_key([{"e": "pv"}, event(aid="K2")]) == "K2"
    assert snowplow_key([{"e": "pv"}]) is None


def test_page_view_maps_ids_page_and_times():
    """dtm is the event time, stm the send time: the ingestion service corrects the skew."""
    mapped = snowplow_event_map(event())
    payload = mapped.payload
    assert payload["event_type"] == "page_view"
    assert payload["event_id"] == EID == mapped.foreign_id
    assert payload["timestamp"] == utc("2026-01-05T10:00:00")
    assert payload["sent_at"] == utc("2026-01-05T10:00:05")
    assert (payload["user_id"], payload["anonymous_id"], payload["session_id"]) == (
        "user-1",
        "anon-1",
        "sess-1",
    )
    assert payload["device_type"] == "desktop"
    assert payload["page_url"] == "https://shop.example/p/1"
    assert "properties" not in payload  # the tracker's name and version: the original's (ADR 0044)
    assert mapped.errors == []


def test_tracker_fields_no_column_takes_stay_in_properties_but_its_name_and_version_do_not():
    """`tv`/`tna` say which tracker sent the event, like Segment's `context.library`: they are
    in the kept original only (ADR 0044). A browser's own fields (`res`, `lang`) stay."""
    mapped = snowplow_event_map(event(res="1920x1080", lang="de-DE"))
    assert mapped.payload["properties"] == {"res": "1920x1080", "lang": "de-DE"}
    assert (mapped.original["tv"], mapped.original["tna"]) == ("py-1.1.0", "ns")


def test_an_event_without_any_user_gets_the_cookieless_anonymous_id():
    bare = {k: v for k, v in event().items() if k not in ("uid", "duid")}
    assert snowplow_event_map(bare).payload["anonymous_id"] == COOKIELESS_USER
    assert "anonymous_id" not in snowplow_event_map(event(duid=None)).payload


def test_true_timestamp_is_taken_without_skew_correction():
    payload = snowplow_event_map(event(ttm="1767600000000")).payload
    assert payload["timestamp"] == utc("2026-01-05T08:00:00") and "sent_at" not in payload


def test_web_platform_leaves_device_to_the_user_agent_and_overrides_are_kept():
    mapped = snowplow_event_map(event(p="web", ua="Mozilla/5.0 (iPhone)", ip="203.0.113.9"))
    assert "device_type" not in mapped.payload
    assert (mapped.user_agent, mapped.ip) == ("Mozilla/5.0 (iPhone)", "203.0.113.9")


def test_structured_event_is_named_by_its_action():
    payload = snowplow_event_map(
        event(e="se", se_ca="shop", se_ac="newsletter_signup", se_la="footer", se_va="3")
    ).payload
    assert payload["event_type"] == "newsletter_signup"
    # The action is the event_type: it leaves properties (ADR 0043); the rest stays.
    assert payload["properties"] == {"ca": "shop", "la": "footer", "va": "3"}


def product(**fields):
    return (f"{ECOM}/product/jsonschema/1-0-0", {"id": "sku-1", "price": 9.5} | fields)


@pytest.mark.parametrize("encoded", [True, False], ids=["base64", "json"])
def test_ecommerce_add_to_cart_from_action_and_product_entity(encoded):
    action = unstruct(f"{ECOM}/snowplow_ecommerce_action/jsonschema/1-0-2", {"type": "add_to_cart"})
    cx = contexts(product(quantity=2, currency="USD", category="shoes"))
    fields = (
        {"ue_px": b64(action), "cx": b64(cx)}
        if encoded
        else {"ue_pr": json.dumps(action), "co": json.dumps(cx)}
    )
    payload = snowplow_event_map(event(e="ue", **fields)).payload
    assert payload["event_type"] == "add_to_cart"
    assert (payload["product_id"], payload["price"], payload["quantity"]) == ("sku-1", 9.5, 2)
    assert (payload["currency"], payload["category"]) == ("USD", "shoes")
    # Every field of the only product and the action's type went to columns (ADR 0043).
    assert "properties" not in payload


def test_a_product_keeps_in_properties_only_what_no_column_holds():
    """The first product's mapped fields leave it, its others stay; later products stay whole;
    a field that could not fill its column stays too."""
    action = unstruct(f"{ECOM}/snowplow_ecommerce_action/jsonschema/1-0-2", {"type": "add_to_cart"})
    first = product(name="Red shoe", brand="Acme", category=["not", "text"])
    second = product(id="sku-2")
    payload = snowplow_event_map(
        event(e="ue", ue_px=b64(action), cx=b64(contexts(first, second)))
    ).payload
    assert (payload["product_id"], payload["price"], payload["quantity"]) == ("sku-1", 9.5, 1)
    assert "category" not in payload
    assert payload["properties"]["products"] == [
        {"name": "Red shoe", "brand": "Acme", "category": ["not", "text"]},
        {"id": "sku-2", "price": 9.5},
    ]


def test_ecommerce_transaction_is_a_purchase_with_order_and_revenue():
    action = unstruct(f"{ECOM}/snowplow_ecommerce_action/jsonschema/1-0-2", {"type": "transaction"})
    transaction = (
        f"{ECOM}/transaction/jsonschema/1-0-0",
        {"transaction_id": "o-9", "revenue": 120.456, "currency": "EUR", "payment_method": "card"},
    )
    payload = snowplow_event_map(
        event(e="ue", ue_px=b64(action), cx=b64(contexts(transaction, product())))
    ).payload
    assert payload["event_type"] == "purchase"
    assert (payload["order_id"], payload["revenue"], payload["currency"]) == ("o-9", 120.46, "EUR")
    assert payload["properties"]["products"][0]["id"] == "sku-1"


def test_checkout_steps_after_the_first_are_custom():
    action = unstruct(
        f"{ECOM}/snowplow_ecommerce_action/jsonschema/1-0-2", {"type": "checkout_step"}
    )
    step = lambda n: contexts((f"{ECOM}/checkout_step/jsonschema/1-0-0", {"step": n}))  # noqa: E731
    first = snowplow_event_map(event(e="ue", ue_px=b64(action), cx=b64(step(1)))).payload
    later = snowplow_event_map(event(e="ue", ue_px=b64(action), cx=b64(step(2)))).payload
    assert (first["event_type"], later["event_type"]) == ("checkout_start", "checkout_step")


def test_site_search_and_other_schemas():
    search = unstruct("iglu:com.snowplowanalytics.snowplow/site_search/jsonschema/1-0-0", {})
    search["data"]["data"] = {"terms": ["red", "shoes"]}
    payload = snowplow_event_map(event(e="ue", ue_px=b64(search))).payload
    assert (payload["event_type"], payload["search_query"]) == ("search", "red shoes")
    # The terms are search_query and the schema is the event_type: neither stays (ADR 0043).
    assert "properties" not in payload
    click = unstruct("iglu:com.acme/video_played/jsonschema/1-0-0", {"seconds": 12})
    payload = snowplow_event_map(event(e="ue", ue_pr=json.dumps(click))).payload
    assert payload["event_type"] == "video_played" and payload["properties"]["seconds"] == 12
    assert payload["properties"]["schema"] == "iglu:com.acme/video_played/jsonschema/1-0-0"


def test_events_of_one_self_describing_text_do_not_share_their_properties():
    """`ue_px` is decoded once per distinct text: a change to one event's payload does not
    reach the next event sent with the same text."""
    search = unstruct("iglu:com.snowplowanalytics.snowplow/site_search/jsonschema/1-0-0", {})
    search["data"]["data"] = {"terms": ["tent"], "filters": {"size": "2"}}
    first = snowplow_event_map(event(e="ue", ue_px=b64(search))).payload
    first["properties"]["filters"] = "changed"
    first["properties"]["extra"] = 1
    second = snowplow_event_map(event(e="ue", ue_px=b64(search))).payload
    assert second["properties"] == {"filters": {"size": "2"}}
    assert second["search_query"] == "tent"


def test_legacy_transaction_is_a_purchase():
    payload = snowplow_event_map(event(e="tr", tr_id="o-1", tr_tt="30.00", tr_cu="USD")).payload
    assert (payload["event_type"], payload["order_id"]) == ("purchase", "o-1")
    assert payload["revenue"] == 30


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"e": "ue", "ue_px": "!!!not-base64"}, "ue_px", "json"),
        ({"e": "ue", "ue_px": b64("just text")}, "ue_pr", "required"),
        ({"e": "ue"}, "ue_pr", "required"),
        ({"cx": base64.b64encode(b"{not json").decode()}, "cx", "json"),
        ({"dtm": "yesterday"}, "dtm", "epoch_millis"),
        ({"e": "zz"}, "e", "allowed_values"),
        ({"e": "se"}, "se_ac", "required"),
    ],
)
def test_unreadable_events_name_the_field(fields, field, rule):
    mapped = snowplow_event_map({k: v for k, v in (event() | fields).items() if v is not None})
    assert (field, rule) in [(f, r) for f, r, _ in mapped.errors]


def test_without_an_event_time_the_send_time_is_taken_else_the_receipt():
    payload = snowplow_event_map({k: v for k, v in event().items() if k != "dtm"}).payload
    assert payload["timestamp"] == utc("2026-01-05T10:00:05") and "sent_at" not in payload
    bare = {k: v for k, v in event().items() if k not in ("dtm", "stm")}
    assert "timestamp" not in snowplow_event_map(bare).payload


def test_not_an_object_and_unexpected_fields():
    assert snowplow_event_map("x").errors[0][:2] == ("event", "object")
    payload = snowplow_event_map(event(zz_custom="1", res="1920x1080")).payload
    assert payload["properties"]["zz_custom"] == "1" and payload["properties"]["res"] == "1920x1080"


def test_the_old_add_to_cart_schema_keeps_only_unmapped_fields():
    """snowplow's own add_to_cart schema: sku, price, quantity and currency fill columns and
    leave properties (ADR 0043); its name stays."""
    cart = unstruct(
        "iglu:com.snowplowanalytics.snowplow/add_to_cart/jsonschema/1-0-0",
        {"sku": "sku-3", "name": "Tent", "unitPrice": 20, "quantity": 2, "currency": "EUR"},
    )
    payload = snowplow_event_map(event(e="ue", ue_pr=json.dumps(cart))).payload
    assert (payload["event_type"], payload["product_id"], payload["price"]) == (
        "add_to_cart",
        "sku-3",
        20.0,
    )
    assert (payload["quantity"], payload["currency"]) == (2, "EUR")
    assert payload["properties"] == {"name": "Tent"}


def test_currency_codes_are_taken_in_upper_case():
    """A product entity's or transaction's `"currency": "eur"` maps to EUR (as Segment's and
    PostHog's mappings take it), not to a quarantined event."""
    action = unstruct(f"{ECOM}/snowplow_ecommerce_action/jsonschema/1-0-2", {"type": "add_to_cart"})
    added = snowplow_event_map(
        event(e="ue", ue_px=b64(action), cx=b64(contexts(product(currency="eur"))))
    ).payload
    assert added["currency"] == "EUR"
    legacy = snowplow_event_map(event(e="tr", tr_id="o-1", tr_tt="10", tr_cu="gbp")).payload
    assert (legacy["event_type"], legacy["currency"]) == ("purchase", "GBP")
