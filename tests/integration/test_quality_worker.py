"""A real Celery worker on Redis runs the quality tasks: the scheduled checks (the beat entry's
task) open an incident for a failing check, alert a webhook and auto-resolve it later; the
intake fold (the other beat entry) folds what was received; replay jobs report progress."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from events.services import IngestSource, event_batch_ingest
from quality.engine.incident_policy import RESOLVE_AFTER_PASSES
from quality.models import CheckRun, IntakeWatermark, QualityCheck, QualityIncident
from quality.services.replay import replay_job_create
from quality.services.rules import rules_set_enabled
from tests.factories import (
    EventFactory,
    QualityCheckFactory,
    QualityRuleFactory,
    RejectedEventFactory,
    purchase_payload,
)
from tests.webhook_receiver import webhook_receiver


def wait_until(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.celery_worker
def test_worker_runs_scheduled_checks_opens_and_auto_resolves_an_incident(celery_worker):
    queue = celery_worker.conf.task_default_queue
    with webhook_receiver() as receiver:
        check = QualityCheckFactory(
            name="fresh",
            kind="freshness",
            threshold=15,
            interval_minutes=1,
            webhook_url=receiver.url,
        )
        EventFactory(timestamp=timezone.now() - dt.timedelta(hours=1))

        result = celery_worker.send_task("quality.run_scheduled", queue=queue)
        result.get(timeout=30)
        incident = QualityIncident.objects.get()
        assert incident.status == "open" and incident.quality_check_id == check.pk
        assert CheckRun.objects.get().outcome == "fail"
        assert [body["event"] for body in receiver.wait_for(1)] == ["opened"]

        EventFactory(timestamp=timezone.now())
        for _ in range(RESOLVE_AFTER_PASSES):  # hysteresis: N passing runs in a row
            QualityCheck.objects.filter(pk=check.pk).update(last_run_at=None)  # due again
            celery_worker.send_task("quality.run_scheduled", queue=queue).get(timeout=30)
        incident.refresh_from_db()
        assert incident.status == "resolved" and incident.auto_resolved
        assert [body["event"] for body in receiver.wait_for(2)] == ["opened", "resolved"]


@pytest.mark.celery_worker
def test_worker_runs_a_replay_job_with_progress(celery_worker):
    """Replay of many events runs on the worker; the job row shows progress to done."""
    rule = QualityRuleFactory(name="price-cap", kind="range", field="price", params={"max": 1})
    outcomes = event_batch_ingest([purchase_payload() for _ in range(450)], source=IngestSource())
    rules_set_enabled([rule.pk], False)
    job = replay_job_create([o.rejected_id for o in outcomes])  # autocommit: enqueued now
    assert wait_until(lambda: type(job).objects.get(pk=job.pk).status == "done", timeout=30)
    job.refresh_from_db()
    assert (job.processed, job.accepted) == (450, 450)


@pytest.mark.celery_worker
def test_worker_runs_the_intake_fold_of_the_beat_schedule(celery_worker, settings):
    """The intake beat entry's task runs on a real worker: events and rejected events received
    before the safety lag are folded, and a redelivered run finds nothing left to fold."""
    task = settings.CELERY_BEAT_SCHEDULE["quality-intake-advance"]["task"]
    queue = celery_worker.conf.task_default_queue
    received = timezone.now() - dt.timedelta(minutes=2)
    EventFactory.create_batch(3, received_at=received, timestamp=received)
    RejectedEventFactory(received_at=received)
    assert celery_worker.send_task(task, queue=queue).get(timeout=30)["rows"] == 4
    assert celery_worker.send_task(task, queue=queue).get(timeout=30)["rows"] == 0
    mark = IntakeWatermark.objects.get()
    assert (mark.events_folded, mark.rejected_folded) == (3, 1)
