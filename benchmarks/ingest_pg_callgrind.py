"""PostgreSQL instructions per stored event for the ingestion insert: exact and load-independent.

    .venv/bin/python benchmarks/ingest_pg_callgrind.py [--mix realistic] [--prefill 100000] \\
        [--variants deployed,trigger,indexes] [--report 25]

The backend CPU from /proc (benchmarks/ingest_pg_costs.py) moves by ±5 µs per row on the shared
2-core machine, as much as the parts it is meant to tell apart. Here the statement that
`events.services.store` prepares runs in a private single-user PostgreSQL (`postgres --single`:
no server, no port) under valgrind's callgrind, which counts the instructions it executes.

How: the schema comes from a migrated scratch database (`pg_dump --schema-only`); a private
cluster under a temporary directory gets it and --prefill rows through the statement itself;
then, for each variant, a copy of that cluster runs the statement prepared with a generic plan
(what psycopg's prepared statement uses from its sixth run on) on 2 and on 6 batches of 500, and
the difference over 2,000 rows is the figure. The batches travel as SQL literals, which
single-user mode reads and scans (about a tenth of the count, the same in every variant).

Variants: `deployed` (as is), `trigger` (the key trigger disabled: what its WHEN test costs),
`indexes` (each secondary index of the events table dropped in turn), `originals` (Segment rows
with their original messages: beside the document into each row's column, ADR 0038, and once
per batch, ADR 0041); `--prelude LABEL=SQL` adds a variant of your own (e.g. an index changed),
`--variants ''` leaves the others out.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._ingest_copy import EVENTS_TABLE  # noqa: E402  (sets Django up)
from benchmarks._ingest_mix import MIXES  # noqa: E402
from benchmarks._ingest_server import (  # noqa: E402
    database_create,
    database_drop,
    database_url,
    migrate,
    server_env,
)
from benchmarks.ingest_pg_costs import KEY_TRIGGER, _documents, _originals_apart  # noqa: E402
from events.services.store import (  # noqa: E402
    _RECORDSET_INSERT_BATCHED_SQL,
    _RECORDSET_INSERT_ORIGINALS_SQL,
    _RECORDSET_INSERT_SQL,
)

BINDIR = Path(
    subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
    or "/usr/lib/postgresql/15/bin"
)
BATCH = 500
SMALL, LARGE = 2, 6  # batches per run; the difference is the figure


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _own(*paths: Path) -> None:
    """Files the postgres user must write, when this runs as root."""
    if os.geteuid() == 0:
        for path in paths:
            shutil.chown(path, "postgres")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _script(documents: list, prelude: str, statement: str = _RECORDSET_INSERT_SQL) -> str:
    """The statement as a prepared statement counting its rows (single-user mode prints every
    row a statement returns), then one EXECUTE per batch (with its originals, if any)."""
    sql = statement.replace(
        f") INSERT INTO {EVENTS_TABLE} (", f"), ins AS (INSERT INTO {EVENTS_TABLE} (", 1
    )
    sql = sql.replace("%(rows)s", "$1").replace("%(received_at)s", "$2")
    sql = sql.replace("%(originals)s", "$3")
    types = "text, timestamptz, text" if "$3" in sql else "text, timestamptz"
    parts = ["SET plan_cache_mode = force_generic_plan;", prelude]
    parts.append(f"PREPARE ins({types}) AS {sql}) SELECT count(*) FROM ins;")
    for rows, at, *originals in documents:
        more = "".join(f", {_literal(text)}" for text in originals)
        parts.append(f"EXECUTE ins({_literal(rows)}, '{at.isoformat()}'{more});")
    return "\n\n".join(part for part in parts if part) + "\n\n"


def _instructions(cluster: Path, work: Path, script: str, tag: str, keep: Path | None) -> int:
    data = work / f"run-{tag}"
    shutil.copytree(cluster, data, symlinks=True)
    _own(data, *data.rglob("*"))
    out = work / f"callgrind-{tag}.out"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    command += [str(BINDIR / "postgres"), "--single", "-j", "-D", str(data), "bench"]
    result = subprocess.run(
        _as_postgres(command), input=script, capture_output=True, text=True, check=False
    )
    shutil.rmtree(data)
    if "ERROR" in result.stdout:
        raise RuntimeError(result.stdout[-2000:])
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if keep is not None:
        shutil.copy(out, keep / out.name)
    return int(match[1])


def _cluster(work: Path, mix: str, prefill: int, scratch: str) -> tuple[Path, list[str]]:
    """A private cluster with the migrated schema and `prefill` rows; its secondary indexes."""
    database_create(scratch)
    try:
        migrate(server_env(scratch, {}))
        schema = subprocess.run(
            ["pg_dump", "--schema-only", database_url(scratch)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        database_drop(scratch)
    cluster = work / "cluster"
    socket = work / "socket"
    socket.mkdir()
    _own(work, socket)
    initdb = [str(BINDIR / "initdb"), "-D", str(cluster), "-E", "UTF8", "--locale=C.UTF-8"]
    subprocess.run(_as_postgres([*initdb, "-A", "trust"]), check=True, capture_output=True)
    options = f"-c listen_addresses='' -k {socket} -c fsync=off"
    pg_ctl = [str(BINDIR / "pg_ctl"), "-D", str(cluster), "-w", "-l", str(work / "server.log")]
    subprocess.run(_as_postgres([*pg_ctl, "-o", options, "start"]), check=True)
    try:
        with psycopg.connect(host=str(socket), user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute("CREATE DATABASE bench")
        # psql, not one statement: pg_dump writes psql meta-commands too.
        psql = ["psql", "-h", str(socket), "-U", "postgres", "-d", "bench", "-q"]
        subprocess.run([*psql, "-v", "ON_ERROR_STOP=1"], input=schema, text=True, check=True)
        with psycopg.connect(host=str(socket), user="postgres", dbname="bench") as conn:
            conn.autocommit = True
            for rows, at in _documents(mix, max(prefill // BATCH, 1), BATCH, original=False):
                conn.execute(_RECORDSET_INSERT_SQL, {"rows": rows, "received_at": at})
            conn.execute("VACUUM ANALYZE")
            indexes = conn.execute(
                "SELECT indexrelid::regclass::text FROM pg_index "
                "WHERE indrelid = %s::regclass AND NOT indisprimary ORDER BY 1",
                [EVENTS_TABLE],
            ).fetchall()
    finally:
        subprocess.run(_as_postgres([*pg_ctl, "stop"]), check=True, capture_output=True)
    return cluster, [name for (name,) in indexes]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", default="realistic", choices=list(MIXES))
    parser.add_argument("--prefill", type=int, default=100_000, help="rows stored first")
    parser.add_argument("--variants", default="deployed,trigger,indexes")
    parser.add_argument(
        "--prelude",
        action="append",
        default=[],
        metavar="LABEL=SQL",
        help="a variant of your own: SQL run on the cluster's copy first (repeatable)",
    )
    parser.add_argument(
        "--db", default="analytics_bench_pgcallgrind", help="scratch database to migrate"
    )
    parser.add_argument(
        "--keep-profiles",
        type=Path,
        metavar="DIR",
        help="copy each run's callgrind output here (callgrind_annotate --inclusive=yes)",
    )
    args = parser.parse_args()
    variants = args.variants.split(",")
    with tempfile.TemporaryDirectory(prefix="pg-callgrind-") as tmp:
        work = Path(tmp)
        cluster, indexes = _cluster(work, args.mix, args.prefill, args.db)
        preludes = {}
        # label: (prelude, statement, documents with originals, and how they are passed)
        statements: dict[str, tuple[str, bool]] = {}
        if "deployed" in variants:
            preludes["as deployed"] = ""
        if "originals" in variants:
            for label, statement in (
                ("Segment rows, no original", _RECORDSET_INSERT_SQL),
                ("Segment rows, originals per row (ADR 0038)", _RECORDSET_INSERT_ORIGINALS_SQL),
                ("Segment rows, originals once (ADR 0041)", _RECORDSET_INSERT_BATCHED_SQL),
            ):
                preludes[label] = ""
                statements[label] = (statement, statement is not _RECORDSET_INSERT_SQL)
        if "trigger" in variants:
            preludes["without the key trigger"] = (
                f"ALTER TABLE {EVENTS_TABLE} DISABLE TRIGGER {KEY_TRIGGER};"
            )
        if "indexes" in variants:
            for name in indexes:
                preludes[f"without {name}"] = f"DROP INDEX {name};"
        for item in args.prelude:
            label, _, sql = item.partition("=")
            preludes[label] = sql
        figures = {}
        for number, (label, prelude) in enumerate(preludes.items()):
            counts = []
            statement, originals = statements.get(label, (_RECORDSET_INSERT_SQL, False))
            for batches in (SMALL, LARGE):
                if label in statements:
                    documents = _originals_apart(_documents(args.mix, batches, BATCH, True))
                    if not originals:  # the same Segment rows, their originals left out
                        documents = [(rows, at) for rows, at, _ in documents]
                else:
                    documents = _documents(args.mix, batches, BATCH, original=False)
                script = _script(documents, prelude, statement)
                tag = f"{number}-{batches}"
                counts.append(_instructions(cluster, work, script, tag, args.keep_profiles))
            figures[label] = (counts[1] - counts[0]) / ((LARGE - SMALL) * BATCH)
    reference = figures.get("as deployed")
    print(
        f"PostgreSQL instructions per stored row (callgrind, single-user, generic plan), "
        f"{args.mix} mix, {args.prefill:,} rows stored first"
    )
    for label, value in figures.items():
        delta = f"{value - reference:+9,.0f} vs as deployed" if reference else ""
        print(f"{label:46s} {value:9,.0f} instructions/row {delta}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
