"""Where PostgreSQL's CPU per stored event goes: the ingestion insert (the statement
`events.services.store` prepares) run on batches of a mix, with parts of the table taken away
one at a time in a scratch database, measured as the backend's own CPU per row (load changes
wall time far more than CPU).

    .venv/bin/python benchmarks/ingest_pg_costs.py [--mix realistic] [--batches 20] [--repeat 3]

Variants: as deployed (keys claimed set-based by the statement, ADR 0027); keys claimed per
row by the trigger (ADR 0021's form); without the trigger at all (only its WHEN test goes);
without each secondary index; Segment rows with their original message (ADR 0026:
`json`, sent apart from the document as ADR 0033 does) and, for comparison, inside the
document (before ADR 0033) and as `jsonb`. Each variant's figure is the median
of --repeat runs of --batches batches of 500, interleaved. The database is dropped after.
`--originals-only`: just the original inside vs beside the document (JSON lines, ADR 0038; and
as ADR 0033's text[]), vs one lz4 row per batch (ADR 0038's prototype, a bare table), vs as
deployed (`once`: events_originalbatch and each event's batch id and line, ADR 0041) and vs no
original, in --repeat interleaved rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import sys
import uuid
from pathlib import Path

import orjson
import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._ingest_copy import EVENTS_TABLE  # noqa: E402  (sets Django up)
from benchmarks._ingest_mix import MIXES, OFFSETS  # noqa: E402
from benchmarks._ingest_server import (  # noqa: E402
    database_create,
    database_drop,
    database_url,
    migrate,
    server_env,
)
from benchmarks._ingest_shapes import segment_message  # noqa: E402
from events.partitioning.convert import key_trigger_install  # noqa: E402
from events.services.store import (  # noqa: E402
    _RECORDSET_INSERT_BATCHED_SQL,
    _RECORDSET_INSERT_ORIGINALS_SQL,
    _RECORDSET_INSERT_SQL,
    ORIGINAL_BATCHES_TABLE,
)

KEY_TRIGGER = "events_event_key_claim"


def _per_row_claim_sql() -> str:
    """ADR 0021's statement, before ADR 0027: the rows straight from the document, each
    claiming its key in the trigger."""
    source = re.search(r"FROM json_to_recordset\(.*?::json\) AS t\(.*?\)\)", _RECORDSET_INSERT_SQL)
    main = _RECORDSET_INSERT_SQL[_RECORDSET_INSERT_SQL.index(f"INSERT INTO {EVENTS_TABLE} ") :]
    return main.replace(
        " FROM t WHERE t.event_id IN (SELECT event_id FROM claimed)", " " + source[0][:-1]
    )


def _documents(mix: str, batches: int, size: int, original: bool) -> list[tuple[str, object]]:
    """Insert parameters: one JSON document of `size` rows each (`original`: Segment rows with
    their message inside the document, the form before ADR 0033)."""
    documents = []
    for number in range(batches):
        now = dt.datetime.now(dt.UTC)
        rows = []
        for index in range(number * size, (number + 1) * size):
            event = MIXES[mix](index)
            event_id = uuid.uuid4().hex
            event["event_id"] = event_id
            event["timestamp"] = (now - dt.timedelta(seconds=OFFSETS[mix](index))).isoformat()
            if event.get("order_id") == "@OR@":
                event["order_id"] = f"ord-{event_id[:16]}"
            row = dict(event)
            if original:
                row |= {"original": segment_message(event), "source": "segment"}
            rows.append(row)
        documents.append((orjson.dumps(rows).decode(), now))
    return documents


def _originals_apart(documents: list[tuple[str, object]], form: str = "lines") -> list[tuple]:
    """The same rows as ingestion sends them (ADR 0033): the originals as a separate parameter,
    one text of JSON lines (ADR 0038), or (`form`) a text[] (ADR 0033's first form) or one
    JSON array text for a row of its own (`batch row`, a design not deployed)."""
    apart = []
    for rows_json, received_at in documents:
        rows = orjson.loads(rows_json)
        originals = [orjson.dumps(row.pop("original")).decode() for row in rows]
        if form == "lines":
            originals = "\n".join(originals)
        elif form == "batch row":
            originals = "[" + ",".join(originals) + "]"
            for row in rows:
                row["source"] = "segment"
        apart.append((orjson.dumps(rows).decode(), received_at, originals))
    return apart


# ADR 0033's first form of the statement, for comparison: the originals as a binary text[].
_TEXT_ARRAY_SQL = _RECORDSET_INSERT_ORIGINALS_SQL.replace(
    "unnest(string_to_array(%(originals)s::text, E'\\n'))", "unnest(%(originals)s::text[])"
).replace("NULLIF(o, '')::json", "o::json")
# The originals of a batch as one row of a table of their own (lz4-compressed text), inserted
# by the same statement: what storing them once per request would cost PostgreSQL.
_BATCH_ROW_TABLE = "bench_original_batch"
_BATCH_ROW_SQL = _RECORDSET_INSERT_SQL.replace(
    f") INSERT INTO {EVENTS_TABLE} (",
    f"), b AS (INSERT INTO {_BATCH_ROW_TABLE} (received_at, messages) "
    "SELECT %(received_at)s, %(originals)s::text WHERE EXISTS (SELECT 1 FROM claimed)) "
    f"INSERT INTO {EVENTS_TABLE} (",
    1,
)


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(conn: psycopg.Connection, sql: str, documents: list, size: int) -> float:
    """Backend CPU in µs per row for inserting `documents` (then emptied again)."""
    pid = conn.info.backend_pid
    with conn.cursor() as cursor:
        before = _backend_cpu(pid)
        for rows, received_at, *originals in documents:
            params = {"rows": rows, "received_at": received_at}
            if originals:
                params["originals"] = originals[0]
            cursor.execute(sql, params, prepare=True)
            cursor.fetchall()
        spent = _backend_cpu(pid) - before
        cursor.execute(f"TRUNCATE {EVENTS_TABLE}, events_eventkey")
        if sql is _BATCH_ROW_SQL:
            cursor.execute(f"TRUNCATE {_BATCH_ROW_TABLE}")
        if sql is _RECORDSET_INSERT_BATCHED_SQL:
            cursor.execute(f"TRUNCATE {ORIGINAL_BATCHES_TABLE}")
    return spent / (len(documents) * size) * 1e6


def _secondary_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = %s::regclass AND NOT indisprimary ORDER BY 1",
        [EVENTS_TABLE],
    ).fetchall()


def _originals_paired(conn: psycopg.Connection, documents: dict[str, list], args) -> None:
    """The original message inside the document against beside it (ADR 0033), in interleaved
    rounds whose order alternates: under load, the per-round difference is steadier than
    either figure."""
    statements = {"inside": _RECORDSET_INSERT_SQL, "beside": _RECORDSET_INSERT_ORIGINALS_SQL}
    statements |= {"beside text[]": _TEXT_ARRAY_SQL, "batch row": _BATCH_ROW_SQL}
    statements["once"] = _RECORDSET_INSERT_BATCHED_SQL
    statements["no original"] = _RECORDSET_INSERT_SQL
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_BATCH_ROW_TABLE} (id bigserial PRIMARY KEY, "
        "received_at timestamptz NOT NULL, messages text COMPRESSION lz4 NOT NULL)"
    )
    figures: dict[str, list[float]] = {name: [] for name in statements}
    for round_number in range(args.repeat):
        names = list(statements)[:: 1 if round_number % 2 else -1]
        for name in names:
            figures[name].append(_run(conn, statements[name], documents[name], args.batch_size))
    differences = [a - b for a, b in zip(figures["inside"], figures["beside"], strict=True)]
    saved = [a - b for a, b in zip(figures["beside"], figures["once"], strict=True)]
    print(
        f"Segment rows' originals, {args.mix} mix, {args.repeat} rounds of {args.batches} "
        f"batches of {args.batch_size}; load average {os.getloadavg()[0]:.2f}"
    )
    for name, values in figures.items():
        print(f"{name:12s} median {statistics.median(values):6.1f} us/row, min {min(values):6.1f}")
    positive = sum(difference > 0 for difference in differences)
    print(
        f"inside - beside per round: median {statistics.median(differences):+.1f} us/row, "
        f"{positive} of {len(differences)} rounds positive"
    )
    print(
        f"beside - once per round: median {statistics.median(saved):+.1f} us/row, "
        f"{sum(value > 0 for value in saved)} of {len(saved)} rounds positive"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="analytics_bench_pgcosts")
    parser.add_argument("--mix", default="realistic", choices=list(MIXES))
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--originals-only",
        action="store_true",
        help="only the original message inside vs beside the document, paired (ADR 0033)",
    )
    args = parser.parse_args()
    database_create(args.db)
    figures: dict[str, list[float]] = {}
    try:
        migrate(server_env(args.db, {}))
        with psycopg.connect(database_url(args.db), autocommit=True) as conn:
            plain = _documents(args.mix, args.batches, args.batch_size, original=False)
            with_original = _documents(args.mix, args.batches, args.batch_size, original=True)
            originals_apart = _originals_apart(with_original)
            if args.originals_only:
                documents = {"inside": with_original, "beside": originals_apart}
                documents["beside text[]"] = _originals_apart(with_original, "text[]")
                documents["batch row"] = _originals_apart(with_original, "batch row")
                documents["once"] = originals_apart
                _originals_paired(conn, documents | {"no original": plain}, args)
                return 0
            indexes = _secondary_indexes(conn)
            _run(conn, _RECORDSET_INSERT_SQL, plain[:2], args.batch_size)  # warm-up
            for _ in range(args.repeat):
                figures.setdefault("as deployed", []).append(
                    _run(conn, _RECORDSET_INSERT_SQL, plain, args.batch_size)
                )
                with conn.cursor() as cursor:
                    key_trigger_install(cursor, when_unclaimed=False)
                figures.setdefault("keys claimed per row in the trigger (ADR 0021)", []).append(
                    _run(conn, _per_row_claim_sql(), plain, args.batch_size)
                )
                with conn.cursor() as cursor:
                    key_trigger_install(cursor, when_unclaimed=True)
                conn.execute(f"ALTER TABLE {EVENTS_TABLE} DISABLE TRIGGER {KEY_TRIGGER}")
                figures.setdefault("without the key trigger", []).append(
                    _run(conn, _RECORDSET_INSERT_SQL, plain, args.batch_size)
                )
                conn.execute(f"ALTER TABLE {EVENTS_TABLE} ENABLE TRIGGER {KEY_TRIGGER}")
                for name, definition in indexes:
                    conn.execute(f"DROP INDEX {name}")
                    figures.setdefault(f"without {name}", []).append(
                        _run(conn, _RECORDSET_INSERT_SQL, plain, args.batch_size)
                    )
                    conn.execute(definition)
                figures.setdefault("Segment rows, original as json", []).append(
                    _run(conn, _RECORDSET_INSERT_ORIGINALS_SQL, originals_apart, args.batch_size)
                )
                figures.setdefault("Segment rows, original inside the document", []).append(
                    _run(conn, _RECORDSET_INSERT_SQL, with_original, args.batch_size)
                )
                conn.execute(f"ALTER TABLE {EVENTS_TABLE} ALTER COLUMN original TYPE jsonb")
                as_jsonb = _RECORDSET_INSERT_SQL.replace('"original" json', '"original" jsonb')
                figures.setdefault("Segment rows, original as jsonb", []).append(
                    _run(conn, as_jsonb, with_original, args.batch_size)
                )
                conn.execute(f"ALTER TABLE {EVENTS_TABLE} ALTER COLUMN original TYPE json")
    finally:
        database_drop(args.db)
    reference = statistics.median(figures["as deployed"])
    print(
        f"PostgreSQL backend CPU per stored row, {args.mix} mix, {args.batches} batches of "
        f"{args.batch_size}, median of {args.repeat}; load average {os.getloadavg()[0]:.2f}"
    )
    for label, values in figures.items():
        median = statistics.median(values)
        print(f"{label:46s} {median:6.1f} us/row  {median - reference:+6.1f} us vs as deployed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
