"""A PostgreSQL primary and a streaming replica of our own (issue 15 §2, §3 tests): separate data
directories in a temp dir, started with pg_ctl on ports of this worktree's range, as the
`postgres` user when the tests run as root (PostgreSQL refuses root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


def _run(*command: str) -> None:
    subprocess.run(_as_postgres(*command), check=True, capture_output=True, timeout=120)


class PgNode:
    def __init__(self, root: Path, name: str, port: int) -> None:
        self.data = root / name
        self.port = port
        self.log = root / f"{name}.log"

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        _run(str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"),
            capture_output=True,
            timeout=60,
            check=False,
        )

    def promote(self) -> None:
        _run(str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "promote")

    def sql(self, query: str, db: str = "postgres", params=None):
        with psycopg.connect(self.url(db), autocommit=True, connect_timeout=3) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else None


class PgCluster:
    """`primary` on `port`, `replica` (pg_basebackup -R, streaming) on `port + 1`."""

    def __init__(self, port: int) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="scale-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.primary = PgNode(self.root, "primary", port)
        self.replica = PgNode(self.root, "replica", port + 1)

    def up(self, *, synchronous: bool = False) -> PgCluster:
        """Start both; `synchronous`: a commit waits for the replica's flush (nothing
        acknowledged is lost when the replica is promoted)."""
        _run(str(BIN / "initdb"), "-D", str(self.primary.data), "-U", "postgres", "-A", "trust")
        conf = (
            f"port = {self.primary.port}\nlisten_addresses = '127.0.0.1'\n"
            "unix_socket_directories = ''\nfsync = off\nshared_buffers = 32MB\n"
            "wal_level = replica\nhot_standby = on\nmax_wal_senders = 4\n"
        )
        with open(self.primary.data / "postgresql.auto.conf", "a") as handle:
            handle.write(conf)
        self.primary.start()
        _run(
            str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
            "-U", "postgres", "-D", str(self.replica.data), "-R", "-X", "stream",
        )  # fmt: skip
        with open(self.replica.data / "postgresql.auto.conf", "a") as handle:
            handle.write(f"port = {self.replica.port}\n")
        self.replica.start()
        self.wait_caught_up()
        if synchronous:
            self.primary.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
            self.primary.sql("SELECT pg_reload_conf()")
        return self

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        target = self.primary.sql("SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replayed = self.replica.sql(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", params=[target]
            )[0][0]
            if replayed:
                return
            time.sleep(0.1)
        raise TimeoutError("the replica did not catch up")

    def down(self) -> None:
        for node in (self.replica, self.primary):
            node.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PgBouncer:
    """Debian's PgBouncer (1.18) in transaction mode in front of `target`, on `port`."""

    def __init__(self, root: Path, port: int, target: int, pool_size: int = 2) -> None:
        self.root, self.port = root, port
        self.ini = root / "pgbouncer.ini"
        (root / "users.txt").write_text('"postgres" ""\n')
        self.ini.write_text(
            f"[databases]\n* = host=127.0.0.1 port={target}\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {root}/users.txt\npool_mode = transaction\n"
            f"default_pool_size = {pool_size}\nmax_client_conn = 200\n"
            f"logfile = {root}/pgbouncer.log\npidfile = {root}/pgbouncer.pid\n"
            # Django sends statement_timeout as the `options` startup parameter, which 1.18
            # refuses: set it on the role or database behind a transaction pooler instead.
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        if os.geteuid() == 0:
            for path in (self.ini, root / "users.txt"):
                shutil.chown(path, "postgres")

    def start(self) -> None:
        _run("/usr/sbin/pgbouncer", "-d", str(self.ini))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=1).close()
                return
            except psycopg.Error:
                time.sleep(0.1)
        raise TimeoutError("pgbouncer did not start")

    def url(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        pid_file = self.root / "pgbouncer.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().strip()), 15)
