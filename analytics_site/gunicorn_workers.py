"""A gunicorn gthread worker that serves a busy kept-alive connection without hand-offs.

In gunicorn's gthread worker every request on a kept-alive connection travels: main thread's
poll -> thread pool -> worker thread (parse, app, response) -> pipe back to the main thread ->
re-registered in the poll. For a small request (one event) that round of hand-offs cost more
CPU than parsing the request, about 200 us of the ~450 us gunicorn spent per request.

This worker keeps gthread's design and adds one thing: after answering, the worker thread
waits up to KEEPALIVE_LINGER_SECONDS for the same client's next request and serves it itself,
while no other connection is waiting for a thread. Otherwise (idle client, another connection
queued, TLS, HTTP/2, shutdown) it hands the connection back exactly as gthread does. A busy
client therefore cannot hold a thread while another waits for more than one request.

It also settles its copy of the configuration when it starts (`config_settle`): gunicorn
reads every setting through `Config.__getattr__`, about twenty times per request. And after a
connection's first request it remembers whether the peer is a trusted proxy (may set
X-Forwarded-* and the secure-scheme headers, `forwarded_allow_ips`): gunicorn parses the
peer's IP address and matches it against the allowed networks on every request
(`PeerTrustedRequest`), though a connection's peer never changes.

And the health probes do not queue behind stuck requests (ADR 0008): a new request whose first
bytes are `GET /health` (peeked, not read; when every thread is taken, after waiting up to
PROBE_PEEK_SECONDS for them) runs on PROBE_THREADS threads of their own, so `/health/live` and
`/health/ready` (each bounded by HEALTH_TIMEOUT_SECONDS) answer while all request threads wait
on a stalled database.

    gunicorn analytics_site.wsgi --threads 2 \
        --worker-class analytics_site.gunicorn_workers.KeepAliveThreadWorker
"""

from __future__ import annotations

import select
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from gunicorn.config import Config
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import ThreadWorker

KEEPALIVE_LINGER_SECONDS = 0.002
MAX_REQUESTS_PER_TURN = 1000  # then the connection goes back through the poller once
PROBE_PREFIX = b"GET /health"  # /health, /health/live, /health/ready
PROBE_THREADS = 2
PROBE_PEEK_SECONDS = 0.05


def _readable_soon(sock) -> bool:
    """Whether the socket has data (or EOF) within the linger time; poll, not select, which
    fails on descriptors above 1023."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(KEEPALIVE_LINGER_SECONDS * 1000))


def is_health_probe(sock, *, wait: bool) -> bool:
    """Whether the request waiting on `sock` is a health probe (MSG_PEEK: nothing read)."""
    if wait:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.poll(PROBE_PEEK_SECONDS * 1000)
    try:
        head = sock.recv(len(PROBE_PREFIX), socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:  # nothing yet (EAGAIN) or a broken peer: the ordinary path deals with it
        return False
    return head == PROBE_PREFIX


def config_settle(cfg: Config) -> None:
    """Make each setting a plain attribute of this process's Config, so reading it no longer
    goes through Config.__getattr__ and a lookup in the settings table.

    Only for a worker's own copy (forked from the arbiter, whose copy stays as it is): settings
    do not change in a worker, which is replaced when the configuration is reloaded. Properties
    of Config (is_ssl, env, ...) stay properties; they are looked up before instance values."""
    for name, setting in cfg.settings.items():
        if hasattr(type(cfg), name):  # a property of the same name (worker_class, sendfile...)
            continue
        object.__setattr__(cfg, name, setting.get())  # Config.__setattr__ refuses setting names


class PeerTrustedRequest(Request):
    """gunicorn's HTTP/1 request, for a connection whose peer's trust is already known.

    `_peer_is_trusted_proxy()` depends only on the peer's address and the worker's settled
    configuration, both fixed for the connection's life; gunicorn works it out on every
    request (an ipaddress parse and a network match)."""

    def __init__(self, cfg, unreader, peer_addr, req_number=1, *, peer_trusted: bool) -> None:
        self._peer_trusted = peer_trusted  # read while super().__init__ parses the headers
        super().__init__(cfg, unreader, peer_addr, req_number)

    def _peer_is_trusted_proxy(self) -> bool:
        return self._peer_trusted


def peer_trust_remember(parser) -> None:
    """After a connection's first HTTP/1 request: its next requests are PeerTrustedRequests
    with the trust the first one worked out (HTTP/2 and uWSGI parsers are left alone)."""
    if type(parser) is RequestParser and parser.mesg_class is Request and parser.mesg:
        parser.mesg_class = partial(
            PeerTrustedRequest, peer_trusted=parser.mesg._peer_is_trusted_proxy()
        )


class KeepAliveThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._queue_lock = threading.Lock()
        self._queued = 0  # connections submitted to the pool and not yet picked up
        self._active = 0  # requests being handled by the pool's threads
        self._probe_pool = ThreadPoolExecutor(PROBE_THREADS, thread_name_prefix="probe")

    def init_process(self) -> None:
        config_settle(self.cfg)  # runs in the worker process, after the fork
        super().init_process()

    def enqueue_req(self, conn) -> None:
        saturated = self._queued + self._active >= self.cfg.threads
        if is_health_probe(conn.sock, wait=saturated):
            future = self._probe_pool.submit(super().handle, conn)
            future.add_done_callback(
                lambda fut: self.method_queue.defer(self.finish_request, conn, fut)
            )
            return
        with self._queue_lock:
            self._queued += 1
        super().enqueue_req(conn)

    def handle(self, conn):
        with self._queue_lock:
            self._queued -= 1
            self._active += 1
        try:
            return self._handle_turns(conn)
        finally:
            with self._queue_lock:
                self._active -= 1

    def _handle_turns(self, conn):
        result = super().handle(conn)
        if result is True:
            peer_trust_remember(conn.parser)
        if self.cfg.is_ssl:  # decrypted bytes may wait in the TLS layer, invisible to select
            return result
        for _ in range(MAX_REQUESTS_PER_TURN):
            if result is not True or not self.alive or self._queued > 0:
                break
            if not conn.parser.unreader.buf.getvalue() and not _readable_soon(conn.sock):
                break
            result = super().handle(conn)
        return result
