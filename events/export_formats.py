"""Export file formats: JSON Lines, CSV and Parquet, written batch by batch.

Each writer turns an iterator of row batches (tuples in a known column order, from
`export_selectors.keyset_batches`) into an iterator of byte chunks, one or more per batch, so
a file or an HTTP response is written as the rows are read and memory stays bounded by one
batch. Parquet writes one row group per batch and its footer at the end.

pyarrow is optional (requirements/export.txt): without it JSONL and CSV work, and asking for
Parquet raises `ExportFormatUnavailable` with the command to install it.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

try:  # optional: Parquet only
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - exercised only where pyarrow is not installed
    pa = None
    pq = None

from events.export_selectors import EVENT_EXPORT_COLUMNS, REJECTED_EXPORT_COLUMNS

FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet")
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
PARQUET_INSTALL = "pip install -r requirements/export.txt"

Batch = list[tuple[Any, ...]]


class ExportFormatUnavailable(RuntimeError):
    """The format needs a package that is not installed."""


@dataclass(frozen=True)
class ExportKind:
    """What one export holds: its columns in order, the ones that hold JSON values, and the
    Parquet type of each (names of pyarrow factories, resolved only when Parquet is asked)."""

    name: str
    columns: tuple[str, ...]
    json_columns: frozenset[str]
    arrow_types: dict[str, tuple[str, tuple[Any, ...]]]


_TS = ("timestamp", ("us", "UTC"))
_STR = ("string", ())

EVENTS = ExportKind(
    name="events",
    columns=EVENT_EXPORT_COLUMNS,
    json_columns=frozenset({"properties", "warnings", "derived", "original"}),
    arrow_types={
        "id": ("int64", ()),
        "timestamp": _TS,
        "client_timestamp": _TS,
        "received_at": _TS,
        "price": ("decimal128", (12, 2)),
        "quantity": ("int32", ()),
        "revenue": ("decimal128", (14, 2)),
    },
)
QUARANTINE = ExportKind(
    name="quarantine",
    columns=REJECTED_EXPORT_COLUMNS,
    json_columns=frozenset({"reasons", "rule_ids"}),
    arrow_types={
        "id": ("int64", ()),
        "received_at": _TS,
        "replayed_at": _TS,
        "raw_truncated": ("bool_", ()),
        "source_key_id": ("int64", ()),
        "replay_count": ("int64", ()),
    },
)


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _jsonl(kind: ExportKind, batches: Iterable[Batch]) -> Iterator[bytes]:
    """One JSON object per line; times ISO-8601 with offset, decimals as numbers (as the API)."""
    columns = kind.columns
    for batch in batches:
        yield b"".join(
            orjson.dumps(
                dict(zip(columns, row, strict=True)),
                default=_json_default,
                option=orjson.OPT_APPEND_NEWLINE,
            )
            for row in batch
        )


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _csv(kind: ExportKind, batches: Iterable[Batch]) -> Iterator[bytes]:
    """A header line, then one line per row; JSON columns hold compact JSON text, None is ""."""
    json_at = [i for i, name in enumerate(kind.columns) if name in kind.json_columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(kind.columns)
    for batch in batches:
        for row in batch:
            cells = [_csv_cell(value) for value in row]
            for i in json_at:
                if row[i] is not None:  # `original` is null unless a protocol translated
                    cells[i] = orjson.dumps(row[i], default=_json_default).decode()
            writer.writerow(cells)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


class _ChunkSink(io.RawIOBase):
    """A write-only stream that keeps what it is given until `take()`: lets pyarrow write a
    Parquet file into a response or a pipe one row group at a time."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def parquet_available() -> bool:
    return pa is not None


def _arrow_schema(kind: ExportKind) -> Any:
    fields = []
    for name in kind.columns:
        factory, arguments = kind.arrow_types.get(name, _STR)
        fields.append(pa.field(name, getattr(pa, factory)(*arguments)))
    return pa.schema(fields)


def _arrow_column(values: tuple[Any, ...], is_json: bool) -> list[Any]:
    if is_json:
        return [None if value is None else orjson.dumps(value).decode() for value in values]
    if values and isinstance(values[0], uuid.UUID):
        return [str(value) for value in values]
    return list(values)


def _parquet(kind: ExportKind, batches: Iterable[Batch]) -> Iterator[bytes]:
    """One row group per batch; JSON columns as JSON text, uuids as text, times in UTC."""
    if pa is None:
        raise ExportFormatUnavailable(f"Parquet needs pyarrow: {PARQUET_INSTALL}")
    schema = _arrow_schema(kind)
    sink = _ChunkSink()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for batch in batches:
            columns = zip(*batch, strict=True)
            arrays = [
                pa.array(
                    _arrow_column(values, name in kind.json_columns),
                    type=schema.field(name).type,
                )
                for name, values in zip(kind.columns, columns, strict=True)
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            yield sink.take()
    yield sink.take()


_WRITERS: dict[str, Callable[[ExportKind, Iterable[Batch]], Iterator[bytes]]] = {
    "jsonl": _jsonl,
    "csv": _csv,
    "parquet": _parquet,
}


def export_chunks(kind: ExportKind, batches: Iterable[Batch], fmt: str) -> Iterator[bytes]:
    """The export of `batches` in format `fmt`, as byte chunks to write in order."""
    if fmt not in _WRITERS:
        raise ValueError(f"format must be one of {FORMATS}")
    if fmt == "parquet" and pa is None:
        raise ExportFormatUnavailable(f"Parquet needs pyarrow: {PARQUET_INSTALL}")
    return _WRITERS[fmt](kind, batches)
