"""Celery tasks of the quality app. Thin: they take ids, call one service, and are idempotent
(a check run records one more CheckRun; incidents never duplicate; replay is exactly-once)."""

from __future__ import annotations

import structlog
from celery import shared_task
from django.conf import settings

from quality.services import alerts, checks, intake, replay

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


@shared_task(
    name="quality.incident_alert_send",
    autoretry_for=(alerts.TransientWebhookError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
    acks_late=True,
)
def incident_alert_send(incident_id: int, event: str) -> str:
    """POST the incident alert; transient failures are retried with exponential backoff."""
    return alerts.incident_alert_deliver(incident_id, event)


@shared_task(name="quality.replay_job_run", bind=True, acks_late=True)
def replay_job_run_task(self, job_id: int) -> str:
    try:
        job = replay.replay_job_run(job_id)
    except Exception as exc:
        replay.replay_job_fail(job_id, f"{type(exc).__name__}: {exc}")
        raise
    return job.status if job else "missing"
