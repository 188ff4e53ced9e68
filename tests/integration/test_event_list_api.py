"""GET /api/v1/events (filtered, cursor pages) and the filters /events/recent gained."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from events import services
from tests.factories import EventFactory, event_payload
from tests.helpers import assert_refused

pytestmark = pytest.mark.django_db

LIST = "/api/v1/events"
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def _spread(count: int, seed: int = 7) -> list:
    """Events with varied fields, event times over ten days, and only twelve receipt times, so
    that many share one (the id breaks the tie) and page boundaries fall inside ties."""
    rng = random.Random(seed)
    events = []
    for n in range(count):
        events.append(
            EventFactory(
                event_type=rng.choice(["page_view", "search", "purchase"]),
                timestamp=T0 + dt.timedelta(hours=rng.randrange(240)),
                received_at=T0 + dt.timedelta(hours=4 * rng.randrange(12)),
                user_id=f"user_{n % 5}",
                session_id=f"session_{n % 9}",
                country=rng.choice(["US", "DE", "FR"]),
                device_type=rng.choice(["desktop", "mobile"]),
            )
        )
    return events


def _ids_by_sql(where: str, params: list) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM events_event WHERE {where}", params)  # noqa: S608 - constants
        return {row[0] for row in cursor.fetchall()}


def _all_pages(client: APIClient, query: str, between=None) -> list[int]:
    ids, url = [], f"{LIST}?{query}"
    while True:
        body = client.get(url).json()
        ids.extend(event["id"] for event in body["events"])
        if body["next_cursor"] is None:
            return ids
        if between:
            between()
        url = f"{LIST}?{query}&cursor={body['next_cursor']}"


FILTERS = [
    ("event_type=search", "event_type = %s", ["search"]),
    ("user_id=user_3", "user_id = %s", ["user_3"]),
    ("session_id=session_4", "session_id = %s", ["session_4"]),
    ("country=de", "country = %s", ["DE"]),
    ("device_type=mobile", "device_type = %s", ["mobile"]),
    (
        "since=2024-03-03T00:00:00Z&until=2024-03-05T12:00:00Z",
        "timestamp >= %s AND timestamp < %s",
        [T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=4, hours=12)],
    ),
    (
        "received_since=2024-03-01T10:00:00%2B00:00&received_until=2024-03-02T00:00:00Z",
        "received_at >= %s AND received_at < %s",
        [T0 + dt.timedelta(hours=10), T0 + dt.timedelta(days=1)],
    ),
    (
        "event_type=purchase&country=US&device_type=desktop",
        "event_type = %s AND country = %s AND device_type = %s",
        ["purchase", "US", "desktop"],
    ),
]


@pytest.mark.parametrize("order", ["received_at", "timestamp"])
@pytest.mark.parametrize(("query", "where", "params"), FILTERS)
def test_each_filter_returns_the_rows_raw_sql_selects(
    require_postgres, dev_mode, api_client, query, where, params, order
):
    """Every filter, alone and combined, over all pages, equals the same WHERE in raw SQL, in
    (order, id) order with no row twice."""
    _spread(60)
    ids = _all_pages(api_client, f"{query}&order={order}&limit=7")
    assert len(ids) == len(set(ids))
    assert set(ids) == _ids_by_sql(where, params) != set()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM events_event ORDER BY {order}, id")  # noqa: S608
        rank = {row[0]: n for n, row in enumerate(cursor.fetchall())}
    assert ids == sorted(ids, key=rank.__getitem__)


@pytest.mark.parametrize("order", ["received_at", "timestamp"])
def test_paging_while_events_arrive_skips_and_repeats_nothing(
    require_postgres, dev_mode, api_client, order
):
    """Events stored before the first page come exactly once, however many arrive between
    pages (at the same receipt times, with older and newer event times); the newcomers come
    at most once."""
    before = {event.pk for event in _spread(50)}
    rng = random.Random(3)

    def insert_some() -> None:
        for _ in range(4):
            EventFactory(
                timestamp=T0 + dt.timedelta(hours=rng.randrange(-24, 300)),
                received_at=rng.choice(
                    [T0 + dt.timedelta(hours=4 * rng.randrange(12)), timezone.now()]
                ),
            )

    ids = _all_pages(api_client, f"order={order}&limit=6", between=insert_some)
    assert len(ids) == len(set(ids))
    assert before <= set(ids)


def test_a_page_shape_carries_every_stored_column(require_postgres, dev_mode, api_client):
    payload = event_payload(event_type="purchase", order_id="o1", revenue=12.5, price=12.5)
    payload.update(quantity=1, currency="USD", product_id="p1")
    assert api_client.post("/events", payload, format="json").status_code == 201
    body = api_client.get(LIST).json()
    assert (body["count"], body["order"], body["next_cursor"]) == (1, "received_at", None)
    event = body["events"][0]
    assert event["event_id"] == payload["event_id"]
    assert (event["revenue"], event["quantity"], event["properties"]) == (12.5, 1, {})
    assert {"id", "received_at", "client_timestamp", "warnings"} <= set(event)


def test_the_default_page_is_100_and_the_cursor_continues(require_postgres, dev_mode, api_client):
    _spread(130)
    first = api_client.get(LIST).json()
    assert first["count"] == 100 and first["next_cursor"]
    second = api_client.get(f"{LIST}?cursor={first['next_cursor']}").json()
    assert (second["count"], second["next_cursor"]) == (30, None)


BAD = [
    ("limit=0", "limit", "min_value"),
    ("limit=1001", "limit", "max_value"),
    ("limit=ten", "limit", "invalid"),
    ("order=user_id", "order", "invalid_choice"),
    ("since=yesterday", "since", "invalid"),
    ("received_until=2024-13-01", "received_until", "invalid"),
    ("since=0001-01-01T00:00:00%2B01:00", "since", "date_range"),  # years 0002 to 9998
    ("until=9999-12-31T00:00:00Z", "until", "date_range"),
    ("since=2024-03-02T00:00:00Z&until=2024-03-01T00:00:00Z", "until", "after_since"),
    ("received_since=2024-03-02&received_until=2024-03-02", "received_until", "after_since"),
    ("event_type=%09click", "event_type", "invalid"),  # custom names pass; control chars do not
    ("event_type=" + "e" * 129, "event_type", "max_length"),
    ("device_type=tv", "device_type", "invalid_choice"),
    ("country=USA", "country", "invalid"),
    ("user_id=" + "u" * 129, "user_id", "max_length"),
    ("session_id=a%00b", "session_id", "null_characters_not_allowed"),
    ("evnt_type=search", "evnt_type", "unknown_parameter"),
    ("offset=10", "offset", "unknown_parameter"),
    ("cursor=not-a-cursor", "cursor", "invalid"),
    ("cursor=" + "A" * 513, "cursor", "max_length"),
]


@pytest.mark.parametrize(("query", "field", "rule"), BAD)
def test_bad_parameters_are_400_naming_the_parameter(dev_mode, api_client, query, field, rule):
    assert_refused(api_client.get(f"{LIST}?{query}"), 400, field, rule)


def test_a_cursor_with_other_filters_or_order_is_refused(require_postgres, dev_mode, api_client):
    """A cursor holds a place in one ordered, filtered list; used elsewhere it would skip rows."""
    _spread(12)
    cursor = api_client.get(f"{LIST}?limit=5&country=US").json()["next_cursor"]
    assert api_client.get(f"{LIST}?limit=5&country=US&cursor={cursor}").status_code == 200
    for query in ("country=DE", "country=US&order=timestamp", ""):
        response = api_client.get(f"{LIST}?limit=5&{query}&cursor={cursor}")
        assert_refused(response, 400, "cursor", "filters_mismatch")


def test_listing_needs_the_read_permission_while_post_still_ingests(api_client):
    """GET on the ingestion path reads (read permission, as stats and recent: a key with
    can_read); a write-only key still sends events there."""
    writer = services.ingestion_key_create(name="writer", can_read=False)
    reader = services.ingestion_key_create(name="reader")
    assert api_client.get(LIST).status_code == 401
    api_client.credentials(HTTP_X_API_KEY=writer.raw_key)
    assert api_client.post(LIST, event_payload(), format="json").status_code == 201
    assert_refused(api_client.get(LIST), 403, "Authorization", "permission")
    api_client.credentials(HTTP_X_API_KEY=reader.raw_key)
    assert api_client.get(LIST).json()["count"] == 1


def test_recent_keeps_its_shape_and_default_and_gains_the_filters(
    require_postgres, dev_mode, api_client
):
    """Newest first by receipt (default, ADR 0014) or event time, 10 by default; filters and
    offset apply."""
    _spread(40)
    plain = api_client.get("/events/recent").json()
    assert set(plain) == {"events", "count", "order"} and plain["count"] == 10
    assert plain["order"] == "received_at"
    received = [event["received_at"] for event in plain["events"]]
    assert received == sorted(received, reverse=True)
    by_time = api_client.get("/events/recent?order=timestamp").json()
    stamps = [event["timestamp"] for event in by_time["events"]]
    assert stamps == sorted(stamps, reverse=True)
    query = "event_type=search&user_id=user_2&limit=1000"
    searches = api_client.get(f"/events/recent?{query}").json()["events"]
    assert {e["id"] for e in searches} == _ids_by_sql(
        "event_type = %s AND user_id = %s", ["search", "user_2"]
    )
    everything = api_client.get("/events/recent?limit=1000").json()["events"]
    page = api_client.get("/events/recent?limit=5&offset=5").json()["events"]
    assert [e["id"] for e in page] == [e["id"] for e in everything[5:10]]


@pytest.mark.parametrize(
    ("query", "field", "rule"),
    [("offset=-1", "offset", "min_value"), ("offset=10001", "offset", "max_value")]
    + [bad for bad in BAD if bad[1] not in ("order", "offset", "cursor")],
)
def test_recent_refuses_bad_parameters(dev_mode, api_client, query, field, rule):
    assert_refused(api_client.get(f"/events/recent?{query}"), 400, field, rule)


def test_the_schema_documents_the_list_parameters_and_their_bounds(api_client):
    paths = json.loads(api_client.get("/api/schema/?format=json").content)["paths"]
    for path in ("/api/v1/events/", "/events/recent/"):
        parameters = {p["name"]: p["schema"] for p in paths[path]["get"]["parameters"]}
        assert {"since", "received_until", "event_type", "country", "device_type"} <= set(
            parameters
        )
        assert parameters["limit"]["maximum"] == 1000
    listed = {p["name"]: p["schema"] for p in paths["/api/v1/events/"]["get"]["parameters"]}
    assert listed["order"]["enum"] == ["received_at", "timestamp"]
    assert "cursor" in listed and "post" in paths["/api/v1/events/"]
