"""PostgreSQL binary COPY encoding of a chunk's good events: one numpy pass per chunk spares
PostgreSQL the parsing of timestamps, uuids and numerics."""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np
import orjson

from events.sample_data.catalog import COUNTRY_CODES, CURRENCY, DEVICES
from events.sample_data.chunks import UTM_PROPERTIES, EventChunk, _vocab
from events.sample_data.payloads import event_properties, user_id_text
from events.schema import EVENT_TYPES

# --- binary COPY encoding ----------------------------------------------------------------

_COPY_COLUMNS = (
    # fixed width, encoded by numpy in one pass
    "event_id",
    "timestamp",
    "client_timestamp",
    "received_at",
    "user_id",
    "session_id",
    "country",
    # variable width, pre-encoded per vocabulary value
    "event_type",
    "device_type",
    "page_url",
    "search_query",
    "referrer",
    "product_id",
    "category",
    "price",
    "currency",
    "quantity",
    "order_id",
    "revenue",
    "properties",
    "warnings",
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_PG_EPOCH_MS = 946_684_800_000  # 2000-01-01, PostgreSQL's timestamp zero
_USER_ID_WIDTH = len(user_id_text(0))
_SESSION_ID_WIDTH = len("sess_") + 16
_FIXED = np.dtype(
    [
        ("fields", ">i2"),
        ("id_len", ">i4"),
        ("id", "V16"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        ("cts_len", ">i4"),
        ("cts", ">i8"),
        ("rcv_len", ">i4"),
        ("rcv", ">i8"),
        ("user_len", ">i4"),
        ("user", f"S{_USER_ID_WIDTH}"),
        ("session_len", ">i4"),
        ("session", f"S{_SESSION_ID_WIDTH}"),
        ("country_len", ">i4"),
        ("country", "S2"),
    ]
)


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _text(value: str) -> bytes:
    return _field(value.encode())


def _numeric(cents: int) -> bytes:
    """PostgreSQL's binary numeric: base-10000 digits, weight, sign, display scale 2."""
    sign = 0x4000 if cents < 0 else 0
    whole, fraction = divmod(abs(cents), 100)
    digits: list[int] = []
    while whole:
        whole, digit = divmod(whole, 10_000)
        digits.insert(0, digit)
    weight = len(digits) - 1
    digits.append(fraction * 100)
    while digits and digits[0] == 0:
        digits.pop(0)
        weight -= 1
    while digits and digits[-1] == 0:
        digits.pop()
    if not digits:
        weight = 0
    header = [len(digits), weight, sign, 2]
    packed = b"".join(value.to_bytes(2, "big", signed=True) for value in header + digits)
    return _field(packed)


def _jsonb(value: Any) -> bytes:
    return _field(b"\x01" + orjson.dumps(value))


class _Pieces:
    """Pre-encoded binary fields for every vocabulary value (built once per process)."""

    def __init__(self) -> None:
        vocab = _vocab()
        # event_type x device_type, index type * 4 + device
        self.type_device = np.array(
            [_text(name) + _text(device) for name in EVENT_TYPES for device in DEVICES],
            dtype=object,
        )
        self.countries = np.array(COUNTRY_CODES, dtype="S2")
        search_of_page = {
            vocab.first_search_page + i: term for i, term in enumerate(vocab.searches)
        }
        self.pages = np.array(
            [_text(page) + _text(search_of_page.get(i, "")) for i, page in enumerate(vocab.pages)],
            dtype=object,
        )
        self.referrers = np.array([_text(url) for url in vocab.referrers], dtype=object)
        empty = _text("")
        usd = _text(CURRENCY)
        none = empty + empty + _NULL + empty
        priced = [
            _text(p.product_id) + _text(p.category) + _numeric(p.price_cents) + usd
            for p in vocab.products
        ]
        unpriced = [_text(p.product_id) + _text(p.category) + _NULL + usd for p in vocab.products]
        # index: 0 none, 1..P priced product, P+1..2P product without a unit price
        self.products = np.array([none, *priced, *unpriced], dtype=object)
        self.quantities = np.array(
            [_NULL] + [_field(q.to_bytes(4, "big", signed=True)) for q in range(1, 1000)],
            dtype=object,
        )
        self.warnings = _jsonb([])
        no_order = empty + _NULL
        # order_id, revenue, properties, warnings of events without an order: index utm + 1
        self.tails = np.array(
            [no_order + _jsonb({}) + self.warnings]
            + [no_order + _jsonb(props) + self.warnings for props in UTM_PROPERTIES],
            dtype=object,
        )


_PIECES: _Pieces | None = None


def _pieces() -> _Pieces:
    global _PIECES
    if _PIECES is None:
        _PIECES = _Pieces()
    return _PIECES


def _user_ids(users: np.ndarray) -> np.ndarray:
    digits = np.char.zfill(users.astype(f"S{_USER_ID_WIDTH - 5}"), _USER_ID_WIDTH - 5)
    return np.char.add(b"user_", digits)


def chunk_copy_binary(chunk: EventChunk) -> tuple[bytes, int]:
    """The chunk's good events as a PostgreSQL binary COPY stream (columns `_COPY_COLUMNS`)."""
    pieces = _pieces()
    rows = np.flatnonzero(chunk.bad_kind < 0)
    # In event_id order (the order they were generated in, see event_ids), the unique
    # index takes the chunk as one run of appends.
    rows = rows[np.argsort(chunk.event_id[rows, :8].copy().view(">u8").ravel(), kind="stable")]
    n = len(rows)
    fixed = np.zeros(n, dtype=_FIXED)
    fixed["fields"] = len(_COPY_COLUMNS)
    fixed["id_len"] = 16
    fixed["id"] = np.ascontiguousarray(chunk.event_id[rows]).view("V16").ravel()
    fixed["ts_len"] = fixed["cts_len"] = fixed["rcv_len"] = 8
    fixed["ts"] = fixed["cts"] = (chunk.ts_ms[rows] - _PG_EPOCH_MS) * 1000
    fixed["rcv"] = (chunk.received_ms[rows] - _PG_EPOCH_MS) * 1000
    fixed["user_len"] = _USER_ID_WIDTH
    fixed["user"] = _user_ids(chunk.user[rows])
    fixed["session_len"] = _SESSION_ID_WIDTH
    fixed["session"] = np.array(chunk.session_ids, dtype=f"S{_SESSION_ID_WIDTH}")[
        chunk.session[rows]
    ]
    fixed["country_len"] = 2
    fixed["country"] = pieces.countries[chunk.country[rows]]

    product = chunk.product[rows]
    products_count = len(_vocab().products)
    product_code = np.where(
        product < 0,
        0,
        np.where(chunk.price_cents[rows] >= 0, product + 1, product + 1 + products_count),
    )
    quantity = np.minimum(chunk.quantity[rows], len(pieces.quantities) - 1)
    tails = pieces.tails[chunk.utm[rows] + 1].tolist()
    for position in np.flatnonzero(chunk.order[rows] >= 0).tolist():
        row = int(rows[position])
        properties = event_properties(chunk, row) if row in chunk.order_items else {}
        tails[position] = (
            _text(chunk.order_ids[chunk.order[row]])
            + _numeric(int(chunk.revenue_cents[row]))
            + _jsonb(properties)
            + pieces.warnings
        )
    columns = (
        fixed.view(f"V{_FIXED.itemsize}").tolist(),
        pieces.type_device[chunk.event_type[rows] * 4 + chunk.device[rows]].tolist(),
        pieces.pages[chunk.page[rows]].tolist(),
        pieces.referrers[chunk.referrer[rows]].tolist(),
        pieces.products[product_code].tolist(),
        pieces.quantities[quantity].tolist(),
        tails,
    )
    body = b"".join(chain.from_iterable(zip(*columns, strict=True)))
    return _COPY_HEADER + body + _COPY_TRAILER, n
