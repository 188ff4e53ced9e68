"""After an erasure, every dashboard number equals the same number computed from the remaining
raw events (plain SQL, tests/data_quality/test_dashboard_numbers.py), and every rollup row
equals what a rebuild from those events makes: the additive tables, sessions, user bitmaps and
first-seen rows, and the intake rollups of the Data quality and Live pages."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections import Counter

import pytest
from django.contrib.auth import get_user_model

from events.models import Event, RejectedEvent
from governance.models import ErasureRequest
from governance.services.erasure import erasure_request_create, erasure_request_run, subject_hash
from quality.models import EventMinute, IntakeHour, IntakeRuleHour
from quality.services import intake
from reports.filters import filters_from_query
from reports.services.rollups import rollups_advance, rollups_rebuild
from tests.dashboard_reference import (
    NOW,
    assert_dashboard_matches_raw,
    filter_sets,
    generate_events,
    load,
    ref_top,
)
from tests.helpers import user_with_role
from tests.rollup_scaffold import table_state

pytestmark = pytest.mark.postgres

AFTER = NOW + dt.timedelta(minutes=5)


def _quarantine_of(users: list[str]) -> None:
    """Rejected events naming the people to erase (and one naming someone else)."""
    for index, user in enumerate([*users, "user_kept"]):
        RejectedEvent.objects.create(
            event_type="purchase",
            raw_payload=json.dumps({"user_id": user, "event_type": "purchase"}),
            dedupe_key=f"test:{user}",
            reasons=[{"field": "country", "rule": "required", "message": "Field required"}],
            received_at=NOW - dt.timedelta(days=index % 5, hours=3),
        )
    RejectedEvent.objects.create(  # cut short: found by the id's JSON string alone
        event_type="",
        raw_payload=f'{{"user_id": {json.dumps(users[0])}, "properties": {{"x": "',
        raw_truncated=True,
        dedupe_key="test:cut-short",
        reasons=[{"field": "body", "rule": "max_bytes", "message": "too big"}],
        received_at=NOW - dt.timedelta(days=2),
    )


@pytest.fixture
def user_client(client, django_user_model):
    client.force_login(user_with_role("Viewer", username="analyst"))
    return client


@pytest.fixture
def dataset(require_postgres, db) -> list[str]:
    """The sample set, and the people to erase: the busiest users and one with late events."""
    events = generate_events()
    load(events)
    counts = Counter(Event.objects.values_list("user_id", flat=True))
    late = next(
        e.user_id
        for e in Event.objects.order_by("pk")
        if e.received_at - e.timestamp > dt.timedelta(hours=2)
    )
    users = list(dict.fromkeys([user for user, _ in counts.most_common(4)] + [late]))
    _quarantine_of(users)
    # Someone else in one of the first person's sessions: it must be folded again without them.
    first = Event.objects.filter(user_id=users[0]).order_by("timestamp").first()
    mixed = [
        Event(
            **{f.attname: getattr(first, f.attname) for f in Event._meta.concrete_fields},
        )
        for _ in range(2)
    ]
    for index, event in enumerate(mixed):
        event.pk, event.event_id, event.user_id = None, uuid.uuid4(), "user_mixed"
        event.timestamp += dt.timedelta(minutes=index - 1)  # one before the person's first
        event.event_type = ("page_view", "add_to_cart")[index]
    Event.objects.bulk_create(mixed)
    return users


def _erase(users: list[str], batch: int) -> list[ErasureRequest]:
    done = []
    for user in users:
        request = erasure_request_create(user_id=user, via="command", enqueue=False)
        done.append(erasure_request_run(request.pk, batch=batch))
    return done


def intake_state() -> dict:
    """The intake rollup rows, rows left at zero counting as absent (a rebuild never makes
    them)."""
    rows = {}
    for model, values in (
        (IntakeHour, ("accepted", "warned", "quarantined", "fresh")),
        (IntakeRuleHour, ("quarantined",)),
        (EventMinute, ("events", "warned")),
    ):
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows[model.__name__] = sorted(
            tuple(row.values())
            for row in model.objects.values(*fields)
            if any(row[name] for name in values)
        )
    return rows


def test_numbers_equal_raw_after_erasure_with_rollups_and_a_raw_tail(dataset, user_client):
    """Rollups hold part of each person's events and the raw tail the rest; an erasure in many
    small batches removes all of them and their quarantined payloads, and every page's numbers
    (and the products CSV) equal raw SQL over what remains."""
    rollups_advance(now=NOW - dt.timedelta(days=4), max_seconds=60)
    intake.intake_advance(now=NOW - dt.timedelta(days=4), max_seconds=60)
    in_tail = Event.objects.filter(user_id__in=dataset, received_at__gt=NOW - dt.timedelta(days=4))
    assert in_tail.exists(), "some of the erased events should be raw tail"
    requests = _erase(dataset, batch=7)
    assert all(r.status == ErasureRequest.Status.DONE and r.batches > 1 for r in requests)
    assert not Event.objects.filter(user_id__in=dataset).exists()
    assert not any(
        any(user in row for user in dataset)
        for row in RejectedEvent.objects.values_list("raw_payload", flat=True)
    )
    assert RejectedEvent.objects.filter(raw_payload__contains="user_kept").exists()
    for f in filter_sets():
        assert_dashboard_matches_raw(f)
    f = filters_from_query({"start": "2026-02-18", "end": "2026-03-10"}, now=NOW)
    response = user_client.get("/products/csv/top_purchased/?start=2026-02-18&end=2026-03-10")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    expected = ref_top(f, "purchase")
    assert [(r["product_id"], int(r["count"])) for r in rows] == [
        (r["product_id"], r["count"]) for r in expected
    ]


def test_rollups_after_erasure_equal_a_rebuild_from_the_remaining_events(dataset):
    """Fully rolled up, then erased: every rollup row (additive, sessions, user bitmaps,
    first-seen) and every intake rollup row equals a rebuild from the remaining raw events."""
    rollups_advance(now=AFTER, max_seconds=60)
    intake.intake_advance(now=AFTER, max_seconds=60)
    _erase(dataset, batch=11)
    erased, intake_erased = table_state(), intake_state()
    rollups_rebuild(now=AFTER)
    intake.intake_rebuild(now=AFTER)
    assert table_state() == erased
    assert intake_state() == intake_erased
    for f in filter_sets():
        assert_dashboard_matches_raw(f)


def test_the_audit_record_keeps_counts_and_a_keyed_hash_not_the_id(dataset, settings):
    """Who asked, when, how many rows of each kind went; the id only as HMAC (with its key)."""
    rollups_advance(now=AFTER, max_seconds=60)
    user = dataset[0]
    expected_events = Event.objects.filter(user_id=user).count()
    admin = get_user_model().objects.create_user("dpo", is_staff=True)
    request = erasure_request_create(
        user_id=user, anonymous_ids=["anon-1"], via="admin", requested_by=admin, enqueue=False
    )
    assert request.subject_ids == [user, "anon-1"]  # kept only until done
    done = erasure_request_run(request.pk)
    assert (done.status, done.requested_by_label, done.requested_by) == ("done", "dpo", admin)
    assert done.events_deleted == expected_events
    assert done.quarantined_deleted == 2  # its payload and the truncated one
    assert done.users_forgotten == 1
    assert done.finished_at >= done.created_at
    assert done.subject_ids == []
    assert done.subject_hash == subject_hash(user) != user
    assert done.alias_hashes == [subject_hash("anon-1")]
    stored = json.dumps(list(ErasureRequest.objects.values()), default=str)
    assert user not in stored and "anon-1" not in stored
    settings.ERASURE_HASH_KEY = "another-key"
    assert subject_hash(user) != done.subject_hash
    assert erasure_request_run(request.pk) is None  # done: not run again
