"""A client-side deadline on each wait of a web process for PostgreSQL (ADR 0008).

A server that accepts TCP and never answers (a stall, a black hole) is not bounded by
`statement_timeout` (the server never reads the statement) nor by TCP keepalives (a stalling
proxy ACKs them; a minute at best). psycopg 3 consumes every query through
`Connection.wait(gen, interval, timeout)`, whose `timeout` it already honours but its cursors
never pass. This guard gives those calls a default deadline, and when it expires closes the
libpq connection (its protocol state is unknown) and raises `OperationalError`: Django then
discards the connection, and the API answers 503 with Retry-After (events/api_errors.py).

Fenced: installed only by the web entry point (analytics_site/wsgi.py) when
DB_CLIENT_TIMEOUT_SECONDS > 0; explicit timeouts passed by psycopg itself are kept; it
refuses to install over a psycopg whose `Connection.wait` lost the `timeout` parameter.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import psycopg
from psycopg import errors

logger = logging.getLogger(__name__)

_original_wait = psycopg.Connection.wait


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
            self.pgconn.finish()  # half-read protocol: never reuse this connection
            raise psycopg.OperationalError(
                f"the database did not answer within {seconds} s (client deadline)"
            ) from exc

    wait.deadline_seconds = seconds  # type: ignore[attr-defined]
    return wait


def db_deadline_install(seconds: float) -> bool:
    """Bound every PostgreSQL wait of this process to `seconds`; False when not installed."""
    if seconds <= 0:
        return False
    if "timeout" not in inspect.signature(_original_wait).parameters:
        logger.error("db.client_deadline_unsupported psycopg=%s", psycopg.__version__)
        return False
    psycopg.Connection.wait = _wait_with_deadline(seconds)  # type: ignore[method-assign]
    return True


def db_deadline_uninstall() -> None:
    """Restore psycopg's own wait (tests)."""
    psycopg.Connection.wait = _original_wait  # type: ignore[method-assign]
