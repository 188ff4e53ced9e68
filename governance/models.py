"""Erasure requests: the audit record of each "forget this person" and its progress."""

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class ErasureRequest(models.Model):
    """One request to erase a person (a user id and its anonymous ids), processed in batches.

    The record is the audit trail: who asked, when, how many rows of each kind went, and keyed
    hashes (HMAC) of the ids, never the ids. The ids themselves (`subject_ids`) are kept only
    while the request is pending, running or failed (to resume it) and cleared when it is done.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Via(models.TextChoices):
        ADMIN = "admin"
        API = "api"
        COMMAND = "command"

    subject_hash = models.CharField(max_length=64, db_index=True, help_text="HMAC of the user id.")
    alias_hashes = models.JSONField(
        default=list, blank=True, help_text="HMACs of the anonymous ids erased with it."
    )
    subject_ids = models.JSONField(
        default=list, blank=True, help_text="The ids to erase; cleared when the request is done."
    )
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    via = models.CharField(max_length=8, choices=Via.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(
        max_length=150, help_text="Who asked (user name, key name or command), kept as text."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    events_deleted = models.BigIntegerField(default=0)
    quarantined_deleted = models.BigIntegerField(default=0)
    users_forgotten = models.IntegerField(
        default=0, help_text="Rollup user keys dropped (their link from key to id)."
    )
    batches = models.IntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # The audit trail of admin changes (who, when, what), without the ids themselves: history
    # rows outlive the request, and only the keyed hashes may.
    history = HistoricalRecords(excluded_fields=["subject_ids"])

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"erasure #{self.pk} ({self.status})"
