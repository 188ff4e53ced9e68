"""The migration to one quarantine row per bad event (ADR 0009) folds the rows a retried
batch left before it into their first row, safely: attempts add up, the first received_at
stays, a replayed copy keeps the row replayed, and distinct bad events stay apart."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.usefixtures("require_postgres")

BEFORE = [
    ("events", "0005_key_scopes_history_roles"),
    ("quality", "0004_rule_check_replay_history"),
]
AFTER = [
    ("events", "0006_rejectedevent_dedupe_key"),
    ("quality", "0005_intake_refold_after_quarantine_dedupe"),
]
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_duplicates_fold_into_their_first_row():
    try:  # whatever fails, the database is left at the latest migration
        apps = _migrate(BEFORE)
        rejected = apps.get_model("events", "RejectedEvent")
        hour = apps.get_model("quality", "IntakeHour")
        resent_id = str(uuid.uuid4())

        def row(minutes: int, **fields):
            fields.setdefault("event_id", resent_id)
            return rejected.objects.create(
                raw_payload=fields.pop("raw", "{}"),
                reasons=[{"field": "country", "rule": "required", "message": "m"}],
                received_at=T0 + dt.timedelta(minutes=minutes),
                **fields,
            )

        first = row(0)
        row(5, status="replayed", replay_count=1, replayed_at=T0 + dt.timedelta(hours=1))
        row(10)
        other = row(0, event_id=str(uuid.uuid4()))
        no_id_a = row(1, event_id="", raw='{"a": 1}', source_ip="10.0.0.1")
        row(2, event_id="", raw='{"a": 1}', source_ip="10.0.0.1")
        no_id_b = row(3, event_id="", raw='{"a": 1}', source_ip="10.0.0.2")
        hour.objects.create(bucket=T0, event_type="", quarantined=7)

        apps = _migrate(AFTER)
        rejected = apps.get_model("events", "RejectedEvent")
        kept = {r.pk: r for r in rejected.objects.all()}
        assert sorted(kept) == sorted([first.pk, other.pk, no_id_a.pk, no_id_b.pk])
        resent = kept[first.pk]
        assert (resent.attempts, resent.received_at, resent.last_seen_at) == (
            3,
            T0,
            T0 + dt.timedelta(minutes=10),
        )
        assert (resent.status, resent.replay_count) == ("replayed", 1)
        assert resent.dedupe_key == f"id:{resent_id}"
        assert kept[no_id_a.pk].attempts == 2 and kept[no_id_b.pk].attempts == 1
        assert kept[other.pk].attempts == 1
        # The intake rollups counted the removed rows: emptied, to be folded again.
        assert not apps.get_model("quality", "IntakeHour").objects.exists()
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
