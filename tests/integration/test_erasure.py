"""Erasure requests through every door (API, command, admin, the Celery worker), the refusals
(who may ask, bad input as 4xx naming field and rule), and what happens to events that arrive
for an erased id later: they are new data (ADR 0007)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from events import services
from events.models import Event, RejectedEvent
from events.original_selectors import event_original
from governance.models import ErasureRequest
from governance.services.erasure import (
    erasure_request_create,
    erasure_request_run,
    subject_hash,
)
from reports.filters import filters_from_query
from reports.selectors import pages
from reports.services.rollups import rollups_advance
from tests.factories import (
    EventFactory,
    RejectedEventFactory,
    event_payload,
    protocol_batch_store,
)
from tests.helpers import assert_refused, user_with_role

pytestmark = pytest.mark.postgres
ERASURE = "/api/v1/erasure"


@pytest.fixture
def person(require_postgres, db) -> str:
    """A person with folded and unfolded events, a quarantined payload, and someone else."""
    now = timezone.now()
    for minutes in (300, 200, 100, 1):
        EventFactory(user_id="u-gone", received_at=now - dt.timedelta(minutes=minutes))
        EventFactory(user_id="u-kept", received_at=now - dt.timedelta(minutes=minutes))
    EventFactory(user_id="anon-7", received_at=now - dt.timedelta(minutes=50))
    RejectedEventFactory(raw_payload='{"user_id": "u-gone", "country": ""}', received_at=now)
    rollups_advance(now=now - dt.timedelta(minutes=60))
    return "u-gone"


def _left(*users: str) -> int:
    return Event.objects.filter(user_id__in=users).count()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (the task's enqueue) at the end of the block, as a commit would."""
    return django_capture_on_commit_callbacks


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(user_with_role("Admin", username="dpo"))
    return client


def test_api_staff_session_erases_a_person_and_their_anonymous_ids(person, staff_client, on_commit):
    """202 with the request; the task (eager in tests, after commit) removed every row of both
    ids."""
    with on_commit(execute=True):
        response = staff_client.post(
            ERASURE,
            {"user_id": person, "anonymous_ids": ["anon-7"]},
            content_type="application/json",
        )
    assert response.status_code == 202, response.content
    request = ErasureRequest.objects.get(pk=response.json()["id"])
    assert (request.status, request.via, request.requested_by_label) == ("done", "api", "dpo")
    assert (request.events_deleted, request.quarantined_deleted) == (5, 1)
    assert _left(person, "anon-7") == 0 and _left("u-kept") == 4
    assert not RejectedEvent.objects.filter(raw_payload__contains=person).exists()


def test_api_refuses_keys_without_the_admin_scope_and_plain_users(
    person, keyed_client, client, django_user_model
):
    """A key needs the admin scope; a logged-in user whose role lacks it may not either;
    nobody's rows are touched."""
    assert_refused(
        keyed_client.post(ERASURE, {"user_id": person}, format="json"),
        403,
        "Authorization",
        "permission",
    )
    client.force_login(user_with_role("Analyst", username="viewer"))
    assert (
        client.post(ERASURE, {"user_id": person}, content_type="application/json").status_code
        == 403
    )
    assert_refused(
        keyed_client.__class__().post(ERASURE, {"user_id": person}, format="json"),
        401,
        "Authorization",
        "authentication_required",
    )
    assert _left(person) == 4 and not ErasureRequest.objects.exists()


def test_api_accepts_a_key_with_the_admin_scope(person, api_client, on_commit):
    """A key with the admin scope may erase."""
    raw = services.ingestion_key_create(name="test key", scopes=("write", "admin")).raw_key
    keyed_client = api_client
    keyed_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    with on_commit(execute=True):
        response = keyed_client.post(ERASURE, {"user_id": person}, format="json")
    assert response.status_code == 202
    assert ErasureRequest.objects.get().requested_by_label == "ingestion key test key"
    assert _left(person) == 0


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({}, "user_id", "required"),
        ({"user_id": ""}, "user_id", "blank"),
        ({"user_id": "x" * 129}, "user_id", "max_length"),
        ({"user_id": "u", "anonymous_ids": "a"}, "anonymous_ids", "not_a_list"),
        ({"user_id": "u", "anonymous_ids": [""]}, "anonymous_ids", "blank"),
        ({"user_id": "u", "anonymous_ids": ["a"] * 100}, "anonymous_ids", "max_length"),
    ],
)
def test_api_bad_input_is_a_4xx_naming_field_and_rule(staff_client, db, body, field, rule):
    response = staff_client.post(ERASURE, body, content_type="application/json")
    assert response.status_code == 400, response.content
    pairs = {(e["field"].split(".")[0], e["rule"]) for e in response.json()["errors"]}
    assert (field, rule) in pairs
    assert not ErasureRequest.objects.exists()


def test_command_forgets_a_user(person, capsys):
    call_command("forget_user", person, "--anonymous-id", "anon-7")
    assert "done: 5 events, 1 rejected events" in capsys.readouterr().out
    assert ErasureRequest.objects.get().via == "command"
    assert _left(person, "anon-7") == 0


def test_admin_form_creates_a_request_and_the_audit_view_hides_the_id(
    person, admin_client, on_commit
):
    with on_commit(execute=True):
        response = admin_client.post(
            reverse("admin:governance_erasurerequest_add"),
            {"user_id": person, "anonymous_ids": "anon-7\n"},
        )
    assert response.status_code == 302
    request = ErasureRequest.objects.get()
    assert request.status == "done" and request.subject_hash == subject_hash(person)
    page = admin_client.get(reverse("admin:governance_erasurerequest_change", args=[request.pk]))
    assert page.status_code == 200 and person not in page.content.decode()
    assert _left(person, "anon-7") == 0


def test_admin_form_refuses_a_too_long_anonymous_id(admin_client, db):
    response = admin_client.post(
        reverse("admin:governance_erasurerequest_add"),
        {"user_id": "u", "anonymous_ids": "x" * 129},
    )
    assert response.status_code == 200 and "at most 128" in response.content.decode()
    assert not ErasureRequest.objects.exists()


def test_events_arriving_after_an_erasure_are_new_data(person, keyed_client, on_commit):
    """ADR 0007: an erased id sending again is a new person, stored and counted from scratch;
    their old events stay gone."""
    with on_commit(execute=True):
        erasure_request_create(user_id=person, via="command")
    response = keyed_client.post("/api/v1/events", event_payload(user_id=person), format="json")
    assert response.status_code in (200, 201, 202), response.content
    assert _left(person) == 1
    rollups_advance(now=timezone.now() + dt.timedelta(minutes=1))
    f = filters_from_query({"preset": "24h"})
    users = pages.audience(f)["new_vs_returning"]
    assert users["new"] >= 1


@pytest.mark.celery_worker
def test_a_request_runs_on_the_celery_worker(celery_worker):
    """Created in a transaction, processed by a real worker after commit."""
    EventFactory.create_batch(3, user_id="u-worker")
    request = erasure_request_create(user_id="u-worker", via="api")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        request.refresh_from_db()
        if request.status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert (request.status, request.events_deleted) == ("done", 3)
    assert not Event.objects.filter(user_id="u-worker").exists()


def test_the_data_quality_page_says_how_long_each_kind_is_kept(staff_client, settings, db):
    settings.RETENTION_EVENTS_DAYS = 90
    oldest = EventFactory(received_at=timezone.now() - dt.timedelta(days=3)).received_at
    html = staff_client.get("/quality/").content.decode()
    assert f"Raw events kept for 90 days; oldest: {oldest:%-d %b %Y %H:%M} UTC" in html
    assert "Check runs kept forever; oldest: none" in html


def test_an_erasure_request_changed_in_admin_is_in_the_audit_trail_without_the_ids(person):
    """The request's history records who changed it and when, never the erased ids themselves
    (only the keyed hashes outlive the request)."""
    request = erasure_request_create(user_id=person, via="admin", enqueue=False)
    history = request.history.all()
    assert history.count() == 1
    assert not hasattr(history.first(), "subject_ids")
    assert history.first().subject_hash == subject_hash(person)


def _batch_texts() -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, messages FROM events_originalbatch ORDER BY id")
        return dict(cursor.fetchall())


def test_erasure_empties_the_persons_lines_in_batches_shared_with_others(require_postgres, db):
    """ADR 0041: a batch row holds several people's originals. Erasing one person empties their
    lines (the text checked with SQL) in every batch they share, small batches of the run
    included; the others' originals stay readable at their lines, and a batch of only the
    erased person keeps only empty lines."""
    first = protocol_batch_store(["u-kept", "u-gone", "u-other", "u-gone"])
    second = protocol_batch_store(["u-gone", "u-kept"])
    protocol_batch_store(["u-gone"])
    before = _batch_texts()
    assert all("u-gone" in text for text in before.values())
    request = erasure_request_create(user_id="u-gone", via="command", enqueue=False)
    erasure_request_run(request.pk, batch=2)
    after = _batch_texts()
    assert list(after) == list(before)
    assert not any("u-gone" in text for text in after.values())
    first_id, second_id, alone_id = after
    assert after[first_id].split("\n")[1::2] == ["", ""]
    assert after[second_id].split("\n")[0] == "" and after[alone_id] == ""
    assert _left("u-gone") == 0
    kept = {pk: event_original(Event.objects.get(pk=pk)) for pk in (first[0], first[2], second[1])}
    assert [original["messageId"] for original in kept.values()] == [
        "m-0-u-kept",
        "m-2-u-other",
        "m-1-u-kept",
    ]
