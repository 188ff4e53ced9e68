"""The production-like stack the fault suite and the soak drive: a redis-server of its own,
TCP proxies in front of PostgreSQL and of that Redis, gunicorn as the Procfile runs it
(2 workers, the keep-alive thread worker), a Celery worker and beat, all reaching PostgreSQL
and Redis only through the proxies, so a fault injected there is what they see.

Ports come from FAULTS_PORT_BASE (default 8390): base gunicorn, +1 redis-server, +2/+3 the
PostgreSQL proxy and its control port, +4/+5 the Redis proxy and its control port.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.faults.tcp_proxy import ROOT, ProxyProcess

GUNICORN_WORKER = "analytics_site.gunicorn_workers.KeepAliveThreadWorker"  # as in the Procfile
SAFETY_LAG_SECONDS = 3  # short, so "a commit later than the lag" takes seconds
FOLD_INTERVAL_SECONDS = 2


class Stack:
    def __init__(self, database: str, workdir: Path, port_base: int | None = None) -> None:
        base = port_base or int(os.environ.get("FAULTS_PORT_BASE", "8390"))
        self.web_port, self.redis_port = base, base + 1
        self.database, self.workdir = database, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.pg = ProxyProcess(base + 2, "127.0.0.1:5432", base + 3, workdir / "pg-proxy.log")
        self.redis = ProxyProcess(
            base + 4, f"127.0.0.1:{self.redis_port}", base + 5, workdir / "redis-proxy.log"
        )
        self.redis_process: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.beats: list[subprocess.Popen] = []
        self.extra_env: dict[str, str] = {}

    # ------------------------------------------------------------------------- environment
    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg.listen}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.listen}/0"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            ENVIRONMENT="testing",
            CELERY_TASK_ALWAYS_EAGER="false",
            CELERY_TASK_DEFAULT_QUEUE="faults",
            INGEST_ALLOW_ANONYMOUS="true",
            READ_ALLOW_ANONYMOUS="true",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            ROLLUP_SAFETY_LAG_SECONDS=str(SAFETY_LAG_SECONDS),
            ROLLUP_INTERVAL_SECONDS=str(FOLD_INTERVAL_SECONDS),
            INTAKE_INTERVAL_SECONDS=str(FOLD_INTERVAL_SECONDS),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("ab")
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a SIGKILL of the group reaches gunicorn's workers too
        )

    # ------------------------------------------------------------------------- processes
    def start(self) -> None:
        self.redis_start()
        self.pg.start()
        self.redis.start()
        self.web_start()
        self.worker_start()
        self.beat_start()
        self.wait_ready()

    def redis_start(self) -> None:
        if not shutil.which("redis-server"):
            raise RuntimeError("needs redis-server on PATH")
        self.redis_process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=(self.workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True, text=True
            )
            if "PONG" in out.stdout:
                return
            time.sleep(0.1)
        raise RuntimeError("own redis-server did not start")

    def redis_kill(self) -> None:
        _kill(self.redis_process)

    def web_start(self) -> None:
        self.web = self._spawn(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "analytics_site.wsgi",
                "--no-control-socket",
                "--workers",
                "2",
                "--worker-class",
                GUNICORN_WORKER,
                "--threads",
                "2",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--timeout",
                "60",
            ],
            DB_ROLE="web",
        )

    def worker_start(self) -> None:
        self.worker = self._spawn(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "analytics_site",
                "worker",
                "--loglevel=INFO",
                "-Q",
                "faults",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            DB_ROLE="worker",
        )

    def worker_kill(self) -> None:
        _kill(self.worker, group=True)

    def beat_start(self) -> subprocess.Popen:
        index = len(self.beats)
        beat = self._spawn(
            f"beat{index}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "analytics_site",
                "beat",
                "--loglevel=INFO",
                "--schedule",
                str(self.workdir / f"beat{index}-schedule"),
            ],
            DB_ROLE="worker",
        )
        self.beats.append(beat)
        return beat

    def stop(self) -> None:
        for process in [self.web, self.worker, *self.beats]:
            _kill(process, group=True, sig=signal.SIGTERM)
        self.pg.kill()
        self.redis.kill()
        self.redis_kill()

    # ------------------------------------------------------------------------- probes
    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until gunicorn answers /health with 200 (database and broker reachable)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.get("/health", timeout=2)[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"stack not ready in {timeout} s; logs in {self.workdir}")

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _kill(process: subprocess.Popen | None, group: bool = False, sig=signal.SIGKILL) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def rss_kib(process: subprocess.Popen | None) -> int:
    """Resident memory of a process and its children (a prefork worker's pool), in KiB."""
    if process is None or process.poll() is not None:
        return 0
    pids = [str(process.pid)]
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    if children.exists():
        pids += children.read_text().split()
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total
