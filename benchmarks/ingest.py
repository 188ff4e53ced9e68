"""Ingestion benchmark: HTTP single events and batches against gunicorn, next to raw COPY.

    .venv/bin/python benchmarks/ingest.py            # or: make bench

What it does, in one run, and then stops everything it started:
1. creates and migrates a scratch PostgreSQL database (`analytics_bench` by default);
2. starts gunicorn (2 workers) on 127.0.0.1:8201 with ENVIRONMENT=development (anonymous
   ingestion), DEBUG off and ingestion throttling off;
3. runs load clients on this machine (a few processes, each with one keep-alive
   http.client connection), bounded by --duration per phase:
   - single events: POST /events, one fresh event per request -> requests/s, p50, p99;
   - batches: POST /events/batch with --batch-size events -> events/s, p50, p99 per batch;
4. measures the raw PostgreSQL binary COPY rate into the same table (events_event), with the
   same event shape, and prints the ratios and the issue's targets.

The load clients share the machine's cores with gunicorn and PostgreSQL, so the figures are a
floor for what the server does on dedicated cores. Every request loop is bounded in count and
time and only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import multiprocessing as mp
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson
import psycopg

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TARGETS = {"batch_events_per_s": 40_000, "single_rps": 1_500, "single_p99_ms": 10.0}
WORKER_CLASSES = {
    "keepalive": "analytics_site.gunicorn_workers.KeepAliveThreadWorker",  # as in the Procfile
    "gthread": "gthread",
    "sync": "sync",
}
MAX_REQUESTS_PER_CLIENT = 2_000_000  # hard bound on any request loop, besides the time bound
SINGLES_PER_BLOCK = 256  # a single-event client builds this many requests at once
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")

COUNTRIES = ("US", "DE", "GB", "FR", "NL", "SE", "JP", "BR", "IN", "CA")
DEVICES = ("desktop", "mobile", "tablet")


# ----------------------------------------------------------------------------- event shapes
def _event_template(index: int) -> dict:
    """A realistic shop event; a third of them carry product and price fields."""
    kind = index % 6
    event = {
        "event_id": "",
        "event_type": "page_view",
        "timestamp": "",
        "user_id": f"user_{index % 5000}",
        "session_id": f"session_{index % 20000}",
        "page_url": f"/products/item-{index % 300}",
        "referrer": "https://www.example.com/",
        "device_type": DEVICES[index % 3],
        "country": COUNTRIES[index % len(COUNTRIES)],
    }
    if kind in (1, 2):
        event.update(
            event_type="product_view",
            product_id=f"sku_{index % 300}",
            category="laptops",
            price=999.99,
            currency="USD",
        )
    elif kind == 3:
        event.update(
            event_type="add_to_cart",
            product_id=f"sku_{index % 300}",
            price=19.5,
            quantity=2,
            currency="EUR",
            properties={"campaign": "spring", "ab": {"variant": "b"}},
        )
    return event


def _now_iso() -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).isoformat()


class BodyMaker:
    """Builds request bodies fast: the JSON of each template is split around its event_id."""

    def __init__(self, seed: int, count: int = 64) -> None:
        self.parts = []
        for index in range(seed, seed + count):
            event = _event_template(index)
            event["timestamp"] = "@TS@"
            event["event_id"] = "@ID@"
            text = orjson.dumps(event)
            head, rest = text.split(b"@ID@")
            middle, tail = rest.split(b"@TS@")
            self.parts.append((head, middle, tail))
        self.next = 0

    def event(self, timestamp: bytes, event_id: bytes) -> bytes:
        head, middle, tail = self.parts[self.next % len(self.parts)]
        self.next += 1
        return head + event_id + middle + timestamp + tail

    def single(self) -> bytes:
        return self.event(_now_iso().encode(), uuid.uuid4().hex.encode())

    def singles(self, count: int) -> list[bytes]:
        """`count` single events at once, each with its own new event_id (one random read for
        all) and the same timestamp: a client builds its next requests in blocks, not one
        clock read and one uuid4 per request."""
        timestamp = _now_iso().encode()
        ids = os.urandom(16 * count).hex().encode()
        return [self.event(timestamp, ids[32 * n : 32 * n + 32]) for n in range(count)]

    def batch(self, size: int) -> bytes:
        """One random read for the whole batch's ids: the client shares the server's cores."""
        timestamp = _now_iso().encode()
        ids = os.urandom(16 * size).hex().encode()
        events = (self.event(timestamp, ids[32 * n : 32 * n + 32]) for n in range(size))
        return b'{"events":[' + b",".join(events) + b"]}"


# ----------------------------------------------------------------------------- CPU accounting
def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _backend_pids(db_name: str) -> list[int]:
    with psycopg.connect(database_url(db_name), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db_name,),
        ).fetchall()
    return [pid for (pid,) in rows]


@dataclass
class CpuSample:
    workers: float
    postgres: float


def cpu_sample(server_pid: int, db_name: str) -> CpuSample:
    """CPU seconds used so far by the gunicorn workers and by their PostgreSQL backends.

    Per request, these are the figures the machine's load does not distort much: a busy
    machine stretches wall time, not the CPU a request costs."""
    workers = sum(_cpu_seconds(pid) for pid in _children(server_pid))
    backends = sum(_cpu_seconds(pid) for pid in _backend_pids(db_name))
    return CpuSample(workers, backends)


# ----------------------------------------------------------------------------- load clients
@dataclass
class ClientResult:
    latencies_ns: list[int]
    requests: int
    errors: int
    statuses: dict[int, int]
    events: int
    first_error: str
    cpu_seconds: float  # the client's own CPU while measuring


class HttpClientPoster:
    """POSTs over one keep-alive http.client connection (the standard library's client)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def request(self, path: str, body: bytes) -> tuple[str, bytes]:
        return path, body

    def send(self, request: tuple[str, bytes]) -> tuple[int, bytes]:
        return self.post(*request)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            self.connection.request("POST", path, body=body, headers=self.headers)
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
            return 0, str(exc).encode()

    def close(self) -> None:
        self.connection.close()


class RawSocketPoster:
    """POSTs over one keep-alive socket, with the request head written once: the clients share
    the server's two cores, and http.client costs them several times more CPU per request.
    Reads responses framed by Content-Length (every response of this API has one)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.heads: dict[str, bytes] = {}

    def request(self, path: str, body: bytes) -> bytes:
        """The whole request (head and body), to send with `send`."""
        head = self.heads.get(path)
        if head is None:
            head = self.heads[path] = (
                f"POST {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                "Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: "
            ).encode()
        return b"%s%d\r\n\r\n%s" % (head, len(body), body)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        return self.send(self.request(path, body))

    def send(self, request: bytes) -> tuple[int, bytes]:
        try:
            self.sock.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed before the response head")
                received += chunk
            header, _, payload = received.partition(b"\r\n\r\n")
            length = CONTENT_LENGTH.search(header)
            if length is None:
                raise ConnectionError("response without Content-Length")
            size = int(length.group(1))
            while len(payload) < size:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed in the response body")
                payload += chunk
            return int(header[9:12]), payload
        except OSError as exc:
            self.close()
            self.sock = socket.create_connection((HOST, self.port), timeout=30)
            return 0, str(exc).encode()

    def close(self) -> None:
        self.sock.close()


POSTERS = {"raw": RawSocketPoster, "http.client": HttpClientPoster}


def _client(
    port: int,
    path: str,
    batch_size: int,
    seconds: float,
    warmup: float,
    seed: int,
    queue,
    client_kind: str = "raw",
) -> None:
    maker = BodyMaker(seed * 1000)
    poster = POSTERS[client_kind](port)
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    errors = events = 0
    first_error = ""
    start = time.monotonic()
    measure_from = start + warmup
    deadline = measure_from + seconds
    cpu_from = None
    ready: list = []  # single events: whole requests, built SINGLES_PER_BLOCK at a time
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if batch_size:
            request = poster.request(path, maker.batch(batch_size))
        else:
            if not ready:
                ready = [poster.request(path, body) for body in maker.singles(SINGLES_PER_BLOCK)]
                ready.reverse()
            request = ready.pop()
        began = time.perf_counter_ns()
        code, payload = poster.send(request)
        elapsed = time.perf_counter_ns() - began
        now = time.monotonic()
        if now >= deadline:
            break
        if now < measure_from:
            continue
        if cpu_from is None:
            cpu_from = time.process_time()
        statuses[code] = statuses.get(code, 0) + 1
        if code not in (200, 201):
            errors += 1
            first_error = first_error or f"{code}: {payload[:300]!r}"
            continue
        latencies.append(elapsed)
        events += batch_size or 1
    cpu_seconds = time.process_time() - cpu_from if cpu_from is not None else 0.0
    poster.close()
    queue.put(
        ClientResult(latencies, len(latencies), errors, statuses, events, first_error, cpu_seconds)
    )


def _percentile(sorted_values: list[int], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index] / 1e6


@dataclass
class PhaseResult:
    requests_per_s: float
    events_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict[int, int]
    first_error: str
    worker_cpu_us: float = float("nan")  # gunicorn worker CPU per request
    postgres_cpu_us: float = float("nan")  # PostgreSQL backend CPU per request
    client_cpu_us: float = float("nan")  # the load clients' own CPU per request


def load_phase(
    port: int,
    path: str,
    *,
    clients: int,
    batch_size: int,
    seconds: float,
    warmup: float,
    server_pid: int,
    db_name: str,
    client_kind: str,
) -> PhaseResult:
    context = mp.get_context("fork")
    queue = context.Queue()
    processes = [
        context.Process(
            target=_client,
            args=(port, path, batch_size, seconds, warmup, seed, queue, client_kind),
            daemon=True,
        )
        for seed in range(clients)
    ]
    for process in processes:
        process.start()
    time.sleep(warmup)
    before = cpu_sample(server_pid, db_name)
    results = [queue.get(timeout=seconds + warmup + 120) for _ in processes]
    after = cpu_sample(server_pid, db_name)
    for process in processes:
        process.join(timeout=10)
    latencies = sorted(value for result in results for value in result.latencies_ns)
    statuses: dict[int, int] = {}
    for result in results:
        for code, count in result.statuses.items():
            statuses[code] = statuses.get(code, 0) + count
    requests = max(len(latencies), 1)
    return PhaseResult(
        worker_cpu_us=(after.workers - before.workers) / requests * 1e6,
        postgres_cpu_us=(after.postgres - before.postgres) / requests * 1e6,
        client_cpu_us=sum(result.cpu_seconds for result in results) / requests * 1e6,
        requests_per_s=len(latencies) / seconds,
        events_per_s=sum(result.events for result in results) / seconds,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        errors=sum(result.errors for result in results),
        statuses=statuses,
        first_error=next((r.first_error for r in results if r.first_error), ""),
    )


# ----------------------------------------------------------------------------- database
def database_url(name: str) -> str:
    return f"postgres://postgres@{HOST}:5432/{name}"


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
        conn.execute("TRUNCATE events_event, events_rejectedevent RESTART IDENTITY")
        conn.execute("VACUUM ANALYZE events_event")


def events_count(db_name: str) -> int:
    with psycopg.connect(database_url(db_name)) as conn:
        return conn.execute("SELECT count(*) FROM events_event").fetchone()[0]


COPY_COLUMNS = (
    ("event_id", "uuid"),
    ("event_type", "text"),
    ("timestamp", "timestamptz"),
    ("client_timestamp", "timestamptz"),
    ("received_at", "timestamptz"),
    ("user_id", "text"),
    ("session_id", "text"),
    ("device_type", "text"),
    ("country", "text"),
    ("page_url", "text"),
    ("referrer", "text"),
    ("product_id", "text"),
    ("category", "text"),
    ("price", "numeric"),
    ("quantity", "int4"),
    ("currency", "text"),
    ("order_id", "text"),
    ("revenue", "numeric"),
    ("search_query", "text"),
    ("properties", "jsonb"),
    ("warnings", "jsonb"),
)


def copy_rate(db_name: str, rows: int, chunk: int) -> float:
    """Rows/s of binary COPY of the same event shape into events_event (row building excluded).

    Loaded in chunks of `chunk` rows, each its own COPY and commit, like the HTTP batches."""
    from psycopg.types.json import Jsonb

    now = dt.datetime.now(dt.UTC)
    prepared = []
    for index in range(rows):
        event = _event_template(index)
        price = event.get("price")
        prepared.append(
            (
                uuid.uuid4(),
                event["event_type"],
                now,
                now,
                now,
                event["user_id"],
                event["session_id"],
                event["device_type"],
                event["country"],
                event["page_url"],
                event["referrer"],
                event.get("product_id", ""),
                event.get("category", ""),
                Decimal(str(price)) if price is not None else None,
                event.get("quantity"),
                event.get("currency", ""),
                "",
                None,
                "",
                Jsonb(event.get("properties", {})),
                Jsonb([]),
            )
        )
    names = ", ".join(f'"{name}"' for name, _ in COPY_COLUMNS)
    types = [kind for _, kind in COPY_COLUMNS]
    with psycopg.connect(database_url(db_name)) as conn:
        began = time.perf_counter()
        for start in range(0, rows, chunk):
            statement = f"COPY events_event ({names}) FROM STDIN (FORMAT BINARY)"
            with conn.cursor() as cursor, cursor.copy(statement) as cp:
                cp.set_types(types)
                for row in prepared[start : start + chunk]:
                    cp.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - began
    return rows / elapsed


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


# ----------------------------------------------------------------------------- report
def _mark(ok: bool) -> str:
    return "meets target" if ok else "BELOW target"


def report(single: PhaseResult, batch: PhaseResult, copy_rows_per_s: float, args) -> None:
    print()
    threads = f" ({args.threads} threads each)" if args.worker_class != "sync" else ""
    print(
        f"== ingestion benchmark: gunicorn {args.workers} x {args.worker_class} workers{threads}, "
        f"{os.cpu_count()} cores shared with the load clients and PostgreSQL; "
        f"stored quality rules: {'default set' if args.with_rules else 'none (schema layer only)'}"
    )
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    print(
        f"single  POST /events        {single.requests_per_s:9,.0f} req/s   "
        f"p50 {single.p50_ms:6.2f} ms   p99 {single.p99_ms:6.2f} ms   "
        f"({args.single_clients} clients, {args.duration:.0f} s, errors {single.errors}, "
        f"new {single.statuses.get(201, 0):,}, duplicates {single.statuses.get(200, 0):,})"
    )
    print(
        f"batch   POST /events/batch  {batch.events_per_s:9,.0f} events/s "
        f"({batch.requests_per_s:,.1f} batches/s of {args.batch_size}; "
        f"p50 {batch.p50_ms:.1f} ms  p99 {batch.p99_ms:.1f} ms; "
        f"{args.batch_clients} clients, errors {batch.errors})"
    )
    per_event = args.batch_size or 1
    print(
        f"server CPU per request: single {single.worker_cpu_us:,.0f} us gunicorn + "
        f"{single.postgres_cpu_us:,.0f} us PostgreSQL; batch {batch.worker_cpu_us / per_event:.1f}"
        f" us + {batch.postgres_cpu_us / per_event:.1f} us per event"
    )
    print(
        f"load clients ({args.client}) CPU per request: single {single.client_cpu_us:,.0f} us; "
        f"batch {batch.client_cpu_us / per_event:.1f} us per event (they share the 2 cores)"
    )
    print(
        f"COPY    binary, same table  {copy_rows_per_s:9,.0f} rows/s   "
        f"({args.copy_rows:,} rows in COPYs of {args.batch_size})"
    )
    print("-- ratios")
    print(f"batch HTTP / raw COPY            {batch.events_per_s / copy_rows_per_s:6.1%}")
    print(f"single HTTP / raw COPY           {single.requests_per_s / copy_rows_per_s:6.1%}")
    print(f"batch events/s / single req/s    {batch.events_per_s / single.requests_per_s:6.1f} x")
    print("-- targets (issue 2)")
    batch_target = TARGETS["batch_events_per_s"]
    print(
        f"batch  >= {batch_target:,} events/s   "
        f"{_mark(batch.events_per_s >= batch_target)} ({batch.events_per_s / batch_target:.2f} x)"
    )
    print(
        f"single >= {TARGETS['single_rps']:,} req/s         "
        f"{_mark(single.requests_per_s >= TARGETS['single_rps'])} "
        f"({single.requests_per_s / TARGETS['single_rps']:.2f} x)"
    )
    print(
        f"single p99 <= {TARGETS['single_p99_ms']:.0f} ms           "
        f"{_mark(single.p99_ms <= TARGETS['single_p99_ms'])}"
    )
    for name, phase in (("single", single), ("batch", batch)):
        if phase.errors:
            print(f"!! {name}: {phase.errors} failed {phase.statuses}: {phase.first_error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="analytics_bench", help="scratch database (recreated)")
    parser.add_argument("--port", type=int, default=8201)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--worker-class",
        default="keepalive",
        choices=list(WORKER_CLASSES),
        help="keepalive (default, as deployed): gthread that serves a busy kept-alive "
        "connection in its thread (analytics_site/gunicorn_workers.py); gthread: gunicorn's "
        "threaded worker; sync: gunicorn's default (no keep-alive)",
    )
    parser.add_argument("--threads", type=int, default=2, help="per worker, not for sync")
    parser.add_argument(
        "--client",
        default="raw",
        choices=list(POSTERS),
        help="raw (default): keep-alive socket with a pre-built request head; http.client: the "
        "standard library's client (~4x the client CPU per request; figures before 2026-11-26)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument(
        "--single-clients",
        type=int,
        default=None,
        help="default: workers x threads, one client per server thread (fewer leave threads idle "
        "and measure round-trip latency rather than throughput; 2 before 2026-11-26)",
    )
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--copy-rows", type=int, default=200_000)
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database after")
    parser.add_argument(
        "--with-rules",
        action="store_true",
        help="load the default stored quality rules (manage.py load_default_rules) first",
    )
    parser.add_argument(
        "--phases", default="single,batch,copy", help="comma list of single,batch,copy"
    )
    args = parser.parse_args()
    if args.single_clients is None:
        args.single_clients = args.workers * (1 if args.worker_class == "sync" else args.threads)
    phases = set(args.phases.split(","))

    env = server_env(args.db, {})
    print(f"database {args.db}: create and migrate")
    database_create(args.db)
    server = None
    nan = float("nan")
    empty = PhaseResult(nan, nan, nan, nan, 0, {}, "")
    single = batch = empty
    copy_rows_per_s = float("nan")
    try:
        migrate(env)
        if args.with_rules:
            subprocess.run(
                [sys.executable, "manage.py", "load_default_rules"], cwd=ROOT, env=env, check=True
            )
        print(f"gunicorn: {args.workers} {args.worker_class} workers on {HOST}:{args.port}")
        server = server_start(env, args)
        if "single" in phases:
            print(f"single events: {args.single_clients} clients, {args.duration:.0f} s")
            single = load_phase(
                args.port,
                "/events",
                clients=args.single_clients,
                batch_size=0,
                seconds=args.duration,
                warmup=args.warmup,
                server_pid=server.pid,
                db_name=args.db,
                client_kind=args.client,
            )
        events_truncate(args.db)
        if "batch" in phases:
            print(f"batches of {args.batch_size}: {args.batch_clients} clients")
            batch = load_phase(
                args.port,
                "/events/batch",
                clients=args.batch_clients,
                batch_size=args.batch_size,
                seconds=args.duration,
                warmup=args.warmup,
                server_pid=server.pid,
                db_name=args.db,
                client_kind=args.client,
            )
            print(f"  stored rows after batches: {events_count(args.db):,}")
        server_stop(server)
        server = None
        if "copy" in phases:
            events_truncate(args.db)
            print(f"raw binary COPY: {args.copy_rows:,} rows")
            copy_rows_per_s = copy_rate(args.db, args.copy_rows, args.batch_size)
    finally:
        if server is not None:
            server_stop(server)
        if not args.keep_db:
            database_drop(args.db)
    report(single, batch, copy_rows_per_s, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
