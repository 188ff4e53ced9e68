"""Celery tasks of the governance app. Thin: the work and its idempotency live in services."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from governance.services.erasure import erasure_request_run
from governance.services.retention import retention_enforce


@shared_task(name="governance.erasure_request_process", acks_late=True)
def erasure_request_process(request_id: int) -> dict[str, Any] | None:
    """Process an erasure request to the end. Idempotent: each batch deletes what is left of the
    person in one transaction, so a redelivered or repeated run resumes; a done request is
    skipped. Not retried automatically: a failed request stays `failed` for an operator."""
    request = erasure_request_run(request_id)
    if request is None:
        return None
    return {
        "status": request.status,
        "events_deleted": request.events_deleted,
        "quarantined_deleted": request.quarantined_deleted,
    }


@shared_task(name="governance.retention_enforce", acks_late=True)
def retention_enforce_task() -> dict[str, int]:
    """Remove rows past their retention (beat, hourly). Idempotent: bounded deletes of what is
    old enough; overlapping runs only find less to delete."""
    return retention_enforce()
