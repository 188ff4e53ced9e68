"""Idempotent quarantine (ADR 0009): a batch resent after a timeout or a 503 keeps one
quarantine row per bad event (its attempts count the resends), and every number built on the
quarantine (rule counters, intake rollups, the Data quality page) counts distinct events, as
raw SQL over the quarantine does. Through the HTTP API on both request paths, on PostgreSQL;
the service-level cases on SQLite too (`make demo`)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from django.db import connection, connections
from django.utils import timezone

from events.models import RejectedEvent
from events.services import IngestSource, event_batch_ingest
from quality.models import RuleCounter
from quality.services import intake
from tests.factories import QualityRuleFactory, event_payload, purchase_payload

pytestmark = pytest.mark.usefixtures("dev_mode")

BATCH = "/events/batch"
SENDS = 3


def _batch() -> list:
    """Three good events and five bad ones: two a stored rule refuses, one the schema layer
    refuses, one without an event_id and one whose event_id is not a UUID."""
    return [
        event_payload(),
        event_payload(),
        purchase_payload(),
        purchase_payload(price=150, quantity=1, revenue=150),
        purchase_payload(price=250, quantity=1, revenue=250),
        event_payload(country="XX"),
        {k: v for k, v in event_payload(country="XX").items() if k != "event_id"},
        event_payload(event_id="not-a-uuid", country="XX"),
    ]


def _raw(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _raw_rule_rejections() -> dict[str, int]:
    """Distinct quarantined events per failed rule name, straight from the table."""
    return dict(
        _raw(
            "SELECT reason->>'rule', COUNT(DISTINCT t.id) FROM events_rejectedevent t, "
            "jsonb_array_elements(t.reasons) reason WHERE t.status = 'quarantined' "
            "AND reason->>'rule' IS NOT NULL GROUP BY 1"
        )
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("require_postgres")
def test_a_batch_sent_three_times_keeps_one_row_per_bad_event(ingest_client, admin_client):
    """Each bad event has one row with attempts=3 and last_seen_at at the latest send; the
    responses name the same rows; rule counters, the intake rollups and the Data quality page
    equal the distinct raw counts."""
    QualityRuleFactory(name="price-cap", kind="range", field="price", params={"max": 100})
    batch = _batch()
    answers = []
    for _ in range(SENDS):
        response = ingest_client.post_json(BATCH, {"events": batch})
        assert response.status_code in (200, 201, 207), response.content[:500]
        answers.append(response.json())

    rows = list(RejectedEvent.objects.order_by("pk"))
    assert len(rows) == 5
    assert [row.attempts for row in rows] == [SENDS] * 5
    assert all(row.last_seen_at > row.received_at for row in rows)
    ids = [[r.get("rejected_id") for r in answer["results"]] for answer in answers]
    assert ids[0] == ids[1] == ids[2]
    assert sorted(i for i in ids[0] if i) == [row.pk for row in rows]
    assert _raw("SELECT COUNT(*), COUNT(DISTINCT dedupe_key) FROM events_rejectedevent") == [(5, 5)]

    price_cap = RuleCounter.objects.get(name="price-cap")
    assert price_cap.rejected == _raw_rule_rejections()["price-cap"] == 2
    assert price_cap.evaluated == 5  # the distinct events past the schema layer, once each
    schema_counters = dict(
        RuleCounter.objects.filter(rule_id__isnull=True).values_list("rule_key", "rejected")
    )
    raw_schema = _raw(
        "SELECT 'schema:' || split_part(reason->>'field', '.', 1) || ':' || (reason->>'rule'), "
        "COUNT(DISTINCT t.id) FROM events_rejectedevent t, jsonb_array_elements(t.reasons) "
        "reason WHERE NOT reason ? 'rule_id' GROUP BY 1"
    )
    assert schema_counters == dict(raw_schema)

    intake.intake_advance(now=timezone.now() + dt.timedelta(minutes=5))
    page = admin_client.get("/quality/?range=24h")
    assert page.status_code == 200
    data = page.context["data"]
    quarantined = _raw("SELECT COUNT(*) FROM events_rejectedevent WHERE status = 'quarantined'")
    assert data["quarantine"]["quarantined"] == quarantined[0][0] == 5
    assert data["quarantine"]["by_rule"] == _raw_rule_rejections()
    accepted = sum(row["accepted"] for row in data["pass_rate_series"])
    rejected = sum(row["rejected"] for row in data["pass_rate_series"])
    assert (accepted, rejected) == (_raw("SELECT COUNT(*) FROM events_event")[0][0], 5) == (3, 5)
    failing = {row["name"]: row for row in data["top_failing_rules"]}
    assert failing["price-cap"]["rejected"] == 2


@pytest.mark.django_db
def test_the_same_bad_event_twice_in_one_batch_is_one_row():
    """Inside one batch the same bad event (by event_id, or by payload without one) is one row
    with two attempts; the outcomes name it twice."""
    bad = event_payload(country="XX")
    no_id = {k: v for k, v in event_payload(country="XX").items() if k != "event_id"}
    outcomes = event_batch_ingest([bad, bad, no_id, no_id], source=IngestSource(key_id=None))
    assert outcomes[0].rejected_id == outcomes[1].rejected_id
    assert outcomes[2].rejected_id == outcomes[3].rejected_id
    assert sorted(RejectedEvent.objects.values_list("attempts", flat=True)) == [2, 2]


@pytest.mark.django_db
def test_same_payload_without_event_id_from_two_senders_is_two_rows():
    """Without a usable event_id the sender is part of the identity: two keys (or IPs)
    sending the same bytes are two bad events."""
    no_id = {k: v for k, v in event_payload(country="XX").items() if k != "event_id"}
    event_batch_ingest([no_id], source=IngestSource(ip="10.0.0.1"))
    event_batch_ingest([no_id], source=IngestSource(ip="10.0.0.2"))
    event_batch_ingest([no_id], source=IngestSource(ip="10.0.0.2"))
    assert sorted(RejectedEvent.objects.values_list("attempts", flat=True)) == [1, 2]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_concurrent_resends_keep_one_row_and_count_every_attempt():
    """Four clients resending the same bad batch at once: one row per bad event, every
    attempt counted, no unique-violation error."""
    bad = [event_payload(country="XX", event_id=str(uuid.uuid4())) for _ in range(20)]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def send() -> None:
        try:
            start.wait()
            event_batch_ingest(bad, source=IngestSource())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert RejectedEvent.objects.count() == 20
    assert set(RejectedEvent.objects.values_list("attempts", flat=True)) == {4}
