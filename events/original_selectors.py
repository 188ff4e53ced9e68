"""An event's original message (ADR 0041): its own `original` column when set (events stored
before, replays, SQLite), else its line of the OriginalBatch its insert stored once.

The readers that show originals (admin, exports, /events/recent, rule samples) go through
here: a batch of rows reads each OriginalBatch it needs once, however many events share it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

from events.models import Event, OriginalBatch

# What a read must fetch beside `original` to resolve it.
ORIGINAL_REFERENCE_FIELDS: tuple[str, str] = ("original_batch_id", "original_line")


def _batch_lines(batch_ids: Iterable[int]) -> dict[int, list[str]]:
    ids = set(batch_ids)
    if not ids:
        return {}
    rows = OriginalBatch.objects.filter(pk__in=ids).values_list("pk", "messages")
    return {pk: messages.split("\n") for pk, messages in rows}


def _line_original(lines: list[str] | None, line: int | None) -> Any:
    """Line `line` (from 1) as JSON; None for an empty line (none kept, or erased)."""
    if lines is None or line is None or not 0 < line <= len(lines) or not lines[line - 1]:
        return None
    text = lines[line - 1]
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what psycopg's json loader would read (e.g. huge numbers)
        return json.loads(text)


def event_original(event: Event) -> Any:
    """The message a protocol sent for `event`, as JSON (None for our own API's events)."""
    if event.original is not None or event.original_batch_id is None:
        return event.original
    lines = _batch_lines([event.original_batch_id]).get(event.original_batch_id)
    return _line_original(lines, event.original_line)


def originals_in_tuples(rows: list[tuple[Any, ...]], at: int) -> list[tuple[Any, ...]]:
    """Rows of a values_list whose last two values are ORIGINAL_REFERENCE_FIELDS, with the
    original (at index `at`) resolved and those two left off."""
    lines = _batch_lines(row[-2] for row in rows if row[at] is None and row[-2] is not None)
    resolved = []
    for row in rows:
        values = list(row[:-2])
        if values[at] is None and row[-2] is not None:
            values[at] = _line_original(lines.get(row[-2]), row[-1])
        resolved.append(tuple(values))
    return resolved


def originals_in_dicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of a values() holding `original` and ORIGINAL_REFERENCE_FIELDS, with the original
    resolved and those two taken out (in place)."""
    batch, line = ORIGINAL_REFERENCE_FIELDS
    lines = _batch_lines(
        row[batch] for row in rows if row["original"] is None and row[batch] is not None
    )
    for row in rows:
        batch_id, number = row.pop(batch), row.pop(line)
        if row["original"] is None and batch_id is not None:
            row["original"] = _line_original(lines.get(batch_id), number)
    return rows
