"""A JSON parser that is fast (orjson), bounded (413 before reading a too-large body), and
precise about bad input. Lone surrogates, which orjson refuses, are parsed by the standard
library so that the event they sit in is rejected on its own, not the whole batch; NaN and
Infinity literals are not JSON and refuse the body. (orjson reads integers beyond 64 bits as
floats: the schema layer refuses such magnitudes where they would lose digits.)"""

from __future__ import annotations

import json
import zlib

import orjson
from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.parsers import BaseParser

from events.authentication import KeyPrincipal
from events.schema import text_safe


def kept_body_bytes() -> int:
    """How much of a refused body to keep: one byte over the rejected-payload bound, so that
    the stored row knows it was cut."""
    return settings.INGEST_REJECTED_PAYLOAD_MAX_BYTES + 1


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "payload_too_large"

    def __init__(
        self, detail: str, field: str = "body", rule: str = "max_size", raw_body: bytes = b""
    ) -> None:
        super().__init__(detail)
        self.field = field
        self.rule = rule
        self.raw_body = raw_body


class MalformedJson(ParseError):
    default_code = "malformed_json"
    field = "body"
    rule = "json"

    def __init__(self, detail: str, raw_body: bytes) -> None:
        super().__init__(detail)
        self.raw_body = raw_body


class UnsupportedContentEncoding(APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_code = "unsupported_content_encoding"
    field = "Content-Encoding"
    rule = "supported_encoding"

    def __init__(self, detail: str, raw_body: bytes) -> None:
        super().__init__(detail)
        self.raw_body = raw_body


class MalformedGzip(MalformedJson):
    default_code = "malformed_gzip"
    field = "Content-Encoding"
    rule = "gzip"


class MalformedDeflate(MalformedJson):
    default_code = "malformed_deflate"
    field = "Content-Encoding"
    rule = "deflate"


_GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
# HTTP's deflate is the zlib format (RFC 9110 8.4.1.2), what CompressionStream("deflate") makes.
_DEFLATE_ENCODING = "deflate"
SUPPORTED_ENCODINGS = "gzip, deflate or none"


def body_inflate(compressed: bytes, limit: int, *, deflate: bool = False) -> bytes:
    """The gzip (or zlib-deflate) body inflated, never past `limit` + 1 bytes whatever the
    stream claims (a decompression bomb stops at the cap and is refused as too large). Several
    gzip members one after another are one body, as gzip itself reads them."""
    name, malformed = ("deflate", MalformedDeflate) if deflate else ("gzip", MalformedGzip)
    window = zlib.MAX_WBITS if deflate else 16 + zlib.MAX_WBITS
    inflated = bytearray()
    pending = compressed
    while True:
        inflater = zlib.decompressobj(window)
        try:
            # max_length is at least 1 here (0 would mean "no cap" to zlib).
            inflated += inflater.decompress(pending, limit + 1 - len(inflated))
        except zlib.error as exc:
            raise malformed(
                f"Request body is not a valid {name} stream: {exc}.",
                compressed[: kept_body_bytes()],
            ) from None
        if len(inflated) > limit:
            raise PayloadTooLarge(
                f"Request body inflates past the limit of {limit} bytes.",
                raw_body=compressed[: kept_body_bytes()],
            )
        if not inflater.eof:
            raise malformed(
                f"Request body is a truncated {name} stream.", compressed[: kept_body_bytes()]
            )
        pending = inflater.unused_data
        if not pending or deflate:
            break
    if pending:
        raise malformed("Request body has data after its deflate stream.", pending[:64])
    return bytes(inflated)


def body_decode(body: bytes, content_encoding: str, limit: int) -> bytes:
    """The body as sent before its Content-Encoding: gzip or deflate inflated with the cap,
    identity as is, anything else (br, zstd: no library here reads them) refused (415) by name
    with the encodings that are read (ADR 0037)."""
    encoding = content_encoding.strip().lower()
    if not encoding or encoding == "identity":
        return body
    if encoding in _GZIP_ENCODINGS:
        return body_inflate(body, limit)
    if encoding == _DEFLATE_ENCODING:
        return body_inflate(body, limit, deflate=True)
    raise UnsupportedContentEncoding(
        f"Content-Encoding {text_safe(encoding)!r} is not accepted; send {SUPPORTED_ENCODINGS}.",
        body[: kept_body_bytes()],
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def json_body_limit(view) -> int:
    """The body limit of the view being parsed for (read per request: settings may change)."""
    limit = getattr(view, "body_limit", None)
    return limit() if callable(limit) else settings.INGEST_MAX_BODY_BYTES


class BoundedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        limit = json_body_limit(parser_context.get("view"))
        request = parser_context.get("request")
        # The Django request's META (DRF's Request passes attributes on after a failed lookup).
        meta = getattr(request, "_request", request).META if request is not None else {}
        declared = meta.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > limit:
            kept = stream.read(kept_body_bytes()) if stream is not None else b""
            raise PayloadTooLarge(
                f"Request body is {declared} bytes; the limit is {limit}.", raw_body=kept
            )
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(
                f"Request body exceeds the limit of {limit} bytes.",
                raw_body=body[: kept_body_bytes()],
            )
        encoding = meta.get("HTTP_CONTENT_ENCODING")
        if encoding:
            body = body_decode(body, encoding, limit)
        if not body.strip():
            raise MalformedJson("Request body is empty; send a JSON object.", body)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJson(f"Request body is not valid UTF-8: {exc.reason}.", body) from None
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise MalformedJson("Malformed JSON: nested too deeply.", body) from None
        except ValueError as exc:
            raise MalformedJson(f"Malformed JSON: {exc}", body) from None


class PlainTextJSONParser(BoundedJSONParser):
    """JSON sent as `text/plain`: what `navigator.sendBeacon` and a fetch without a preflight
    can send. Only from public keys (ADR 0018); anyone else gets the 415 they always got."""

    media_type = "text/plain"

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        user = getattr(request, "user", None)
        if not (isinstance(user, KeyPrincipal) and user.public):
            raise UnsupportedMediaType(media_type)
        return super().parse(stream, media_type, parser_context)


# The ingestion views' parsers: JSON first (the fast path picks it for `application/json`).
INGEST_PARSERS = (BoundedJSONParser, PlainTextJSONParser)
