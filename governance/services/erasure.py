"""Erasure requests: forget a person everywhere, keeping every dashboard number exact (ADR 0007).

A request names a user id and its anonymous ids. `erasure_request_run` removes, in batches of
`ERASURE_BATCH_EVENTS`, the person's stored events (each batch one transaction: the intake and
dashboard rollups are corrected under their watermark locks, then the rows are deleted), then
their rejected events (likewise), then drops the rollups' user keys with nothing left, then the
person record and the links between their ids (ADR 0015). Each batch
finds what is left, so a run that stops half-way is resumed by running again (idempotent); a
done request is not run again. Events arriving after a request is done are new data (ADR 0007).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from events.services import (
    event_pks_of_users,
    events_delete,
    people_delete,
    person_ids,
    rejected_events_delete,
    rejected_pks_of_users,
)
from governance.models import ErasureRequest
from quality.services.intake_forget import intake_rows_forget
from reports.services.rollup_erasure import rollups_forget_begin, rollups_forget_finish

ID_MAX_LENGTH = 128  # events.Event.user_id


class ErasureInputError(ValueError):
    """A bad erasure request: `field` names the input, `rule` the broken rule."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field, self.rule, self.message = field, rule, message


def subject_hash(user_id: str) -> str:
    """Keyed hash of an id: the audit trail can confirm "was X erased?" without holding X."""
    key = settings.ERASURE_HASH_KEY.encode()
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()


def erasure_ids_clean(user_id: Any, anonymous_ids: Any) -> list[str]:
    """The ids to erase, user id first, without repeats; ErasureInputError when one is bad."""
    if not isinstance(user_id, str) or not user_id.strip():
        raise ErasureInputError("user_id", "required", "A non-empty user id is required.")
    if not isinstance(anonymous_ids, list | tuple) or not all(
        isinstance(value, str) and value.strip() for value in anonymous_ids
    ):
        raise ErasureInputError(
            "anonymous_ids", "type", "anonymous_ids must be a list of non-empty strings."
        )
    ids = list(dict.fromkeys([user_id, *anonymous_ids]))
    for value in ids:
        if len(value) > ID_MAX_LENGTH:
            field = "user_id" if value == user_id else "anonymous_ids"
            raise ErasureInputError(field, "max_length", f"Ids are at most {ID_MAX_LENGTH} long.")
    if len(ids) > 100:
        raise ErasureInputError("anonymous_ids", "max_items", "At most 99 anonymous ids.")
    return ids


def erasure_request_create(
    *,
    user_id: Any,
    anonymous_ids: Any = (),
    via: str,
    requested_by: Any = None,
    requested_by_label: str = "",
    enqueue: bool = True,
) -> ErasureRequest:
    """Store a pending request and (after commit) hand it to the Celery task.

    Raises ErasureInputError for a missing, mistyped or too long id."""
    ids = erasure_ids_clean(user_id, anonymous_ids)
    label = requested_by_label or (requested_by.get_username() if requested_by else via)
    request = ErasureRequest.objects.create(
        subject_hash=subject_hash(ids[0]),
        alias_hashes=[subject_hash(value) for value in ids[1:]],
        subject_ids=ids,
        via=via,
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
        requested_by_label=label[:150],
    )
    if enqueue:
        erasure_request_enqueue(request.pk)
    return request


def erasure_request_enqueue(request_id: int) -> None:
    """Run the request on a worker after the current transaction commits."""
    task = current_app.signature("governance.erasure_request_process", args=(request_id,))
    transaction.on_commit(task.delay)


def _start(request_id: int) -> ErasureRequest | None:
    with transaction.atomic():
        request = ErasureRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.status == ErasureRequest.Status.DONE:
            return None
        request.status = ErasureRequest.Status.RUNNING
        request.started_at = request.started_at or timezone.now()
        request.error = ""
        request.save(update_fields=["status", "started_at", "error"])
    return request


def _count(request_id: int, **deltas: int) -> None:
    ErasureRequest.objects.filter(pk=request_id).update(
        batches=F("batches") + 1, **{name: F(name) + value for name, value in deltas.items()}
    )


def _events_batch(request_id: int, ids: Sequence[str], size: int) -> int:
    """One transaction: lock a batch of the person's events, correct the rollups, delete."""
    with transaction.atomic():
        pks = event_pks_of_users(ids, limit=size)
        if not pks:
            return 0
        intake_rows_forget(pks, [])  # lock order as a replay: intake, then dashboard rollups
        forget = rollups_forget_begin(pks)
        deleted = events_delete(pks)
        forgotten = rollups_forget_finish(forget, ids)
        _count(request_id, events_deleted=deleted, users_forgotten=forgotten)
    return deleted


def _rejected_batch(request_id: int, ids: Sequence[str], after_pk: int, size: int) -> int | None:
    """One transaction: the next batch of rejected rows naming the person. Returns where the
    scan goes on, or None when it is done."""
    with transaction.atomic():
        pks, last = rejected_pks_of_users(ids, after_pk=after_pk, limit=size)
        if pks:
            intake_rows_forget([], pks)
            _count(request_id, quarantined_deleted=rejected_events_delete(pks))
    return last


def _user_keys_drop(request_id: int, ids: Sequence[str]) -> None:
    """Users whose raw events were all gone already (retention) still have rollup keys."""
    with transaction.atomic():
        forget = rollups_forget_begin([])
        forgotten = rollups_forget_finish(forget, ids)
        if forgotten:
            _count(request_id, users_forgotten=forgotten)


def erasure_request_run(request_id: int, *, batch: int | None = None) -> ErasureRequest | None:
    """Process a request to the end; None when it is unknown or already done. A failure marks
    it failed (keeping the ids to run it again) and is raised."""
    request = _start(request_id)
    if request is None:
        return None
    size = batch or settings.ERASURE_BATCH_EVENTS
    # Every id of the person (ADR 0015): ids linked by identify or alias calls are theirs too.
    ids = person_ids(request.subject_ids)
    try:
        while _events_batch(request_id, ids, size):
            pass
        after: int | None = 0
        while after is not None:
            after = _rejected_batch(request_id, ids, after, size)
        _user_keys_drop(request_id, ids)
        with transaction.atomic():
            people_delete(ids)
    except Exception as exc:
        ErasureRequest.objects.filter(pk=request_id).update(
            status=ErasureRequest.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    ErasureRequest.objects.filter(pk=request_id).update(
        status=ErasureRequest.Status.DONE, subject_ids=[], finished_at=timezone.now()
    )
    return ErasureRequest.objects.get(pk=request_id)
