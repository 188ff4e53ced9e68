"""A client-side deadline on each wait of a web process for PostgreSQL (ADR 0008).

A server that accepts TCP and never answers (a stall, a black hole) is not bounded by
`statement_timeout` (the server never reads the statement) nor by TCP keepalives (a stalling
proxy ACKs them; a minute at best). psycopg 3 consumes every query through
`Connection.wait(gen, interval, timeout)`, whose `timeout` it already honours but its cursors
never pass. This guard gives those calls a default deadline, and when it expires closes the
libpq connection (its protocol state is unknown) and raises `OperationalError`: Django then
discards the connection, and the API answers 503 with Retry-After (events/api_errors.py).

A deadline that expired, or a connection attempt that timed out, also makes this process
refuse new connection attempts for a short hold (DB_UNREACHABLE_HOLD_SECONDS) instead of
spending another connect_timeout on each: a request that touches the database several times,
and every request queued behind it on the same worker, then answer 503 in about one deadline,
not in the sum of them (with two threads a request queued behind a stalled one took 14-22 s).

Fenced: installed only by the web entry point (analytics_site/wsgi.py) when
DB_CLIENT_TIMEOUT_SECONDS > 0; explicit timeouts passed by psycopg itself are kept; it
refuses to install over a psycopg whose `Connection.wait` lost the `timeout` parameter.
"""

from __future__ import annotations

import inspect
import logging
import time
from typing import Any

import psycopg
from psycopg import errors

logger = logging.getLogger(__name__)

_original_wait = psycopg.Connection.wait
_original_connect = psycopg.connect  # what Django's backend calls (`Database.connect`)

_hold_seconds = 0.0
_unreachable_until = 0.0  # time.monotonic(): new connections fail fast until then


def _unreachable_mark() -> None:
    global _unreachable_until
    _unreachable_until = max(_unreachable_until, time.monotonic() + _hold_seconds)


def _connect_failing_fast(*args: Any, **kwargs: Any) -> psycopg.Connection:
    if time.monotonic() < _unreachable_until:
        raise psycopg.OperationalError(
            "the database did not answer moments ago (client deadline); not trying again yet"
        )
    try:
        return _original_connect(*args, **kwargs)
    except psycopg.OperationalError as exc:
        if "timeout expired" in str(exc):  # libpq's connect_timeout, not a refusal
            _unreachable_mark()
        raise


def _wait_with_deadline(seconds: float):
    def wait(self: psycopg.Connection, gen: Any, interval: float = 0.1, timeout: Any = None):
        try:
            return _original_wait(
                self, gen, interval=interval, timeout=seconds if timeout is None else timeout
            )
        except errors._WaitTimeout as exc:
            if timeout is not None:
                raise  # psycopg's own deadline (cancel, close): its caller handles it
            logger.warning("db.client_deadline_expired seconds=%s", seconds)
            _unreachable_mark()
            self.pgconn.finish()  # half-read protocol: never reuse this connection
            raise psycopg.OperationalError(
                f"the database did not answer within {seconds} s (client deadline)"
            ) from exc

    wait.deadline_seconds = seconds  # type: ignore[attr-defined]
    return wait


def db_deadline_install(seconds: float, hold_seconds: float = 2.0) -> bool:
    """Bound every PostgreSQL wait of this process to `seconds`, and fail new connection
    attempts fast for `hold_seconds` after a timeout; False when not installed."""
    global _hold_seconds, _unreachable_until
    if seconds <= 0:
        return False
    if "timeout" not in inspect.signature(_original_wait).parameters:
        logger.error("db.client_deadline_unsupported psycopg=%s", psycopg.__version__)
        return False
    psycopg.Connection.wait = _wait_with_deadline(seconds)  # type: ignore[method-assign]
    _hold_seconds, _unreachable_until = max(0.0, hold_seconds), 0.0
    psycopg.connect = _connect_failing_fast
    return True


def db_deadline_uninstall() -> None:
    """Restore psycopg's own wait and connect (tests)."""
    global _unreachable_until
    psycopg.Connection.wait = _original_wait  # type: ignore[method-assign]
    psycopg.connect = _original_connect
    _unreachable_until = 0.0
