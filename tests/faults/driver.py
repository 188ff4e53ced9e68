"""The client driver of the fault suite and the soak: threads that send single events and
batches to the stack as a well-behaved client would (a 503, a reset or a timeout means "send
the same events again"), and record every event_id the server acknowledged with a 2xx, every
5xx, and every response time.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

COUNTRIES = ("US", "DE", "FR", "BR")
DEVICES = ("desktop", "mobile", "tablet")
STEPS = ("page_view", "product_view", "add_to_cart", "checkout_start", "purchase")
REQUEST_TIMEOUT_SECONDS = 20.0  # a request not answered by then is a hang
MAX_ATTEMPTS = 50  # resends of one request before the driver gives it up (counted, not acked)


def event_new(rng: random.Random, *, bad: bool = False) -> dict:
    """A shop event timestamped now; `bad` ones fail validation (empty country) and are
    quarantined, so a resend shows whether the quarantine stores them again."""
    event_type = rng.choice(STEPS)
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "timestamp": (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat(),
        "user_id": f"user_{rng.randint(1, 300)}",
        "session_id": f"s_{rng.randint(1, 900)}",
        "device_type": rng.choice(DEVICES),
        "country": "" if bad else rng.choice(COUNTRIES),
    }
    if event_type != "page_view":
        event.update(product_id=f"sku_{rng.randint(1, 20)}", category="books")
    if event_type == "add_to_cart":
        event.update(quantity=rng.randint(1, 3), price=19.5, currency="USD")
    if event_type == "purchase":
        event.update(
            revenue=round(rng.uniform(5, 300), 2), currency="USD", order_id=f"o_{uuid.uuid4().hex}"
        )
    return event


@dataclass
class Record:
    acked: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    bad_sent: set[str] = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[tuple[int, str]] = field(default_factory=list)  # 5xx other than 503
    hangs: int = 0  # requests not answered within REQUEST_TIMEOUT_SECONDS
    given_up: int = 0
    rejected_good: int = 0  # valid events the server rejected: a bug in the driver or server
    latencies: list[float] = field(default_factory=list)
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, status)
    # Every 503: (sent, answered: monotonic, path, who answered it: `unavailable_origin`)
    unavailable: list[tuple[float, float, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def p99_ms(self) -> float:
        return p99_ms(self.latencies)


class Driver:
    """`threads` clients posting until stop(); one in `batch_every` requests is a batch of
    `batch_size`, one in `bad_every` events is invalid."""

    def __init__(
        self,
        port: int,
        threads: int = 3,
        batch_every: int = 3,
        batch_size: int = 10,
        bad_every: int = 25,
        pause: float = 0.02,
        seed: int = 1,
        host: str = "127.0.0.1",
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.max_attempts = max_attempts
        self.host, self.port, self.threads, self.pause = host, port, threads, pause
        self.batch_every, self.batch_size, self.bad_every = batch_every, batch_size, bad_every
        self.record = Record()
        self._stop = threading.Event()
        self._workers = [
            threading.Thread(target=self._run, args=(seed + n,), daemon=True)
            for n in range(threads)
        ]

    def __enter__(self) -> Driver:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> Record:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=REQUEST_TIMEOUT_SECONDS * 2)
        return self.record

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        count = 0
        while not self._stop.is_set():
            count += 1
            size = self.batch_size if count % self.batch_every == 0 else 1
            events = [event_new(rng, bad=rng.randrange(self.bad_every) == 0) for _ in range(size)]
            self.send(events, batch=size > 1)
            time.sleep(self.pause)

    def send(self, events: list[dict], batch: bool) -> bool:
        """Send until acknowledged; True when the server answered 2xx."""
        with self.record.lock:
            for event in events:
                (self.record.bad_sent if not event["country"] else self.record.sent).add(
                    event["event_id"]
                )
        path, body = ("/events/batch", {"events": events}) if batch else ("/events", events[0])
        payload = json.dumps(body).encode()
        for _attempt in range(self.max_attempts):
            status, answer = self._post(path, payload)
            if 200 <= status < 300:
                self._acknowledge(events, answer, batch)
                return True
            if status == 400 and not batch:
                with self.record.lock:
                    self.record.rejected_good += bool(events[0]["country"])
                return True  # a bad single event: rejected and quarantined, nothing to ack
            if status not in (0, 503) and status < 500:
                return False
            time.sleep(0.2 if not self._stop.is_set() else 0.05)
        with self.record.lock:
            self.record.given_up += 1
        return False

    def _acknowledge(self, events: list[dict], answer: bytes, batch: bool) -> None:
        body = json.loads(answer)
        results = body["results"] if batch else [body]
        with self.record.lock:
            for event, result in zip(events, results, strict=True):
                if result.get("status") in ("accepted", "duplicate"):
                    self.record.acked.add(str(result["event_id"]))
                elif event["country"]:
                    self.record.rejected_good += 1

    def _post(self, path: str, payload: bytes) -> tuple[int, bytes]:
        """(status, body); status 0 when the connection failed or timed out."""
        started = time.monotonic()
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=REQUEST_TIMEOUT_SECONDS
        )
        try:
            connection.request("POST", path, payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            status, answer = response.status, response.read()
        except TimeoutError:
            with self.record.lock:
                self.record.hangs += 1
                self.record.timeline.append((time.monotonic(), 0))
            return 0, b""
        except (OSError, http.client.HTTPException):
            with self.record.lock:
                self.record.timeline.append((time.monotonic(), 0))
            return 0, b""
        finally:
            connection.close()
        answered = time.monotonic()
        with self.record.lock:
            self.record.statuses[status] += 1
            self.record.latencies.append(answered - started)
            self.record.timeline.append((answered, status))
            if status >= 500 and status != 503:
                self.record.server_errors.append((status, answer[:300].decode(errors="replace")))
            if status == 503:
                self.record.unavailable.append(
                    (started, answered, path, unavailable_origin(answer))
                )
        return status, answer


class Reader(threading.Thread):
    """Reads the API and a dashboard page about twice a second; records statuses, times and
    when each answer came (the soak's "no 5xx but bounded 503s" is judged on both drivers)."""

    PATHS = ("/events/stats", "/events/recent?limit=20", "/", "/health")

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.stop = host, port, threading.Event()
        self.statuses: Counter = Counter()
        self.latencies: list[float] = []
        self.timeline: list[tuple[float, int]] = []
        self.unavailable: list[tuple[float, float, str, str]] = []  # as Record.unavailable

    def run(self) -> None:
        index = 0
        while not self.stop.is_set():
            path = self.PATHS[index % len(self.PATHS)]
            index += 1
            started = time.monotonic()
            connection = http.client.HTTPConnection(self.host, self.port, timeout=20)
            answer = b""
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                status, answer = response.status, response.read()
                self.latencies.append(time.monotonic() - started)
            except (OSError, http.client.HTTPException):
                status = 0
            finally:
                connection.close()
            answered = time.monotonic()
            self.statuses[status] += 1
            self.timeline.append((answered, status))
            if status == 503:
                self.unavailable.append((started, answered, path, unavailable_origin(answer)))
            time.sleep(0.5)


def unavailable_origin(answer: bytes) -> str:
    """Who answered a 503: HAProxy with no server to send the request to, or the app (its
    body's start: the API's service_unavailable, /health's "down", a page's plain text)."""
    if b"No server is available" in answer:
        return "haproxy: no server available"
    if b"503 Service Unavailable" in answer:
        return "haproxy: " + answer[:80].decode(errors="replace").replace("\n", " ")
    return "app: " + answer[:120].decode(errors="replace").replace("\n", " ")


def p99_ms(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else 0.0
