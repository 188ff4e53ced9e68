"""Replaying quarantined events through the current rules.

Exactly once, even with two replays of the same rows at the same time: each chunk locks its
still-quarantined rows with SELECT … FOR UPDATE SKIP LOCKED (a row being replayed elsewhere is
skipped, a row already replayed no longer matches), and accepted events go through the
ingestion insert, which is idempotent by event_id (ON CONFLICT DO NOTHING). Events are
validated as of their original receipt time, so age rules judge them as they were sent. A
message a tracker protocol delivered is translated again by that protocol first
(`events.services.rejected_replay_input`, ADR 0029), so it gets the event id it would have had.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from celery import current_app
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from events.services import (
    events_insert,
    events_stored_behind_notify,
    original_storable,
    rejected_events_lock_quarantined,
    rejected_events_replay_record,
    rejected_replay_input,
)
from events.validation import ValidationResult
from quality.models import ReplayJob
from quality.rulesets import ruleset_invalidate
from quality.services.intake import QuarantinedBefore, intake_replay_adjust
from quality.validators import EventValidator

logger = structlog.get_logger(__name__)

CHUNK_SIZE = 200
STALE_RUNNING = dt.timedelta(minutes=10)  # a job "running" longer without progress was lost


@dataclass(slots=True)
class ReplayCounts:
    accepted: int = 0
    duplicates: int = 0
    still_rejected: int = 0
    skipped: int = 0

    def add(self, other: ReplayCounts) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.still_rejected += other.still_rejected
        self.skipped += other.skipped


def quarantine_replay(rejected_ids: Sequence[int], *, now: dt.datetime | None = None):
    """Replay one chunk of quarantined events; returns ReplayCounts. Idempotent."""
    now = now or timezone.now()
    counts = ReplayCounts()
    with transaction.atomic():
        rows = rejected_events_lock_quarantined(rejected_ids)
        counts.skipped = len(set(rejected_ids)) - len(rows)
        before = [QuarantinedBefore.of(row) for row in rows]
        stored_pks: list[int] = []
        by_receipt: dict[dt.datetime, list[Any]] = defaultdict(list)
        for row in rows:
            by_receipt[row.received_at].append(row)
        validator = EventValidator()
        replayed: list[Any] = []
        refused: list[tuple[Any, ValidationResult]] = []
        for received_at, group in sorted(by_receipt.items()):
            inputs = [rejected_replay_input(r) for r in group]
            judged = []
            for rejected, item in zip(group, inputs, strict=True):
                if item.identity_apply is not None:  # a protocol's identify/alias: applied
                    item.identity_apply()
                    replayed.append(rejected)
                    counts.accepted += 1
                elif item.error is not None:
                    refused.append((rejected, ValidationResult(None, [item.error])))
                else:
                    judged.append((rejected, item))
            results = validator.validate_batch(
                [item.payload for _, item in judged],
                received_at=received_at,
                contexts=[item.context for _, item in judged],
            )
            to_insert: dict[str, dict[str, Any]] = {}
            accepted_rows = []
            for (rejected, item), result in zip(judged, results, strict=True):
                if not result.is_valid:
                    refused.append((rejected, result))
                    continue
                row = result.row
                row["warnings"] = [warning.as_dict() for warning in result.warnings]
                if item.source != "api":  # stored as the protocol delivered it (ADR 0029)
                    row["source"] = item.source
                    row["original"] = original_storable(item.original)
                to_insert.setdefault(str(row["event_id"]), row)
                accepted_rows.append((rejected, str(row["event_id"])))
            inserted = events_insert(list(to_insert.values()))
            for rejected, event_id in accepted_rows:
                stored_pk = inserted.pop(event_id, None)
                if stored_pk is not None:
                    stored_pks.append(stored_pk)
                    counts.accepted += 1
                else:
                    counts.duplicates += 1  # already stored: it is in Event once, as wanted
                replayed.append(rejected)
        rejected_events_replay_record(replayed, refused, now=now)
        counts.still_rejected = len(refused)
        # Replayed events keep their old received_at, behind both rollups' watermarks.
        intake_replay_adjust(before, replayed + [row for row, _ in refused], stored_pks)
        events_stored_behind_notify(stored_pks)
    return counts


def replay_job_create(rejected_ids: Sequence[int], *, user: Any = None) -> ReplayJob:
    """Record a replay of these quarantined events and start it after commit."""
    ids = sorted(set(int(pk) for pk in rejected_ids))
    job = ReplayJob.objects.create(
        rejected_ids=ids,
        total=len(ids),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    # By name: quality.tasks imports this module (tasks call services, never the reverse).
    run = current_app.signature("quality.replay_job_run", args=(job.pk,))
    transaction.on_commit(run.delay)
    return job


def _job_start(job_id: int, now: dt.datetime) -> ReplayJob | None:
    """Take the job, unless it is finished or another worker is making progress on it."""
    with transaction.atomic():
        job = ReplayJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in (ReplayJob.Status.DONE, ReplayJob.Status.FAILED):
            return None
        if (
            job.status == ReplayJob.Status.RUNNING
            and job.started_at
            and now - job.started_at < STALE_RUNNING
        ):
            return None
        job.status = ReplayJob.Status.RUNNING
        job.started_at = now
        job.save(update_fields=["status", "started_at"])
        return job


def replay_job_run(job_id: int) -> ReplayJob | None:
    """Work through a replay job chunk by chunk, storing progress after each chunk.

    Resumable: a job picked up again (a worker died) continues after its last stored chunk.
    """
    job = _job_start(job_id, timezone.now())
    if job is None:
        return ReplayJob.objects.filter(pk=job_id).first()
    # The fix that motivated this replay may be a second old: judge by the newest rules, not by
    # this worker's cached copy.
    ruleset_invalidate()
    ids = job.rejected_ids
    for offset in range(job.processed, len(ids), CHUNK_SIZE):
        chunk = ids[offset : offset + CHUNK_SIZE]
        counts = quarantine_replay(chunk)
        ReplayJob.objects.filter(pk=job.pk).update(
            processed=offset + len(chunk),
            accepted=F("accepted") + counts.accepted,
            duplicates=F("duplicates") + counts.duplicates,
            still_rejected=F("still_rejected") + counts.still_rejected,
            skipped=F("skipped") + counts.skipped,
            started_at=timezone.now(),  # heartbeat: progress means not stale
        )
    ReplayJob.objects.filter(pk=job.pk).update(
        status=ReplayJob.Status.DONE, finished_at=timezone.now()
    )
    job.refresh_from_db()
    logger.info(
        "quality.replay_done",
        job_id=job.pk,
        total=job.total,
        accepted=job.accepted,
        duplicates=job.duplicates,
        still_rejected=job.still_rejected,
        skipped=job.skipped,
    )
    return job


def replay_job_fail(job_id: int, error: str) -> None:
    ReplayJob.objects.filter(pk=job_id).exclude(status=ReplayJob.Status.DONE).update(
        status=ReplayJob.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )
