"""PostgreSQL binary COPY encoding of a chunk's good events: one numpy pass per chunk spares
PostgreSQL the parsing of timestamps, uuids and numerics."""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np
import orjson

from events.facade import EVENT_COLUMN_NAMES
from events.sample_data.catalog import COUNTRY_CODES, CURRENCY, DEVICES
from events.sample_data.chunks import UTM_PROPERTIES, EventChunk, _vocab
from events.sample_data.payloads import event_properties, user_id_text
from events.schema import EVENT_TYPES

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_PG_EPOCH_MS = 946_684_800_000  # 2000-01-01, PostgreSQL's timestamp zero
_USER_ID_WIDTH = len(user_id_text(0))
_SESSION_ID_WIDTH = len("sess_") + 16
# The fixed-width columns of a row, encoded by numpy in one pass: (column, width) each.
_FIXED_WIDTHS = (
    ("event_id", "V16"),
    ("timestamp", ">i8"),
    ("client_timestamp", ">i8"),
    ("received_at", ">i8"),
    ("user_id", f"S{_USER_ID_WIDTH}"),
    ("session_id", f"S{_SESSION_ID_WIDTH}"),
    ("country", "S2"),
)
_FIXED = np.dtype(
    [("fields", ">i2")]
    + [item for name, width in _FIXED_WIDTHS for item in ((f"{name}_len", ">i4"), (name, width))]
)
_FIXED_COLUMNS = tuple(name for name, _ in _FIXED_WIDTHS)
# Columns sample events leave to their database defaults (ADR 0014: no anonymous ids, nothing
# derived, sent through our own API, no original message, no IP).
_DEFAULTED_COLUMNS = ("anonymous_id", "derived", "source", "original", "client_ip")
# The stored columns in COPY order: the fixed-width ones, then the others (pre-encoded per
# vocabulary value) in the order of events.facade.EVENT_COLUMNS.
COPY_COLUMNS = _FIXED_COLUMNS + tuple(
    name
    for name in EVENT_COLUMN_NAMES
    if name not in _FIXED_COLUMNS and name not in _DEFAULTED_COLUMNS
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
    """Pre-encoded binary fields for every vocabulary value (built once per process), one
    array per run of adjacent columns of `COPY_COLUMNS` that one index determines."""

    def __init__(self) -> None:
        vocab = _vocab()
        # event_type, device_type: index type * 4 + device
        self.type_device = np.array(
            [_text(name) + _text(device) for name in EVENT_TYPES for device in DEVICES],
            dtype=object,
        )
        self.countries = np.array(COUNTRY_CODES, dtype="S2")
        self.pages = np.array([_text(page) for page in vocab.pages], dtype=object)
        self.referrers = np.array([_text(url) for url in vocab.referrers], dtype=object)
        empty = _text("")
        # product_id, category, price; then currency. Index: 0 none, 1..P priced product,
        # P+1..2P product without a unit price.
        priced = [
            _text(p.product_id) + _text(p.category) + _numeric(p.price_cents)
            for p in vocab.products
        ]
        unpriced = [_text(p.product_id) + _text(p.category) + _NULL for p in vocab.products]
        self.products = np.array([empty + empty + _NULL, *priced, *unpriced], dtype=object)
        self.currencies = np.array(
            [empty] + [_text(CURRENCY)] * (2 * len(vocab.products)), dtype=object
        )
        self.quantities = np.array(
            [_NULL] + [_field(q.to_bytes(4, "big", signed=True)) for q in range(1, 1000)],
            dtype=object,
        )
        # order_id, revenue, search_query of events without an order: index page
        search_of_page = {
            vocab.first_search_page + i: term for i, term in enumerate(vocab.searches)
        }
        self.searches = [_text(search_of_page.get(i, "")) for i in range(len(vocab.pages))]
        self.no_order_search = np.array(
            [empty + _NULL + search for search in self.searches], dtype=object
        )
        self.warnings = _jsonb([])
        # properties, warnings of events without an order: index utm + 1
        self.tails = np.array(
            [_jsonb({}) + self.warnings]
            + [_jsonb(props) + self.warnings for props in UTM_PROPERTIES],
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
    """The chunk's good events as a PostgreSQL binary COPY stream (columns `COPY_COLUMNS`)."""
    pieces = _pieces()
    rows = np.flatnonzero(chunk.bad_kind < 0)
    # In event_id order (the order they were generated in, see event_ids), the unique
    # index takes the chunk as one run of appends.
    rows = rows[np.argsort(chunk.event_id[rows, :8].copy().view(">u8").ravel(), kind="stable")]
    n = len(rows)
    fixed = np.zeros(n, dtype=_FIXED)
    fixed["fields"] = len(COPY_COLUMNS)
    for name, width in _FIXED_WIDTHS:
        fixed[f"{name}_len"] = np.dtype(width).itemsize
    fixed["event_id"] = np.ascontiguousarray(chunk.event_id[rows]).view("V16").ravel()
    fixed["timestamp"] = fixed["client_timestamp"] = (chunk.ts_ms[rows] - _PG_EPOCH_MS) * 1000
    fixed["received_at"] = (chunk.received_ms[rows] - _PG_EPOCH_MS) * 1000
    fixed["user_id"] = _user_ids(chunk.user[rows])
    fixed["session_id"] = np.array(chunk.session_ids, dtype=f"S{_SESSION_ID_WIDTH}")[
        chunk.session[rows]
    ]
    fixed["country"] = pieces.countries[chunk.country[rows]]

    product = chunk.product[rows]
    products_count = len(_vocab().products)
    product_code = np.where(
        product < 0,
        0,
        np.where(chunk.price_cents[rows] >= 0, product + 1, product + 1 + products_count),
    )
    quantity = np.minimum(chunk.quantity[rows], len(pieces.quantities) - 1)
    page = chunk.page[rows]
    orders = pieces.no_order_search[page].tolist()
    tails = pieces.tails[chunk.utm[rows] + 1].tolist()
    for position in np.flatnonzero(chunk.order[rows] >= 0).tolist():
        row = int(rows[position])
        orders[position] = (
            _text(chunk.order_ids[chunk.order[row]])
            + _numeric(int(chunk.revenue_cents[row]))
            + pieces.searches[int(page[position])]
        )
        properties = event_properties(chunk, row) if row in chunk.order_items else {}
        tails[position] = _jsonb(properties) + pieces.warnings
    columns = (
        fixed.view(f"V{_FIXED.itemsize}").tolist(),
        pieces.type_device[chunk.event_type[rows] * 4 + chunk.device[rows]].tolist(),
        pieces.pages[page].tolist(),
        pieces.referrers[chunk.referrer[rows]].tolist(),
        pieces.products[product_code].tolist(),
        pieces.quantities[quantity].tolist(),
        pieces.currencies[product_code].tolist(),
        orders,
        tails,
    )
    body = b"".join(chain.from_iterable(zip(*columns, strict=True)))
    return _COPY_HEADER + body + _COPY_TRAILER, n
