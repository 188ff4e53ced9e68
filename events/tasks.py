"""Periodic tasks of the events app."""

from __future__ import annotations

from celery import shared_task

from events.services.partitions import event_partitions_maintain


@shared_task(name="events.partitions_maintain")
def partitions_maintain() -> list[str]:
    """Create the events partitions due ahead. Idempotent: what exists is left alone, so a
    second beat or a retry does nothing."""
    return event_partitions_maintain()
