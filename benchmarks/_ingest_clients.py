"""The ingestion benchmark's load clients (benchmarks/ingest.py): event bodies, keep-alive
posters, client processes, and the CPU accounting of the server and its database backends.

The clients share the machine's cores with gunicorn and PostgreSQL, so they build requests in
blocks and write them on raw sockets: the less CPU they take, the less they distort the server's
figures. Every request loop is bounded in count and time.
"""

from __future__ import annotations

import datetime as dt
import http.client
import multiprocessing as mp
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg

from benchmarks._ingest_segment import segment_message
from benchmarks._ingest_server import HOST, database_url

MAX_REQUESTS_PER_CLIENT = 2_000_000  # hard bound on any request loop, besides the time bound
SINGLES_PER_BLOCK = 256  # a single-event client builds this many requests at once
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")

COUNTRIES = ("US", "DE", "GB", "FR", "NL", "SE", "JP", "BR", "IN", "CA")
DEVICES = ("desktop", "mobile", "tablet")


# ----------------------------------------------------------------------------- event shapes
def event_template(index: int) -> dict:
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

    def __init__(self, seed: int, count: int = 64, segment: bool = False) -> None:
        self.parts = []
        self.batch_head = b'{"batch":[' if segment else b'{"events":['
        for index in range(seed, seed + count):
            event = event_template(index)
            event["timestamp"] = "@TS@"
            event["event_id"] = "@ID@"
            text = orjson.dumps(segment_message(event) if segment else event)
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
        return self.batch_head + b",".join(events) + b"]}"


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
    maker = BodyMaker(seed * 1000, segment=path.startswith("/v1/"))
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
