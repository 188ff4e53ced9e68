"""The ingestion benchmark's load clients (benchmarks/ingest.py): event bodies, keep-alive
posters, client processes, and the CPU accounting of the server and its database backends.

The clients share the machine's cores with gunicorn and PostgreSQL, so they build requests in
blocks and write them on raw sockets: the less CPU they take, the less they distort the server's
figures. Every request loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from benchmarks._ingest_bodies import PATHS, BodyMaker
from benchmarks._ingest_server import HOST, database_url

MAX_REQUESTS_PER_CLIENT = 2_000_000  # hard bound on any request loop, besides the time bound
SINGLES_PER_BLOCK = 256  # a single-event client builds this many requests at once
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


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

    def __init__(self, port: int, authorization: str = "") -> None:
        self.port = port
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if authorization:
            self.headers["Authorization"] = authorization

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

    def __init__(self, port: int, authorization: str = "") -> None:
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.heads: dict[str, bytes] = {}
        self.authorization = f"Authorization: {authorization}\r\n" if authorization else ""

    def request(self, path: str, body: bytes) -> bytes:
        """The whole request (head and body), to send with `send`."""
        head = self.heads.get(path)
        if head is None:
            head = self.heads[path] = (
                f"POST {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n{self.authorization}"
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
    protocol: str = "events",
    mix: str = "light",
    authorization: str = "",
) -> None:
    maker = BodyMaker(seed * 1000, protocol=protocol, mix=mix)
    poster = POSTERS[client_kind](port, authorization)
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
        # A batch counts only when every event in it was accepted (each answer says so).
        if code not in (200, 201) or (batch_size and b'"rejected":0' not in payload):
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
    path: str | None = None,
    *,
    protocol: str = "events",
    mix: str = "light",
    authorization: str = "",
    clients: int,
    batch_size: int,
    seconds: float,
    warmup: float,
    server_pid: int,
    db_name: str,
    client_kind: str,
) -> PhaseResult:
    """One phase of `clients` load processes: single events to `path` (batch_size 0), or
    batches of `protocol`'s format (to its endpoint unless `path` says otherwise)."""
    path = path or PATHS[protocol]
    extra = (protocol, mix, authorization)
    context = mp.get_context("fork")
    queue = context.Queue()
    processes = [
        context.Process(
            target=_client,
            args=(port, path, batch_size, seconds, warmup, seed, queue, client_kind, *extra),
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


def phases_merge(rounds: list[PhaseResult]) -> PhaseResult:
    """One figure for a phase run in several rounds of equal duration: mean rates, CPU per
    request weighted by requests, the median round's latencies. Rounds interleave the phases,
    so a burst of other load on the machine hits all of them, not one."""
    if len(rounds) == 1:
        return rounds[0]
    weights = [max(result.requests_per_s, 1e-9) for result in rounds]
    total = sum(weights)

    def weighted(name: str) -> float:
        return sum(getattr(r, name) * w for r, w in zip(rounds, weights, strict=True)) / total

    statuses: dict[int, int] = {}
    for result in rounds:
        for code, count in result.statuses.items():
            statuses[code] = statuses.get(code, 0) + count
    middle = sorted(rounds, key=lambda result: result.p50_ms)[len(rounds) // 2]
    return PhaseResult(
        requests_per_s=sum(result.requests_per_s for result in rounds) / len(rounds),
        events_per_s=sum(result.events_per_s for result in rounds) / len(rounds),
        p50_ms=middle.p50_ms,
        p99_ms=middle.p99_ms,
        errors=sum(result.errors for result in rounds),
        statuses=statuses,
        first_error=next((result.first_error for result in rounds if result.first_error), ""),
        worker_cpu_us=weighted("worker_cpu_us"),
        postgres_cpu_us=weighted("postgres_cpu_us"),
        client_cpu_us=weighted("client_cpu_us"),
    )
