"""One error shape for the whole API: {"error": code, "detail": text, "errors": [...]}.

Each entry of "errors" names the field and the rule it broke, so a client can fix its input
without reading our source."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.views import exception_handler


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


def api_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = {"error": "invalid", "detail": "Invalid input.", "errors": _flatten(exc.detail)}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        body = {"error": code if isinstance(code, str) else "error", "detail": str(detail)}
        field = getattr(exc, "field", None)
        if field:
            body["errors"] = [{"field": field, "rule": exc.rule, "message": str(detail)}]
        elif isinstance(exc, exceptions.ParseError):
            body["errors"] = [{"field": "body", "rule": "json", "message": str(detail)}]
        elif isinstance(exc, exceptions.UnsupportedMediaType):
            body["errors"] = [
                {"field": "Content-Type", "rule": "application/json", "message": str(detail)}
            ]
    response.data = body
    return response
