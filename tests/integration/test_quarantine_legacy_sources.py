"""Rows quarantined before ADR 0029 hold a protocol's message under `source = api`: the command
`quarantine_sources_infer` recognises each protocol by its message's shape (ADR 0037), counts
first, and with --apply gives the row its protocol, after which the replay translates it
again and stores it once; our own format and shapes of no single protocol are left."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone

from events import services
from events.models import Event, RejectedEvent
from events.original_selectors import event_original
from quality.services.replay import quarantine_replay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres")]
MESSAGES = {
    "segment": {
        "type": "track",
        "event": "Video Played",
        "userId": "u-1",
        "messageId": "m-legacy-1",
        "timestamp": "2026-01-05T10:00:00Z",
    },
    "posthog": {
        "event": "Video Played",
        "distinct_id": "u-2",
        "uuid": "0190a0a0-0000-7000-8000-000000000001",
        "timestamp": "2026-01-05T10:00:00Z",
        "properties": {"$lib": "web"},
    },
    "snowplow": {
        "e": "se",
        "se_ca": "media",
        "se_ac": "video_played",
        "eid": "6c3e0b5e-43b3-4c0e-9f0e-2c2b0b1d0a01",
        "dtm": "1767607200000",
        "uid": "u-3",
        "tv": "py-1.0.0",
    },
}
OURS = {"event_type": "video_played", "event_id": str(uuid.uuid4()), "user_id": "u-4"}
NEITHER = {"name": "Video Played", "who": "u-5"}


def _legacy_row(original: dict, key) -> RejectedEvent:
    """As the quarantine kept a protocol's message before ADR 0029: source api, no translation."""
    return RejectedEvent.objects.create(
        raw_payload=json.dumps(original),
        reasons=[{"field": "event_type", "rule": "required", "message": "missing"}],
        received_at=timezone.now(),
        dedupe_key=uuid.uuid4().hex,
        source_key=key,
    )


def test_legacy_protocol_rows_become_replayable_through_their_protocol():
    key = services.ingestion_key_create(name="legacy", scopes=["write"]).key
    rows = {name: _legacy_row(message, key) for name, message in MESSAGES.items()}
    ours, neither = _legacy_row(OURS, key), _legacy_row(NEITHER, key)

    out = io.StringIO()
    call_command("quarantine_sources_infer", stdout=out)
    assert out.getvalue().splitlines() == [
        "posthog: 1 (would set)",
        "segment: 1 (would set)",
        "snowplow: 1 (would set)",
        "unrecognised: 1",
    ]
    assert set(RejectedEvent.objects.values_list("source", flat=True)) == {"api"}

    call_command("quarantine_sources_infer", "--apply", stdout=io.StringIO())
    for name, row in rows.items():
        row.refresh_from_db()
        assert row.source == name and isinstance(row.translation, dict)
    for row in (ours, neither):
        row.refresh_from_db()
        assert (row.source, row.translation) == ("api", None)
    assert services.rejected_sources_infer(apply=True) == {"unrecognised": 1}  # idempotent

    counts = quarantine_replay([row.pk for row in rows.values()])
    assert counts.accepted == 3, counts
    stored = {event.source: event for event in Event.objects.all()}
    assert set(stored) == {"segment", "posthog", "snowplow"}
    assert stored["segment"].event_type == "Video Played"
    assert stored["snowplow"].event_type == "video_played"
    assert event_original(stored["posthog"]) == MESSAGES["posthog"]
    assert quarantine_replay([row.pk for row in rows.values()]).accepted == 0  # once
