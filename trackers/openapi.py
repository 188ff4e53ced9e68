"""The API document's view of the tracker protocols: their key schemes and request bodies.

Imported by `trackers.common`, so the authentication extension is registered before the
document is built.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


class TrackerAutoSchema(AutoSchema):
    """Protocol bodies are documented as raw JSON Schemas, which drf-spectacular marks optional;
    every protocol endpoint needs its body."""

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if body is not None:
            body["required"] = True
        return body


class TrackerKeyScheme(OpenApiAuthenticationExtension):
    """The key as HTTP Basic user name (Segment's SDKs) or our Bearer / X-API-Key headers; a
    body field (`writeKey`) is documented on the body."""

    target_class = "trackers.common.TrackerKeyAuthentication"
    name = ["TrackerKeyBasic", "IngestionKeyBearer", "IngestionKeyHeader"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "basic", "description": "user name: the ingestion key"},
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]
