"""Gzip and deflate request bodies: inflated with a cap (no decompression bomb), bad streams
named, other encodings refused naming the ones read."""

import gzip
import zlib

import pytest

from events.parsers import (
    MalformedDeflate,
    MalformedGzip,
    PayloadTooLarge,
    UnsupportedContentEncoding,
    body_decode,
    body_inflate,
)


def test_inflates_a_gzip_body():
    body = b'{"events": []}'
    assert body_inflate(gzip.compress(body), 1000) == body


def test_several_members_are_one_body():
    """gzip itself reads concatenated members as one stream."""
    assert body_inflate(gzip.compress(b"ab") + gzip.compress(b"cd"), 100) == b"abcd"


def test_a_body_inflating_to_exactly_the_limit_passes():
    assert len(body_inflate(gzip.compress(b"x" * 1000), 1000)) == 1000


def test_a_bomb_stops_at_the_cap():
    """1 GB of zeros compresses to about 1 MB; inflating stops one byte past the limit."""
    inflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    bomb = b"".join(inflater.compress(chunk) for _ in range(64)) + inflater.flush()
    with pytest.raises(PayloadTooLarge) as caught:
        body_inflate(bomb, 500_000)
    assert caught.value.status_code == 413
    assert "inflates past" in str(caught.value.detail)


@pytest.mark.parametrize(
    "body",
    [b"not gzip at all", gzip.compress(b'{"a": 1}')[:-6], gzip.compress(b"ok") + b"junk"],
    ids=["not-gzip", "truncated", "trailing-junk"],
)
def test_a_bad_stream_is_a_400_naming_the_header(body):
    with pytest.raises(MalformedGzip) as caught:
        body_inflate(body, 1000)
    assert caught.value.status_code == 400
    assert (caught.value.field, caught.value.rule) == ("Content-Encoding", "gzip")


@pytest.mark.parametrize("encoding", ["", "identity", "IDENTITY "])
def test_identity_is_the_body_itself(encoding):
    assert body_decode(b"{}", encoding, 10) == b"{}"


@pytest.mark.parametrize("encoding", ["br", "zstd"])
def test_other_encodings_are_refused_by_name(encoding):
    with pytest.raises(UnsupportedContentEncoding) as caught:
        body_decode(b"{}", encoding, 10)
    assert caught.value.status_code == 415
    assert encoding in str(caught.value.detail)
    assert "gzip, deflate or none" in str(caught.value.detail)


def test_deflate_is_the_zlib_format_with_the_same_cap():
    assert body_decode(zlib.compress(b'{"a": 1}'), "Deflate", 100) == b'{"a": 1}'
    with pytest.raises(PayloadTooLarge):
        body_decode(zlib.compress(b"x" * 1001), "deflate", 1000)


@pytest.mark.parametrize(
    "body",
    [gzip.compress(b"{}"), zlib.compress(b"{}")[:-3], zlib.compress(b"a") + zlib.compress(b"b")],
    ids=["gzip-not-zlib", "truncated", "two-streams"],
)
def test_a_bad_deflate_stream_is_a_400_naming_deflate(body):
    with pytest.raises(MalformedDeflate) as caught:
        body_decode(body, "deflate", 1000)
    assert (caught.value.status_code, caught.value.rule) == (400, "deflate")
