"""Quarantine and replay: after a rule is fixed, replayed events move into Event exactly once
(also when two replays race), the rest stay quarantined with updated reasons."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse

from events.models import Event, RejectedEvent
from events.services import IngestSource, event_batch_ingest
from quality.models import ReplayJob
from quality.services import replay
from quality.services.rules import rules_set_enabled
from tests.factories import QualityRuleFactory, event_payload, purchase_payload


def quarantine_by_rule(count: int) -> tuple[list[int], object]:
    """Ingest `count` purchases that a price cap rejects; return their quarantine ids."""
    rule = QualityRuleFactory(
        name="price-cap", kind="range", field="price", params={"max": 100}, event_types=["purchase"]
    )
    payloads = [purchase_payload(price=150, quantity=1, revenue=150) for _ in range(count)]
    payloads.append(event_payload(country="XX"))  # a schema failure no rule change can fix
    outcomes = event_batch_ingest(payloads, source=IngestSource(ip="10.0.0.1"))
    assert [o.status for o in outcomes].count("rejected") == count + 1
    return [o.rejected_id for o in outcomes], rule


@pytest.mark.django_db
def test_replay_after_a_fix_moves_events_once_and_keeps_the_rest(
    django_capture_on_commit_callbacks,
):
    ids, rule = quarantine_by_rule(3)
    rejected = RejectedEvent.objects.get(pk=ids[0])
    assert rejected.source_ip == "10.0.0.1" and rejected.reasons[0]["rule"] == "price-cap"

    rules_set_enabled([rule.pk], False)
    with django_capture_on_commit_callbacks(execute=True):
        job = replay.replay_job_create(ids)
    job.refresh_from_db()
    assert (job.status, job.processed, job.accepted, job.still_rejected) == ("done", 4, 3, 1)
    assert Event.objects.count() == 3
    assert RejectedEvent.objects.filter(status="replayed").count() == 3
    schema_failure = RejectedEvent.objects.get(pk=ids[-1])
    assert schema_failure.status == "quarantined" and schema_failure.replay_count == 1
    assert schema_failure.reasons[0]["field"] == "country"

    again = replay.quarantine_replay(ids)  # replaying again changes nothing
    assert (again.accepted, again.skipped, again.still_rejected) == (0, 3, 1)
    assert Event.objects.count() == 3


@pytest.mark.django_db
def test_replay_keeps_failing_events_with_updated_reasons():
    """Replay judges by the current rules: a still-bad event carries the new rule's reason."""
    ids, rule = quarantine_by_rule(1)
    rule.params = {"max": 120}
    rule.name = "price-cap-120"
    rule.save()
    counts = replay.quarantine_replay(ids[:1])
    assert counts.still_rejected == 1
    row = RejectedEvent.objects.get(pk=ids[0])
    assert row.reasons[0]["rule"] == "price-cap-120" and row.status == "quarantined"


@pytest.mark.django_db
def test_replay_of_an_event_already_stored_counts_it_as_duplicate():
    ids, rule = quarantine_by_rule(1)
    payload = RejectedEvent.objects.get(pk=ids[0]).payload
    rules_set_enabled([rule.pk], False)
    event_batch_ingest([payload], source=IngestSource())  # the client re-sent it after the fix
    counts = replay.quarantine_replay(ids[:1])
    assert (counts.accepted, counts.duplicates) == (0, 1)
    assert Event.objects.filter(event_id=payload["event_id"]).count() == 1
    assert RejectedEvent.objects.get(pk=ids[0]).status == "replayed"


@pytest.mark.django_db
def test_replay_from_the_quarantine_admin_with_a_rule_filter(
    client, django_capture_on_commit_callbacks
):
    """Filter the quarantine by failed rule, select all, replay: a job reports progress."""
    ids, rule = quarantine_by_rule(2)
    user = get_user_model().objects.create_superuser("analyst", "a@example.com", "pw-analyst-1")
    client.force_login(user)
    changelist = reverse("admin:events_rejectedevent_changelist")
    listing = client.get(changelist, {"rule": "price-cap"})
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 2  # the schema failure is filtered out
    rules_set_enabled([rule.pk], False)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist + "?rule=price-cap",
            {"action": "replay_selected", "_selected_action": ids[:2], "select_across": "0"},
        )
    assert response.status_code == 302
    job = ReplayJob.objects.get()
    assert (job.status, job.accepted, job.total) == ("done", 2, 2)
    detail = client.get(reverse("admin:events_rejectedevent_change", args=[ids[0]]))
    assert detail.status_code == 200 and "price-cap" in detail.content.decode()
    progress = client.get(reverse("admin:quality_replayjob_changelist"))
    assert "100%" in progress.content.decode()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_replays_of_the_same_events_store_each_once(require_postgres):
    """Two workers replaying the same rows at once: SKIP LOCKED + ON CONFLICT, exactly once."""
    ids, rule = quarantine_by_rule(60)
    rules_set_enabled([rule.pk], False)
    results, barrier = [], threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            results.append(replay.quarantine_replay(ids))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    assert sum(r.accepted for r in results) == 60
    assert Event.objects.count() == 60
    assert RejectedEvent.objects.filter(status="replayed").count() == 60
