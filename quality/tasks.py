"""Celery tasks of the quality app. Thin: they take ids, call one service, and are idempotent
(a check run records one more CheckRun; incidents never duplicate; replay is exactly-once)."""

from __future__ import annotations

import structlog
from celery import shared_task
from django.conf import settings

from quality.services import checks, intake, outbox, replay

logger = structlog.get_logger(__name__)


@shared_task(name="quality.run_scheduled", acks_late=True)
def run_scheduled() -> dict:
    """The once-a-minute beat entry: due checks by their own interval, then rule rates."""
    runs = checks.checks_run_due()
    rates = checks.rule_rates_evaluate()
    return {"checks_run": [run.quality_check_id for run in runs], "rules_watched": len(rates)}


@shared_task(name="quality.intake_advance", acks_late=True)
def intake_advance_task() -> dict:
    """Fold newly received and rejected events into the intake rollups (periodic).

    Idempotent: each batch moves the watermarks in the same transaction as its upserts, so a
    redelivered or overlapping run only picks up what is still pending. Time-boxed below the
    schedule interval so runs do not pile up.
    """
    budget = 0.8 * getattr(settings, "INTAKE_INTERVAL_SECONDS", 10)
    return intake.intake_advance(max_seconds=budget).as_dict()


@shared_task(name="quality.check_run", acks_late=True)
def check_run_task(check_id: int) -> str:
    return checks.check_run(check_id).outcome


@shared_task(name="quality.alert_outbox_deliver", acks_late=True)
def alert_outbox_deliver_task(outbox_id: int) -> str:
    """Deliver one outbox alert if pending and due. Idempotent: the claim lets one delivery
    through; a failure is recorded on the row (the beat's flush retries it), never raised."""
    return outbox.alert_outbox_deliver(outbox_id)


@shared_task(name="quality.alert_outbox_flush", acks_late=True)
def alert_outbox_flush_task() -> dict:
    """The beat entry: deliver pending alerts that are due (new ones whose enqueue was lost to
    a broker outage, and retries), time-boxed below the schedule interval."""
    budget = 0.8 * settings.ALERT_OUTBOX_INTERVAL_SECONDS
    return outbox.alert_outbox_deliver_due(max_seconds=budget)


@shared_task(name="quality.incident_alert_send", acks_late=True)
def incident_alert_send(incident_id: int, event: str) -> str:
    """Messages enqueued before the outbox: the alert goes to the outbox (idempotent by
    delivery id) and is delivered from there."""
    return outbox.alert_outbox_add_by_id(incident_id, event)


@shared_task(name="quality.replay_job_run", bind=True, acks_late=True)
def replay_job_run_task(self, job_id: int) -> str:
    try:
        job = replay.replay_job_run(job_id)
    except Exception as exc:
        replay.replay_job_fail(job_id, f"{type(exc).__name__}: {exc}")
        raise
    return job.status if job else "missing"
