"""The ingestion API as the original README uses it, plus idempotency and batches."""

import datetime as dt

import pytest
from django.utils import timezone

from events.models import Event, RejectedEvent
from tests.factories import event_payload

pytestmark = pytest.mark.django_db

README_EVENT = {
    "event_id": "123e4567-e89b-12d3-a456-426614174000",
    "event_type": "page_view",
    "timestamp": "2024-01-15T10:30:00Z",
    "user_id": "user_12345",
    "session_id": "session_67890",
    "page_url": "/products/laptop",
    "device_type": "desktop",
    "country": "US",
}


@pytest.mark.parametrize("path", ["/events", "/events/", "/api/v1/events", "/api/v1/events/"])
def test_readme_event_is_accepted_then_reported_duplicate(dev_mode, api_client, path):
    """The README's example returns 201 once and 200 duplicate after, storing one row."""
    first = api_client.post(path, README_EVENT, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["status"] == "accepted"
    assert first.json()["duplicate"] is False
    second = api_client.post(path, README_EVENT, format="json")
    assert second.status_code == 200
    assert second.json()["duplicate"] is True
    assert second.json()["id"] == first.json()["id"]
    assert Event.objects.count() == 1


def test_batch_mixes_accepted_duplicate_and_rejected(dev_mode, api_client):
    """Valid events are stored even when others in the batch are bad; in-batch repeats once."""
    good = event_payload()
    bad = event_payload(country="Narnia")
    response = api_client.post(
        "/events/batch", {"events": [good, bad, good, event_payload()]}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "rejected",
        "duplicate",
        "accepted",
    ]
    assert body["results"][1]["errors"][0]["field"] == "country"
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 1)
    assert Event.objects.count() == 2
    assert RejectedEvent.objects.count() == 1


def test_ingestion_needs_a_key_outside_development(api_client, keyed_client):
    """Anonymous writes are refused with 401/403; a valid key is accepted."""
    refused = api_client.post("/events", event_payload(), format="json")
    assert refused.status_code in (401, 403)
    accepted = keyed_client.post("/events", event_payload(), format="json")
    assert accepted.status_code == 201
    api_client.credentials(HTTP_X_API_KEY="ek_wrong")
    assert api_client.post("/events", event_payload(), format="json").status_code == 401


def test_stats_and_recent_match_the_readme_usage(dev_mode, api_client):
    for minutes in (3, 2, 1):
        timestamp = (timezone.now() - dt.timedelta(minutes=minutes)).isoformat()
        api_client.post("/events", event_payload(timestamp=timestamp), format="json")
    stats = api_client.get("/events/stats").json()
    assert stats["total_events"] == 3
    assert stats["events_by_type"] == {"page_view": 3}
    recent = api_client.get("/events/recent?limit=2").json()
    assert len(recent["events"]) == 2
    assert recent["events"][0]["timestamp"] >= recent["events"][1]["timestamp"]
