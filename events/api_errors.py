"""One error shape for the whole API: {"error": code, "detail": text, "errors": [...]}.

Each entry of "errors" names the field and the rule it broke, so a client can fix its input
without reading our source. A database that is down answers 503 (retry later), not 500; the
driver's message (host, port, user) goes to the log, never to the client.
"""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
)
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

logger = structlog.get_logger(__name__)

# (field, rule) for refusals that concern the request as a whole rather than one input field.
_REQUEST_LEVEL: tuple[tuple[type[Exception], str, str], ...] = (
    (exceptions.ParseError, "body", "json"),
    (exceptions.UnsupportedMediaType, "Content-Type", "application/json"),
    (exceptions.NotAuthenticated, "Authorization", "authentication_required"),
    (exceptions.AuthenticationFailed, "Authorization", "valid_key"),
    (exceptions.PermissionDenied, "Authorization", "permission"),
    (exceptions.Throttled, "request", "rate_limit"),
    (exceptions.MethodNotAllowed, "method", "allowed_methods"),
    (exceptions.NotAcceptable, "Accept", "acceptable_media_type"),
    (exceptions.NotFound, "path", "exists"),
)


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    if isinstance(detail, dict):
        errors = []
        for key, value in detail.items():
            errors.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return errors
    if isinstance(detail, list):
        errors = []
        for item in detail:
            errors.extend(_flatten(item, prefix))
        return errors
    code = getattr(detail, "code", "invalid")
    return [{"field": prefix or "body", "rule": str(code), "message": str(detail)}]


def _request_level_error(exc: Exception, message: str) -> list[dict[str, str]]:
    field = getattr(exc, "field", None)
    if field:
        return [{"field": field, "rule": exc.rule, "message": message}]
    for kind, field, rule in _REQUEST_LEVEL:
        if isinstance(exc, kind):
            return [{"field": field, "rule": rule, "message": message}]
    return []


# The same words whatever the driver said: host, port and driver errors go to the log, not to
# clients (issue 14).
_DATABASE_DOWN = "The database did not answer."


def _read_only(exc: Exception) -> bool:
    """A write reached a server that is (now) a standby: a failover demoted the node this
    connection holds. Dropping the connection makes the next request look for the primary
    again (`target_session_attrs=read-write` in a multi-host DATABASE_URL, ADR 0022)."""
    if not isinstance(exc, DatabaseError):
        return False
    if not isinstance(exc.__cause__, psycopg.errors.ReadOnlySqlTransaction):
        return False
    connections[DEFAULT_DB_ALIAS].close()
    return True


def api_exception_handler(exc, context):
    if isinstance(exc, OperationalError | InterfaceError) or _read_only(exc):
        logger.warning("api.database_unavailable", error=str(exc)[:200])
        set_rollback()
        return Response(
            {
                "error": "service_unavailable",
                "detail": "The database is unavailable; retry later (resending events is safe).",
                "errors": [{"field": "database", "rule": "available", "message": _DATABASE_DOWN}],
            },
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = {"error": "invalid", "detail": "Invalid input.", "errors": _flatten(exc.detail)}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        body = {"error": code if isinstance(code, str) else "error", "detail": str(detail)}
        errors = _request_level_error(exc, str(detail))
        if errors:
            body["errors"] = errors
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            body["retry_after_seconds"] = round(exc.wait, 3)
    rejected_id = getattr(exc, "rejected_id", None)
    if rejected_id is not None:
        body["rejected_id"] = rejected_id
    response.data = body
    return response
