"""The ingestion benchmark's scratch database and gunicorn server (benchmarks/ingest.py).

Everything here only talks to 127.0.0.1 and stops what it starts: the server runs in its own
session so that stopping it stops its workers too.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# benchmarks/partitions.py --port (its own instance) sets this; 5432 is the shared server.
PORT = os.environ.get("BENCH_PG_PORT", "5432")
WORKER_CLASSES = {
    "keepalive": "analytics_site.gunicorn_workers.KeepAliveThreadWorker",  # as in the Procfile
    "gthread": "gthread",
    "sync": "sync",
}


# ----------------------------------------------------------------------------- database
def database_url(name: str) -> str:
    return f"postgres://postgres@{HOST}:{PORT}/{name}"


def database_create(name: str) -> None:
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(name: str) -> None:
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(db_name: str, extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(
        DATABASE_URL=database_url(db_name),
        ENVIRONMENT="development",
        DEBUG="false",
        INGEST_THROTTLE_ENABLED="false",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def events_truncate(db_name: str) -> None:
    with psycopg.connect(database_url(db_name), autocommit=True) as conn:
        conn.execute(
            "TRUNCATE events_event, events_eventkey, events_rejectedevent RESTART IDENTITY"
        )
        conn.execute("VACUUM ANALYZE events_event")


def events_count(db_name: str) -> int:
    with psycopg.connect(database_url(db_name)) as conn:
        return conn.execute("SELECT count(*) FROM events_event").fetchone()[0]


# ----------------------------------------------------------------------------- server
def server_start(env: dict[str, str], args) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "analytics_site.wsgi",
        "--bind",
        f"{HOST}:{args.port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        WORKER_CLASSES[args.worker_class],
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
        "--backlog",
        "256",
    ]
    if args.worker_class != "sync":
        command += ["--threads", str(args.threads)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited early with code {process.returncode}")
        try:
            connection = http.client.HTTPConnection(HOST, args.port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                connection.close()
                return process
        except OSError:
            pass
        time.sleep(0.3)
    server_stop(process)
    raise SystemExit("gunicorn did not answer /health within 60 s")


def server_stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
