"""Replay jobs: quarantined events sent again through the current rules."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


def _replay_job_user(instance: Any = None, **kwargs: Any) -> Any:
    """The audit trail's "who" of a replay is whoever started it, also for the worker's saves."""
    return getattr(instance, "created_by", None)


class ReplayJob(models.Model):
    """Replay of quarantined events through the current rules, run by a Celery task."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    rejected_ids = models.JSONField(default=list, help_text="RejectedEvent ids to replay.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    still_rejected = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(
        default=0, help_text="Already replayed or being replayed by another job."
    )
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Audit trail: who started the replay, and its state changes (not the id list, kept above).
    history = HistoricalRecords(excluded_fields=["rejected_ids"], get_user=_replay_job_user)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"replay #{self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        return self.processed / self.total if self.total else 1.0
