"""Model fields of the events app."""

from __future__ import annotations

from typing import Any

from django.db import models


class JSONTextField(models.JSONField):
    """JSON kept as its text (PostgreSQL `json`), not decomposed into `jsonb`: for documents
    that are stored and read whole and never queried inside (ADR 0026). Building jsonb's
    binary form was most of PostgreSQL's extra CPU per translated event. Other databases get
    JSONField's own column type."""

    def db_type(self, connection) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if connection.vendor == "postgresql":
            return value  # psycopg's json loader has parsed it (Django only re-routes jsonb)
        return super().from_db_value(value, expression, connection)
