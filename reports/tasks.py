"""Celery tasks for rollups. Thin: the work and its idempotency live in reports.services."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from reports.selectors.pages import dashboard_cache_warm
from reports.services.rollups import rollups_advance


@shared_task(name="reports.rollups_advance", acks_late=True, ignore_result=False)
def rollups_advance_task() -> dict[str, Any]:
    """Fold newly received events into the rollups (periodic, every few seconds).

    Idempotent: each batch moves the watermark in the same transaction as its upserts, so a
    redelivered or overlapping run only picks up what is still pending. Time-boxed below the
    schedule interval so runs do not pile up. Then it warms the cached rollup reads of the
    standard presets, so page views after a fold do not pay for them.
    """
    budget = 0.7 * settings.ROLLUP_INTERVAL_SECONDS
    result = rollups_advance(max_seconds=budget).as_dict()
    result["cache_reads"] = dashboard_cache_warm()
    return result
