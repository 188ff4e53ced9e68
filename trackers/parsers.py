"""The bodies posthog-js sends besides plain JSON: `text/plain` JSON, gzip flagged in the query
(`?compression=gzip-js`) instead of a Content-Encoding header, gzip flagged nowhere (posthog-js
1.2xx on: `text/plain`, no query; told by gzip's magic bytes, which no JSON text starts with),
and form-encoded `data=` holding base64 JSON (`?compression=base64`). The same limits as every
ingestion body: the inflated body is bounded (events.parsers.body_decode), a refused body is
kept, bounded, for quarantine."""

from __future__ import annotations

import base64
import binascii
from io import BytesIO
from urllib.parse import parse_qs

from events.parsers import (
    BoundedJSONParser,
    MalformedJson,
    PayloadTooLarge,
    body_decode,
    json_body_limit,
    kept_body_bytes,
)

GZIP_MAGIC = b"\x1f\x8b"


class PosthogBodyParser(BoundedJSONParser):
    """JSON however posthog-js wraps it; any media type is read as a capture body."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context.get("request")
        meta = getattr(request, "_request", request).META if request is not None else {}
        limit = json_body_limit(parser_context.get("view"))
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(
                f"Request body exceeds the limit of {limit} bytes.",
                raw_body=body[: kept_body_bytes()],
            )
        query = parse_qs(meta.get("QUERY_STRING", ""))
        encoding = meta.get("HTTP_CONTENT_ENCODING") or ""
        if not encoding and (query.get("compression") == ["gzip-js"] or body[:2] == GZIP_MAGIC):
            encoding = "gzip"
        if encoding:
            body = body_decode(body, encoding, limit)
        if (media_type or "").startswith("application/x-www-form-urlencoded"):
            body = _form_data(body)
        return _json_parse(self, body)


def _json_parse(parser: BoundedJSONParser, body: bytes):
    """The JSON parser's own checks (empty, UTF-8, constants, depth) on the decoded body."""
    return BoundedJSONParser.parse(parser, BytesIO(body), "application/json", {})


def _form_data(body: bytes) -> bytes:
    """The `data` field of a form body: base64 of JSON, or JSON itself."""
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError:
        raise MalformedJson("Form body is not valid UTF-8.", body) from None
    values = fields.get("data")
    if not values:
        raise MalformedJson("A form body needs its events in the data field.", body)
    data = values[0].strip()
    if data[:1] in ("{", "["):
        return data.encode("utf-8")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        raise MalformedJson("The data field is neither JSON nor base64 JSON.", body) from None
