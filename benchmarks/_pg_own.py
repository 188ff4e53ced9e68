"""A PostgreSQL 15 of the benchmark's own, configured with scale/postgresql-tuned.conf.

The shared server (5432) keeps its defaults (128 MB of shared buffers, 5-minute checkpoints)
and must not be reconfigured, so `benchmarks/partitions.py --own-pg DIR` runs an instance of its
own: initdb into DIR/data (once; a later run reuses the cluster and its databases), trust
authentication on 127.0.0.1 only, run as the `postgres` OS user, the tuned settings included
verbatim. It is stopped at the end unless --keep.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TUNED = ROOT / "scale" / "postgresql-tuned.conf"


def _as_postgres(*command: str) -> subprocess.CompletedProcess:
    """Run as the postgres OS user (PostgreSQL refuses root) when we are root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *command], capture_output=True, text=True, check=False)


def _checked(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise SystemExit(f"{what} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def own_start(directory: str, port: str) -> Path:
    """initdb (if need be) and start the instance; return its data directory."""
    base = Path(directory)
    data = base / "data"
    if not (data / "PG_VERSION").exists():
        base.mkdir(parents=True, exist_ok=True)
        shutil.chown(base, "postgres", "postgres")
        _checked(
            _as_postgres(
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ),
            "initdb",
        )
    # Copied at each start so that the instance runs what the repository says now.
    shutil.copyfile(TUNED, data / "tuned.conf")
    shutil.chown(data / "tuned.conf", "postgres", "postgres")
    (data / "bench.conf").write_text(
        "# written by benchmarks/_pg_own.py at each start\n"
        f"listen_addresses = '127.0.0.1'\nport = {port}\n"
        f"unix_socket_directories = '{data}'\n"
        "include 'tuned.conf'\n"
    )
    main_conf = data / "postgresql.conf"
    if "include 'bench.conf'" not in main_conf.read_text():
        with main_conf.open("a") as conf:
            conf.write("\ninclude 'bench.conf'\n")
    status = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "status")
    if status.returncode != 0:
        _checked(
            _as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "start"
            ),
            f"pg_ctl start (log: {base / 'log'})",
        )
    print(f"own PostgreSQL: {data} on 127.0.0.1:{port} ({TUNED.relative_to(ROOT)})")
    return data


def own_stop(directory: str) -> None:
    data = Path(directory) / "data"
    _checked(
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
        "pg_ctl stop",
    )
    print(f"own PostgreSQL stopped (its data stays in {data})")
