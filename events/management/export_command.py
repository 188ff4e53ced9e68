"""What `export_events` and `export_quarantine` share: time arguments, the output file and
the progress bar. The commands stay thin: parse, call the selectors and the format writer."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from events.export_formats import (
    FORMATS,
    ExportFormatUnavailable,
    ExportKind,
    export_chunks,
)
from events.export_selectors import EXPORT_BATCH_ROWS, keyset_batches


def moment(value: str) -> dt.datetime:
    """An ISO-8601 date or date-time; a date is its midnight and no offset means UTC."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(f"{value!r} is not an ISO-8601 date or date-time")
        parsed = dt.datetime.combine(day, dt.time())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


class ExportCommand(BaseCommand):
    """A streaming export of one kind of rows to a file or stdout."""

    kind: ExportKind

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=moment, help="from this time on (ISO-8601)")
        parser.add_argument("--until", type=moment, help="before this time (ISO-8601)")
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument("--out", default="-", help="file to write; - (default) is stdout")
        parser.add_argument("--batch-rows", type=int, default=EXPORT_BATCH_ROWS)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def export(self, queryset: QuerySet, order_field: str, options: dict[str, Any]) -> None:
        """Write every row of `queryset` in (order_field, id) order; a file appears under its
        name only when complete (written as NAME.partial, then renamed)."""
        if options["batch_rows"] < 1:
            raise CommandError("--batch-rows must be at least 1")
        since, until = options["since"], options["until"]
        if since and until and until <= since:
            raise CommandError("--until must be after --since")
        total = queryset.count()
        batches = keyset_batches(
            queryset, self.kind.columns, order_field=order_field, batch_rows=options["batch_rows"]
        )
        progress = tqdm(
            total=total,
            unit="rows",
            file=sys.stderr,
            disable=options["no_progress"],
            desc=f"export {self.kind.name}",
        )
        rows = [0]
        try:
            chunks = export_chunks(self.kind, _counted(batches, progress, rows), options["format"])
        except ExportFormatUnavailable as exc:
            raise CommandError(str(exc)) from exc
        with progress:
            written = self._write(chunks, options["out"])
        self.stderr.write(f"exported {rows[0]} {self.kind.name} rows ({written} bytes)")

    def _write(self, chunks: Iterable[bytes], out: str) -> int:
        if out == "-":
            return _copy(chunks, sys.stdout.buffer)
        path = Path(out)
        partial = path.with_name(path.name + ".partial")
        try:
            with partial.open("wb") as stream:
                written = _copy(chunks, stream)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)
        return written


def _counted(batches: Iterable[list], progress: tqdm, rows: list[int]) -> Iterator[list]:
    """The batches, counted into `rows[0]` and the progress bar as they go by."""
    for batch in batches:
        yield batch
        rows[0] += len(batch)
        progress.update(len(batch))


def _copy(chunks: Iterable[bytes], stream: BinaryIO) -> int:
    written = 0
    for chunk in chunks:
        stream.write(chunk)
        written += len(chunk)
    stream.flush()
    return written
