"""The ingestion insert claims its dedupe keys set-based and the key trigger skips only that
statement's rows (ADR 0027): exactly-once holds across the insert and every other path, in
and out of a surrounding transaction."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, transaction
from django.utils import timezone

from events.models import Event, EventKey
from events.services import DUPLICATE, IngestSource, event_batch_ingest, events_insert
from tests.factories import EventFactory, event_payload

pytestmark = [pytest.mark.usefixtures("require_postgres"), pytest.mark.django_db]


def _row(event_id, **fields) -> dict:
    now = timezone.now()
    return {
        "event_id": event_id,
        "event_type": "page_view",
        "timestamp": now,
        "received_at": now,
        "user_id": "u-claim",
        "session_id": "s-claim",
        "device_type": "desktop",
        "country": "DE",
        **fields,
    }


def _claimed_flag() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('events.keys_claimed', true)")
        return cursor.fetchone()[0]


def test_an_event_stored_by_another_path_is_a_duplicate_for_the_api():
    """A key claimed by the trigger (an ORM insert) makes the API's copy a duplicate."""
    stored = EventFactory()
    payload = event_payload(event_id=str(stored.event_id))
    outcome = event_batch_ingest([payload], source=IngestSource(key_id=None))[0]
    assert outcome.status == DUPLICATE
    assert Event.objects.filter(event_id=stored.event_id).count() == 1


def test_repeats_of_one_id_in_one_insert_are_stored_once_and_the_first_wins():
    """Ids repeated within one call (in any spelling of the UUID) give one row and one key."""
    event_id = uuid.uuid4()
    inserted = events_insert(
        [
            _row(event_id, page_url="/first"),
            _row(str(event_id).upper(), page_url="/second"),
            _row(event_id.hex, page_url="/third"),
        ]
    )
    assert list(inserted) == [str(event_id)]
    assert list(Event.objects.filter(event_id=event_id).values_list("page_url", flat=True)) == [
        "/first"
    ]
    assert EventKey.objects.filter(event_id=event_id).count() == 1


def test_inside_a_transaction_later_inserts_still_claim_their_keys():
    """The statement's switch is reset after it: an ORM insert later in the same transaction
    claims its key in the trigger, so a copy of it is still refused."""
    first, later = uuid.uuid4(), uuid.uuid4()
    with transaction.atomic():
        assert list(events_insert([_row(first)])) == [str(first)]
        assert _claimed_flag() in (None, "")
        EventFactory(event_id=later)
        assert EventKey.objects.filter(event_id=later).exists()
        again = events_insert([_row(later), _row(first)])
    assert again == {}
    assert Event.objects.filter(event_id__in=[first, later]).count() == 2
