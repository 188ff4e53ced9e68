"""Deterministic generator of realistic shop traffic: the pure part (no database, no I/O).

Why vectorized: `generate_sample_data --events 10000000` must finish in minutes, so a chunk of
events is drawn as numpy columns (one array per field) rather than one Python object per event.
Only the few events that need it (bad ones, re-sent duplicates, and stream mode) become dicts.

Shape of the traffic:
- Sessions walk the funnel page_view -> product_view -> add_to_cart -> checkout_start -> purchase
  with nested drop-off (about 60% / 25% / 12% / 4% of sessions reach each step, less on mobile),
  plus searches and remove_from_cart.
- Users come back: each session picks a user of its country with a power law, so a minority of
  users has many sessions (new vs returning), mostly on their own usual device.
- Time: sessions start over the `days` before `end` with a day/night rhythm in each country's
  local time and a little more traffic on weekends. Nothing is later than `end`.
- A deterministic product catalog (product_id, category, price); purchases have an order_id and
  revenue == sum(price * quantity) over the order's items, in USD.
- A share of bad events (`bad_rate`), each tagged with its kind; kinds marked `rule_only` pass the
  schema layer and are for stored quality rules to catch. A share of good events is re-sent as an
  identical duplicate (`duplicate_rate`) and a few arrive hours late (`late_rate`).

Determinism: chunk k of a run draws from `numpy.random.default_rng([seed, k])`, so the same
(seed, events, days, end, chunk_events) gives the same events, event_ids included, whatever the
number of worker processes. The event_ids of a run come from a counter-based stream keyed by the
seed alone (`event_ids`), not from `end`: a second run with the same seed and --events re-sends
the same ids and stores nothing new, even minutes or days later.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from events.schema import EVENT_TYPES

PAGE_VIEW, PRODUCT_VIEW, SEARCH, ADD_TO_CART, REMOVE_FROM_CART, CHECKOUT_START, PURCHASE = range(7)
FUNNEL_STEPS = ("page_view", "product_view", "add_to_cart", "checkout_start", "purchase")
PRICED_TYPES = frozenset({PRODUCT_VIEW, ADD_TO_CART, REMOVE_FROM_CART, PURCHASE})
CURRENCY = "USD"  # one shop, one currency: revenue sums on dashboards stay meaningful

# (ISO code, share of sessions, UTC offset in hours used for the local day/night rhythm)
COUNTRIES: tuple[tuple[str, float, float], ...] = (
    ("US", 0.30, -5),
    ("GB", 0.10, 0),
    ("DE", 0.09, 1),
    ("FR", 0.06, 1),
    ("CA", 0.06, -5),
    ("IN", 0.06, 5.5),
    ("BR", 0.05, -3),
    ("AU", 0.04, 10),
    ("JP", 0.04, 9),
    ("NL", 0.03, 1),
    ("ES", 0.03, 1),
    ("IT", 0.03, 1),
    ("MX", 0.03, -6),
    ("SE", 0.02, 1),
    ("PL", 0.02, 1),
    ("IE", 0.02, 0),
    ("SG", 0.02, 8),
)
COUNTRY_CODES = tuple(code for code, _, _ in COUNTRIES)
DEVICES = ("mobile", "desktop", "tablet", "other")
DEVICE_WEIGHTS = (0.55, 0.35, 0.08, 0.02)
# Conversion multiplier per device for cart, checkout and purchase (desktop converts best).
DEVICE_CONVERSION = (0.85, 1.25, 1.0, 0.7)
FUNNEL_RATES = {"product_view": 0.60, "add_to_cart": 0.25, "checkout_start": 0.12, "purchase": 0.04}

# Relative traffic per local hour 0..23: quiet nights, a lunch bump, an evening peak.
HOUR_WEIGHTS = (
    0.35, 0.22, 0.15, 0.12, 0.12, 0.18, 0.35, 0.60, 0.80, 0.90, 1.00, 1.05,
    1.10, 1.05, 1.00, 1.00, 1.05, 1.15, 1.30, 1.45, 1.50, 1.35, 1.00, 0.60,
)  # fmt: skip
WEEKEND_FACTOR = 1.15

# category: (number of products, median price in USD, popularity, search terms)
CATEGORIES: dict[str, tuple[int, float, float, tuple[str, ...]]] = {
    "electronics": (60, 149.0, 0.20, ("wireless headphones", "usb c charger", "4k monitor")),
    "computers": (40, 699.0, 0.08, ("gaming laptop", "mechanical keyboard", "ssd 1tb")),
    "clothing": (80, 39.0, 0.18, ("running shoes", "winter jacket", "linen shirt")),
    "home_garden": (60, 49.0, 0.12, ("garden hose", "led desk lamp", "bed sheets")),
    "books": (70, 16.0, 0.10, ("cookbook", "fantasy novel", "python programming")),
    "sports": (40, 59.0, 0.09, ("yoga mat", "dumbbells", "bike helmet")),
    "beauty": (40, 24.0, 0.08, ("face serum", "shampoo", "sunscreen")),
    "toys": (40, 29.0, 0.07, ("lego set", "board game", "puzzle 1000")),
    "grocery": (40, 9.0, 0.05, ("coffee beans", "green tea", "olive oil")),
    "jewelry": (30, 119.0, 0.03, ("silver necklace", "watch", "earrings")),
}
GENERIC_SEARCHES = ("sale", "gift ideas", "free shipping", "new arrivals", "best sellers")
EXTERNAL_REFERRERS = (
    ("", 0.40),
    ("https://www.google.com/", 0.30),
    ("https://www.bing.com/", 0.04),
    ("https://www.facebook.com/", 0.08),
    ("https://www.instagram.com/", 0.07),
    ("https://t.co/", 0.03),
    ("https://newsletter.example.com/", 0.08),
)
LANDING_PAGES = ("/", "/sale", "/new-arrivals", "/blog/gift-guide", "/account")
SITE = "https://shop.example.com"
MAX_EVENTS = 100_000_000  # user ids have 7 digits (about one user per 14 events)
CATALOG_SEED = 20240115  # fixed: product ids and prices are the same for every --seed


# --- bad events --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadKind:
    """A kind of bad event. `rule_only`: the schema layer accepts it; stored rules catch it."""

    name: str
    weight: float
    types: frozenset[int]  # event types it can be applied to
    rule_only: bool = False
    field: str = ""  # the field a rejection names


_ALL = frozenset(range(7))
BAD_KINDS: tuple[BadKind, ...] = (
    BadKind("invalid_country", 0.12, _ALL, field="country"),
    BadKind("missing_field", 0.16, _ALL),
    BadKind(
        "negative_quantity", 0.06, frozenset({ADD_TO_CART, REMOVE_FROM_CART}), False, "quantity"
    ),
    BadKind("future_timestamp", 0.08, _ALL, field="timestamp"),
    BadKind("invalid_device", 0.06, _ALL, field="device_type"),
    BadKind("unknown_event_type", 0.05, _ALL, field="event_type"),
    BadKind("malformed_event_id", 0.05, _ALL, field="event_id"),
    BadKind("bad_timestamp_format", 0.05, _ALL, field="timestamp"),
    BadKind("negative_price", 0.05, frozenset({PRODUCT_VIEW, ADD_TO_CART}), False, "price"),
    BadKind("too_long", 0.04, _ALL, field="user_id"),
    BadKind("invalid_currency", 0.04, frozenset(PRICED_TYPES), False, "currency"),
    BadKind("revenue_mismatch", 0.10, frozenset({PURCHASE}), True, "revenue"),
    BadKind("stale_timestamp", 0.08, _ALL, True, "timestamp"),
    BadKind("orphan_checkout", 0.06, frozenset({CHECKOUT_START}), True, "session_id"),
)
BAD_KIND_BY_NAME = {kind.name: kind for kind in BAD_KINDS}
RULE_ONLY_KINDS = frozenset(kind.name for kind in BAD_KINDS if kind.rule_only)
# Required fields a `missing_field` event may lose, per type (event_id stays: it keys the row).
_MISSING_CANDIDATES = {
    PAGE_VIEW: ("user_id", "session_id", "country", "device_type", "timestamp"),
    PRODUCT_VIEW: ("product_id", "user_id", "session_id", "country"),
    SEARCH: ("search_query", "user_id", "device_type"),
    ADD_TO_CART: ("product_id", "quantity", "session_id", "country"),
    REMOVE_FROM_CART: ("product_id", "quantity", "user_id"),
    CHECKOUT_START: ("user_id", "session_id", "device_type", "timestamp"),
    PURCHASE: ("order_id", "revenue", "user_id", "country"),
}


# --- catalog and vocabularies ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    category: str
    price_cents: int

    @property
    def price(self) -> Decimal:
        return Decimal(self.price_cents) / 100


def product_catalog() -> tuple[Product, ...]:
    """The shop's products, the same for every seed (sorted by category, then id)."""
    rng = np.random.default_rng(CATALOG_SEED)
    products = []
    for category, (count, median, _, _) in CATEGORIES.items():
        prices = median * rng.lognormal(mean=0.0, sigma=0.55, size=count)
        code = category[:4].upper()
        for number, price in enumerate(prices, start=1):
            cents = max(99, math.floor(price) * 100 + 99)  # shop prices end in .99
            products.append(Product(f"SKU-{code}-{number:04d}", category, cents))
    return tuple(products)


@dataclass(frozen=True)
class Vocabulary:
    """Every finite set of values the generator draws from, indexed by small integers."""

    products: tuple[Product, ...]
    category_names: tuple[str, ...]
    category_offsets: np.ndarray  # products of category c: [offsets[c], offsets[c + 1])
    category_weights: np.ndarray
    product_category: np.ndarray  # category index per product
    price_cents: np.ndarray  # per product
    searches: tuple[str, ...]
    search_category: np.ndarray  # category index per search term, -1 generic
    pages: tuple[str, ...]
    referrers: tuple[str, ...]  # external ones first, then SITE + each page

    def product_page(self, product: np.ndarray) -> np.ndarray:
        return self.first_product_page + product

    def search_page(self, search: np.ndarray) -> np.ndarray:
        return self.first_search_page + search

    @property
    def first_category_page(self) -> int:
        return len(LANDING_PAGES)

    @property
    def first_product_page(self) -> int:
        return self.first_category_page + len(self.category_names)

    @property
    def first_search_page(self) -> int:
        return self.first_product_page + len(self.products)

    @property
    def cart_page(self) -> int:
        return self.first_search_page + len(self.searches)


def vocabulary() -> Vocabulary:
    products = product_catalog()
    names = tuple(CATEGORIES)
    counts = [CATEGORIES[name][0] for name in names]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    weights = np.array([CATEGORIES[name][2] for name in names])
    searches: list[str] = []
    search_category: list[int] = []
    for index, name in enumerate(names):
        for term in CATEGORIES[name][3]:
            searches.append(term)
            search_category.append(index)
    for term in GENERIC_SEARCHES:
        searches.append(term)
        search_category.append(-1)
    pages = (
        list(LANDING_PAGES)
        + [f"/category/{name}" for name in names]
        + [f"/products/{product.product_id}" for product in products]
        + [f"/search?q={term.replace(' ', '+')}" for term in searches]
        + ["/cart", "/checkout", "/checkout/confirmation"]
    )
    referrers = tuple(url for url, _ in EXTERNAL_REFERRERS) + tuple(SITE + page for page in pages)
    return Vocabulary(
        products=products,
        category_names=names,
        category_offsets=offsets,
        category_weights=weights / weights.sum(),
        product_category=np.repeat(np.arange(len(names)), counts),
        price_cents=np.array([product.price_cents for product in products], dtype=np.int64),
        searches=tuple(searches),
        search_category=np.array(search_category),
        pages=tuple(pages),
        referrers=referrers,
    )


# --- configuration -----------------------------------------------------------------------


def default_end(now: dt.datetime) -> dt.datetime:
    """The anchor when --end is not given: now, floored to the minute (so never in the future)."""
    return now.astimezone(dt.UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class SampleConfig:
    """What to generate. `events` counts distinct events (good and bad); duplicates come on top."""

    events: int
    end: dt.datetime
    seed: int = 42
    days: int = 7
    bad_rate: float = 0.01
    duplicate_rate: float = 0.005
    late_rate: float = 0.002
    chunk_events: int = 250_000

    def __post_init__(self) -> None:
        if not 0 <= self.events <= MAX_EVENTS:
            raise ValueError(f"events must be between 0 and {MAX_EVENTS:,}")
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")
        for name in ("bad_rate", "duplicate_rate", "late_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.chunk_events < 1:
            raise ValueError("chunk_events must be >= 1")

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.days * 86_400_000

    @property
    def chunk_count(self) -> int:
        return max(1, math.ceil(self.events / self.chunk_events)) if self.events else 0

    @property
    def user_count(self) -> int:
        """Distinct users: about one per 14 events, so most users have a few sessions."""
        return max(len(COUNTRIES) * 3, self.events // 14)


# --- the day/night rhythm ----------------------------------------------------------------


def _minute_density(config: SampleConfig) -> tuple[np.ndarray, np.ndarray]:
    """Traffic weight per minute of the period, and P(country | hour) per UTC hour."""
    minutes = config.days * 1440
    start = config.start_ms // 1000
    utc_hour_abs = (start + np.arange(0, minutes) * 60) // 3600  # hours since epoch
    hours = np.unique(utc_hour_abs)
    hour_of_day = hours % 24
    weekday = ((hours // 24) + 3) % 7  # 1970-01-01 was a Thursday (3, Monday = 0)
    shares = np.array([share for _, share, _ in COUNTRIES])
    offsets = np.array([offset for _, _, offset in COUNTRIES])
    local = np.floor(hour_of_day[:, None] + offsets[None, :]).astype(int) % 24
    per_country = shares[None, :] * np.asarray(HOUR_WEIGHTS)[local]
    per_country *= np.where(weekday >= 5, WEEKEND_FACTOR, 1.0)[:, None]
    per_hour = per_country.sum(axis=1)
    country_given_hour = per_country / per_hour[:, None]
    density = per_hour[np.searchsorted(hours, utc_hour_abs)]
    return density, country_given_hour[np.searchsorted(hours, utc_hour_abs)]


@dataclass(frozen=True)
class RunPlan:
    """How a run is split: chunk k covers minutes [bounds[k], bounds[k+1]) and has counts[k]
    events, in proportion to the traffic expected in its window."""

    config: SampleConfig
    density: np.ndarray
    country_given_minute: np.ndarray
    bounds: np.ndarray
    counts: np.ndarray
    user_country: np.ndarray  # country index per user (users grouped by country)
    country_user_offsets: np.ndarray
    user_device: np.ndarray  # usual device per user


def run_plan(config: SampleConfig) -> RunPlan:
    density, country_given_minute = _minute_density(config)
    chunks = config.chunk_count
    bounds = np.linspace(0, len(density), chunks + 1).round().astype(np.int64)
    counts = np.zeros(chunks, dtype=np.int64)
    if chunks:
        weight = np.add.reduceat(density, bounds[:-1])
        exact = config.events * weight / weight.sum()
        counts = np.floor(exact).astype(np.int64)
        shortfall = config.events - int(counts.sum())
        counts[np.argsort(-(exact - counts), kind="stable")[:shortfall]] += 1
    rng = np.random.default_rng([config.seed, 1_000_000_007])
    shares = np.array([share for _, share, _ in COUNTRIES])
    per_country = np.maximum(1, np.round(config.user_count * shares / shares.sum())).astype(int)
    user_country = np.repeat(np.arange(len(COUNTRIES)), per_country)
    user_device = rng.choice(len(DEVICES), size=len(user_country), p=DEVICE_WEIGHTS)
    return RunPlan(
        config=config,
        density=density,
        country_given_minute=country_given_minute,
        bounds=bounds,
        counts=counts,
        user_country=user_country,
        country_user_offsets=np.concatenate([[0], np.cumsum(per_country)]),
        user_device=user_device,
    )


# --- one chunk ---------------------------------------------------------------------------


@dataclass
class EventChunk:
    """Events of one chunk as columns, sorted by timestamp. Index arrays point into the
    Vocabulary; -1 (or 0 for quantity) means "no value"."""

    index: int
    event_id: np.ndarray  # (n, 16) uint8 UUID bytes, see event_ids
    event_type: np.ndarray
    ts_ms: np.ndarray
    received_ms: np.ndarray
    user: np.ndarray
    session: np.ndarray  # index into session_ids / session_user...
    session_ids: list[str]
    device: np.ndarray
    country: np.ndarray
    page: np.ndarray
    referrer: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    price_cents: np.ndarray  # -1: no price (events without product, multi-item purchases)
    revenue_cents: np.ndarray  # -1: none
    order: np.ndarray  # index into order_ids, -1 none
    order_ids: list[str]
    search: np.ndarray
    order_items: dict[int, list[tuple[int, int]]]  # event row -> [(product, quantity)] if > 1
    utm: np.ndarray  # index into UTM_PROPERTIES, -1 none
    late: np.ndarray  # bool
    bad_kind: np.ndarray  # index into BAD_KINDS, -1 good
    duplicate: np.ndarray  # bool: re-sent once more
    resend_ms: np.ndarray  # when the bad event or the duplicate is sent (received)
    bad_seed: np.ndarray  # per-event random bits used to vary bad payloads

    def __len__(self) -> int:
        return len(self.ts_ms)


UTM_PROPERTIES = (
    {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand"},
    {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "weekly"},
    {"utm_source": "instagram", "utm_medium": "social", "utm_campaign": "summer"},
)


def _hex_ids(rng: np.random.Generator, count: int, digits: int) -> list[str]:
    raw = rng.integers(0, 256, size=(count, digits // 2), dtype=np.uint8)
    text = raw.tobytes().hex()
    return [text[i : i + digits] for i in range(0, len(text), digits)]


def _power_index(rng: np.random.Generator, sizes: np.ndarray, alpha: float) -> np.ndarray:
    """Index in [0, size) skewed to small values: a few popular items, a long tail."""
    return np.minimum((sizes * rng.random(len(sizes)) ** alpha).astype(np.int64), sizes - 1)


def _geometric(rng: np.random.Generator, p: float, count: int, cap: int) -> np.ndarray:
    return np.minimum(rng.geometric(p, size=count), cap)


@dataclass
class _Sessions:
    count: np.ndarray  # (S, 7) events per type
    start_ms: np.ndarray
    user: np.ndarray
    device: np.ndarray
    country: np.ndarray
    category: np.ndarray
    purchase: np.ndarray
    remove: np.ndarray


def _draw_sessions(plan: RunPlan, rng: np.random.Generator, size: int, chunk: int) -> _Sessions:
    config = plan.config
    lo, hi = plan.bounds[chunk], plan.bounds[chunk + 1]
    window = plan.density[lo:hi]
    cdf = np.cumsum(window)
    minute = lo + np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
    minute = np.minimum(minute, hi - 1)
    start_ms = config.start_ms + minute * 60_000 + rng.integers(0, 60_000, size)
    country_p = np.cumsum(plan.country_given_minute[minute], axis=1)
    country = (country_p < rng.random(size)[:, None]).sum(axis=1)
    country = np.minimum(country, len(COUNTRIES) - 1)
    offsets = plan.country_user_offsets
    sizes = offsets[country + 1] - offsets[country]
    user = offsets[country] + _power_index(rng, sizes, 2.2)
    device = np.where(
        rng.random(size) < 0.85,
        plan.user_device[user],
        rng.choice(len(DEVICES), size=size, p=DEVICE_WEIGHTS),
    )
    conversion = np.asarray(DEVICE_CONVERSION)[device]
    step = rng.random(size)
    viewed = step < FUNNEL_RATES["product_view"]
    carted = step < FUNNEL_RATES["add_to_cart"] * conversion
    checkout = carted & (step < FUNNEL_RATES["checkout_start"] * conversion)
    purchase = checkout & (step < FUNNEL_RATES["purchase"] * conversion)
    viewed |= carted

    count = np.zeros((size, 7), dtype=np.int64)
    count[:, PAGE_VIEW] = _geometric(rng, 0.55, size, 8)
    count[:, SEARCH] = np.where(rng.random(size) < 0.35, _geometric(rng, 0.6, size, 4), 0)
    count[:, PRODUCT_VIEW] = np.where(viewed, _geometric(rng, 0.4, size, 10), 0)
    adds = np.where(carted, _geometric(rng, 0.6, size, 4), 0)
    count[:, ADD_TO_CART] = adds
    remove = carted & (rng.random(size) < 0.2) & ((adds >= 2) | ~purchase)
    count[:, REMOVE_FROM_CART] = remove
    count[:, CHECKOUT_START] = np.where(checkout, 1 + (rng.random(size) < 0.08), 0)
    count[:, PURCHASE] = purchase
    category = rng.choice(len(CATEGORIES), size=size, p=_vocab().category_weights)
    return _Sessions(count, start_ms, user, device, country, category, purchase, remove)


_VOCAB: Vocabulary | None = None


def _vocab() -> Vocabulary:
    global _VOCAB
    if _VOCAB is None:
        _VOCAB = vocabulary()
    return _VOCAB


# Block order of a session's events: landing, searches, product views, carts, checkout, buy.
_SESSION_ORDER = (PAGE_VIEW, SEARCH, PRODUCT_VIEW, ADD_TO_CART, REMOVE_FROM_CART, CHECKOUT_START,
                  PURCHASE)  # fmt: skip


def chunk_generate(plan: RunPlan, chunk: int) -> EventChunk:
    """Draw chunk `chunk` of the run: exactly plan.counts[chunk] events, sorted by time."""
    config = plan.config
    vocab = _vocab()
    rng = np.random.default_rng([config.seed, chunk])
    target = max(1, int(plan.counts[chunk]))
    parts: list[_Sessions] = []
    total = 0
    while total < target:
        batch = _draw_sessions(plan, rng, max(64, int((target - total) / 4.5) + 64), chunk)
        parts.append(batch)
        total += int(batch.count.sum())
    sessions = _Sessions(*(np.concatenate([getattr(p, name) for p in parts]) for name in
                           _Sessions.__dataclass_fields__))  # fmt: skip
    # Keep whole sessions up to the target and cut the last one (keeping its first events).
    per_session = sessions.count.sum(axis=1)
    ends = np.cumsum(per_session)
    kept = int(np.searchsorted(ends, target, side="left")) + 1 if target else 0
    sessions = _Sessions(
        *(getattr(sessions, name)[:kept] for name in _Sessions.__dataclass_fields__)
    )
    order_counts = sessions.count[:, _SESSION_ORDER]
    flat = order_counts.ravel()
    n_sessions = len(sessions.start_ms)
    session = np.repeat(np.repeat(np.arange(n_sessions), 7), flat)
    event_type = np.repeat(np.tile(np.asarray(_SESSION_ORDER), n_sessions), flat)
    session = session[:target]
    event_type = event_type[:target]
    n = len(session)
    first = np.ones(n, dtype=bool)
    first[1:] = session[1:] != session[:-1]
    starts = np.flatnonzero(first)
    lengths = np.diff(np.append(starts, n))

    # Time: gaps of seconds to minutes between a session's events; shifted back to end.
    gaps = np.minimum(rng.lognormal(np.log(25_000), 0.9, n), 600_000).astype(np.int64)
    gaps[first] = 0
    gaps[event_type == PURCHASE] += rng.integers(
        30_000, 240_000, int((event_type == PURCHASE).sum())
    )
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[starts], lengths)
    ts_ms = sessions.start_ms[session] + elapsed
    session_last = np.maximum.reduceat(ts_ms, starts) if n else ts_ms
    overshoot = np.maximum(0, session_last - config.end_ms)
    ts_ms -= np.repeat(overshoot, lengths)

    # Products: mostly from the session's category, popular ones more often.
    offsets = vocab.category_offsets
    own = sessions.category[session]
    sizes = offsets[own + 1] - offsets[own]
    product = offsets[own] + _power_index(rng, sizes, 1.8)
    anywhere = _power_index(rng, np.full(n, len(vocab.products)), 1.5)
    product = np.where(rng.random(n) < 0.75, product, anywhere)
    is_pv = event_type == PRODUCT_VIEW
    # Cart events take one of the session's viewed products.
    pv_count = sessions.count[session, PRODUCT_VIEW]
    pv_first = np.repeat(starts, lengths) + (order_counts[session, 0] + order_counts[session, 1])
    cart = (event_type == ADD_TO_CART) | (event_type == REMOVE_FROM_CART) | (event_type == PURCHASE)
    pick = pv_first + (rng.random(n) * np.maximum(pv_count, 1)).astype(np.int64)
    pick = np.minimum(pick, n - 1)
    product = np.where(cart, product[pick], product)
    product = np.where(is_pv | cart, product, -1)
    quantity = np.zeros(n, dtype=np.int64)
    adds = event_type == ADD_TO_CART
    quantity[adds] = rng.choice(
        [1, 2, 3, 4, 5], size=int(adds.sum()), p=[0.8, 0.13, 0.04, 0.02, 0.01]
    )
    # remove_from_cart takes back the session's last add (it directly precedes it).
    removes = np.flatnonzero(event_type == REMOVE_FROM_CART)
    product[removes] = product[removes - 1]
    quantity[removes] = quantity[removes - 1]
    removed_add = np.zeros(n, dtype=bool)
    removed_add[removes - 1] = True

    price_cents = np.where(product >= 0, vocab.price_cents[np.maximum(product, 0)], -1)
    revenue_cents = np.full(n, -1, dtype=np.int64)
    order = np.full(n, -1, dtype=np.int64)
    order_items: dict[int, list[tuple[int, int]]] = {}
    purchases = np.flatnonzero(event_type == PURCHASE)
    order_ids = [f"ORD-{text.upper()}" for text in _hex_ids(rng, len(purchases), 12)]
    if len(purchases):
        bought = adds & ~removed_add & sessions.purchase[session]
        line_value = np.where(bought, price_cents * quantity, 0)
        session_revenue = np.bincount(session, weights=line_value, minlength=n_sessions)
        session_units = np.bincount(session, weights=np.where(bought, quantity, 0),
                                    minlength=n_sessions)  # fmt: skip
        session_lines = np.bincount(session, weights=bought, minlength=n_sessions)
        buyer = session[purchases]
        revenue_cents[purchases] = session_revenue[buyer].round().astype(np.int64)
        order[purchases] = np.arange(len(purchases))
        lines = session_lines[buyer].astype(np.int64)
        first_line = np.full(n_sessions, -1, dtype=np.int64)
        bought_rows = np.flatnonzero(bought)
        buyers, first_bought = np.unique(session[bought_rows], return_index=True)
        first_line[buyers] = bought_rows[first_bought]
        line_row = first_line[buyer]
        product[purchases] = product[line_row]
        quantity[purchases] = session_units[buyer].astype(np.int64)
        price_cents[purchases] = np.where(lines == 1, price_cents[line_row], -1)
        for row, buyer_session in zip(purchases[lines > 1], buyer[lines > 1], strict=True):
            rows = bought_rows[session[bought_rows] == buyer_session]
            order_items[int(row)] = [(int(product[r]), int(quantity[r])) for r in rows]
    # Searches, pages and referrers.
    search = np.full(n, -1, dtype=np.int64)
    is_search = event_type == SEARCH
    term = rng.integers(0, len(vocab.searches), n)
    own_terms = _search_terms_of(vocab, own, rng)
    search[is_search] = np.where(rng.random(n) < 0.8, own_terms, term)[is_search]
    page = np.empty(n, dtype=np.int64)
    landing = rng.integers(0, vocab.first_product_page, n)
    landing = np.where(rng.random(n) < 0.35, vocab.first_category_page + own, landing)
    page[:] = landing
    page[is_pv | adds] = vocab.product_page(product[is_pv | adds])
    page[is_search] = vocab.search_page(search[is_search])
    page[event_type == REMOVE_FROM_CART] = vocab.cart_page
    page[event_type == CHECKOUT_START] = vocab.cart_page + 1
    page[event_type == PURCHASE] = vocab.cart_page + 2
    external = rng.choice(len(EXTERNAL_REFERRERS), size=n, p=[w for _, w in EXTERNAL_REFERRERS])
    referrer = np.empty(n, dtype=np.int64)
    referrer[1:] = len(EXTERNAL_REFERRERS) + page[:-1]
    referrer[first] = external[first]
    utm = np.full(n, -1, dtype=np.int64)
    tagged = first & (rng.random(n) < 0.25)
    utm[tagged] = rng.integers(0, len(UTM_PROPERTIES), int(tagged.sum()))

    # Arrival: latency under a few seconds; a few events hours late; never after end.
    received_ms = ts_ms + rng.lognormal(np.log(300), 1.0, n).astype(np.int64)
    offset = int(plan.counts[:chunk].sum())
    fate = event_fates(config.seed, offset, n)
    late = fate[:, 2] < config.late_rate
    received_ms[late] = ts_ms[late] + rng.integers(3_600_000, 36 * 3_600_000, int(late.sum()))
    received_ms = np.minimum(received_ms, config.end_ms)
    late &= received_ms - ts_ms >= 3_600_000

    bad = fate[:, 0] < config.bad_rate
    bad_kind = np.full(n, -1, dtype=np.int64)
    bad_kind[bad] = _bad_kinds_for(rng, event_type[bad])
    late &= bad_kind < 0
    duplicate = (fate[:, 1] < config.duplicate_rate) & (bad_kind < 0)
    resend_ms = np.minimum(received_ms + rng.integers(1_000, 1_800_000, n), config.end_ms)
    resend_ms = np.where(duplicate, resend_ms, received_ms)

    raw_ids = event_ids(config.seed, offset, n)
    # Session ids start with the session's start second in hex (as GA4's ga_session_id is the
    # start time): readable, and they keep the session index append-mostly on bulk loads.
    session_ids = [
        f"sess_{start // 1000:08x}{text}"
        for start, text in zip(
            sessions.start_ms.tolist(), _hex_ids(rng, n_sessions, 8), strict=True
        )
    ]
    bad_seed = rng.integers(0, 2**31, n)

    by_time = np.argsort(ts_ms, kind="stable")
    inverse = np.empty(n, dtype=np.int64)
    inverse[by_time] = np.arange(n)
    return EventChunk(
        index=chunk,
        event_id=raw_ids[by_time],
        event_type=event_type[by_time],
        ts_ms=ts_ms[by_time],
        received_ms=received_ms[by_time],
        user=sessions.user[session][by_time],
        session=session[by_time],
        session_ids=session_ids,
        device=sessions.device[session][by_time],
        country=sessions.country[session][by_time],
        page=page[by_time],
        referrer=referrer[by_time],
        product=product[by_time],
        quantity=quantity[by_time],
        price_cents=price_cents[by_time],
        revenue_cents=revenue_cents[by_time],
        order=order[by_time],
        order_ids=order_ids,
        search=search[by_time],
        order_items={int(inverse[row]): items for row, items in order_items.items()},
        utm=utm[by_time],
        late=late[by_time],
        bad_kind=bad_kind[by_time],
        duplicate=duplicate[by_time],
        resend_ms=resend_ms[by_time],
        bad_seed=bad_seed[by_time],
    )


def _indexed_bits(seed: int, stream: int, offset: int, count: int) -> np.ndarray:
    """(count, 4) random uint64 for events [offset, offset + count) of a run: Philox is
    counter-based, so event g gets the same bits whatever chunk it falls in."""
    key = np.random.SeedSequence([seed, stream]).generate_state(2, np.uint64)
    generator = np.random.Philox(key=key, counter=[offset, 0, 0, 0])
    return generator.random_raw(4 * count).reshape(count, 4)


def event_ids(seed: int, offset: int, count: int) -> np.ndarray:
    """UUID bytes of events [offset, offset + count) of a run, keyed by the seed alone, so a
    run's ids do not depend on `end` or on the chunking.

    Layout (UUIDv8, RFC 9562's custom version): 16 bits derived from the seed, 32 bits of the
    event's index in the run, then seeded random bits. Like UUIDv7 ids (which trackers such as
    PostHog send), consecutive events get neighbouring ids, so bulk loads append to the right
    edge of the unique index instead of dirtying all of it: measured 40% less load time at 4M
    rows than random UUID4s, and the gap grows with the table.
    """
    bits = _indexed_bits(seed, 0x5EED1D5, offset, count)[:, :2]
    raw = bits.astype("<u8").view(np.uint8).reshape(count, 16).copy()
    prefix = np.random.SeedSequence([seed, 0x9E3779B9]).generate_state(1, np.uint32)[0] >> 16
    raw[:, 0] = prefix >> 8
    raw[:, 1] = prefix & 0xFF
    index = np.arange(offset, offset + count, dtype=">u4").view(np.uint8).reshape(count, 4)
    raw[:, 2:6] = index
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x80  # version 8
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 9562 variant
    return raw


def event_fates(seed: int, offset: int, count: int) -> np.ndarray:
    """Uniforms in [0, 1) per event deciding (bad, duplicate, late), stable like the ids: a
    rerun with another `end` plants its bad events and duplicates on the same event_ids."""
    bits = _indexed_bits(seed, 0xFA7E5, offset, count)[:, :3]
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _search_terms_of(
    vocab: Vocabulary, category: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A search term of each row's category (three per category, stored consecutively)."""
    first_term = np.searchsorted(vocab.search_category[vocab.search_category >= 0], category)
    return first_term + rng.integers(0, 3, len(category))


def _bad_kinds_for(rng: np.random.Generator, event_types: np.ndarray) -> np.ndarray:
    """A bad kind per event, by weight among the kinds that apply to its type."""
    weights = np.array(
        [[kind.weight if t in kind.types else 0.0 for kind in BAD_KINDS] for t in range(7)]
    )
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    draws = rng.random(len(event_types))
    return (cumulative[event_types] < draws[:, None]).sum(axis=1)


# --- rows and payloads -------------------------------------------------------------------


def uuid_text(raw: np.ndarray) -> str:
    return str(uuid.UUID(bytes=raw.tobytes()))


def _iso(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _money(cents: int) -> float:
    """Cents as a JSON number with two decimals (the float's repr is exact to the cent)."""
    return round(cents / 100, 2)


def user_id_text(user: int) -> str:
    return f"user_{user:07d}"


def event_properties(chunk: EventChunk, row: int) -> dict[str, Any]:
    if row in chunk.order_items:
        vocab = _vocab()
        return {
            "items": [
                {
                    "product_id": vocab.products[product].product_id,
                    "price": _money(vocab.products[product].price_cents),
                    "quantity": quantity,
                }
                for product, quantity in chunk.order_items[row]
            ]
        }
    if chunk.utm[row] >= 0:
        return dict(UTM_PROPERTIES[chunk.utm[row]])
    return {}


def event_payload(chunk: EventChunk, row: int) -> dict[str, Any]:
    """The wire-format event (as a client would POST it) of one generated row, before any
    bad-event mutation."""
    vocab = _vocab()
    event_type = int(chunk.event_type[row])
    payload: dict[str, Any] = {
        "event_id": uuid_text(chunk.event_id[row]),
        "event_type": EVENT_TYPES[event_type],
        "timestamp": _iso(int(chunk.ts_ms[row])),
        "user_id": user_id_text(int(chunk.user[row])),
        "session_id": chunk.session_ids[chunk.session[row]],
        "device_type": DEVICES[chunk.device[row]],
        "country": COUNTRY_CODES[chunk.country[row]],
        "page_url": vocab.pages[chunk.page[row]],
    }
    referrer = vocab.referrers[chunk.referrer[row]]
    if referrer:
        payload["referrer"] = referrer
    product = int(chunk.product[row])
    if product >= 0:
        payload["product_id"] = vocab.products[product].product_id
        payload["category"] = vocab.products[product].category
        payload["currency"] = CURRENCY
    if chunk.price_cents[row] >= 0:
        payload["price"] = _money(int(chunk.price_cents[row]))
    if chunk.quantity[row] > 0:
        payload["quantity"] = int(chunk.quantity[row])
    if chunk.order[row] >= 0:
        payload["order_id"] = chunk.order_ids[chunk.order[row]]
        payload["revenue"] = _money(int(chunk.revenue_cents[row]))
    if chunk.search[row] >= 0:
        payload["search_query"] = vocab.searches[chunk.search[row]]
    properties = event_properties(chunk, row)
    if properties:
        payload["properties"] = properties
    return payload


def bad_payload(chunk: EventChunk, row: int) -> dict[str, Any]:
    """The payload of a bad row: its good payload broken in the way of its kind."""
    kind = BAD_KINDS[chunk.bad_kind[row]]
    payload = event_payload(chunk, row)
    variant = int(chunk.bad_seed[row])
    received_ms = int(chunk.resend_ms[row])
    match kind.name:
        case "invalid_country":
            payload["country"] = ("XX", "ZZ", "Germany", "usa", "U5")[variant % 5]
        case "missing_field":
            candidates = _MISSING_CANDIDATES[int(chunk.event_type[row])]
            payload.pop(candidates[variant % len(candidates)], None)
        case "negative_quantity":
            payload["quantity"] = -(1 + variant % 3)
        case "future_timestamp":
            # At least 2 h after receipt, so it stays in the future for the whole hour batch.
            payload["timestamp"] = _iso(received_ms + 7_200_000 + variant % (46 * 3_600_000))
        case "invalid_device":
            payload["device_type"] = ("smartwatch", "Mobile", "tv", "")[variant % 4]
        case "unknown_event_type":
            payload["event_type"] = ("wishlist_add", "PageView", "add-to-cart", "login")[
                variant % 4
            ]
        case "malformed_event_id":
            payload["event_id"] = malformed_event_id(payload["event_id"])
        case "bad_timestamp_format":
            moment = dt.datetime.fromtimestamp(int(chunk.ts_ms[row]) / 1000, tz=dt.UTC)
            payload["timestamp"] = (
                moment.strftime("%d/%m/%Y %H:%M"),
                moment.strftime("%Y-%m-%dT25:%M:%SZ"),
                "yesterday",
            )[variant % 3]
        case "negative_price":
            payload["price"] = -payload.get("price", 9.99)
        case "too_long":
            payload["user_id"] = "user_" + "x" * (130 + variant % 200)
        case "invalid_currency":
            payload["currency"] = ("usd", "DOLLAR", "€")[variant % 3]
        case "revenue_mismatch":
            price = payload.get("price") or event_properties(chunk, row)["items"][0]["price"]
            payload["price"] = price
            payload["quantity"] = 1
            cents = round(price * 100)
            payload["revenue"] = _money(cents + 500 + variant % 10_000)
        case "stale_timestamp":
            # A device clock reset: 12 to 40 years before receipt (never before 1970 here).
            payload["timestamp"] = _iso(received_ms - (4400 + variant % 10_000) * 86_400_000)
        case "orphan_checkout":
            payload["session_id"] = f"sess_orphan_{payload['event_id'].replace('-', '')[:16]}"
    return payload


def malformed_event_id(event_id: str) -> str:
    """The not-a-UUID id a `malformed_event_id` bad event carries instead of `event_id`."""
    return f"evt-{event_id.replace('-', '')[:20]}"


@dataclass(frozen=True, slots=True)
class SampleEvent:
    """One event as sent, with what the generator knows about it (for tests and quality)."""

    payload: dict[str, Any]
    kind: str | None  # None: good; else a BadKind name
    rule_only: bool
    late: bool
    duplicate: bool  # True for the second, re-sent copy of a good event
    received_ms: int

    @property
    def is_good(self) -> bool:
        return self.kind is None


def chunk_events(chunk: EventChunk) -> Iterator[SampleEvent]:
    """Every event of a chunk as payloads, duplicates right after their originals."""
    for row in range(len(chunk)):
        kind_index = int(chunk.bad_kind[row])
        if kind_index >= 0:
            kind = BAD_KINDS[kind_index]
            yield SampleEvent(
                bad_payload(chunk, row), kind.name, kind.rule_only, False, False,
                int(chunk.resend_ms[row]),
            )  # fmt: skip
            continue
        payload = event_payload(chunk, row)
        late = bool(chunk.late[row])
        yield SampleEvent(payload, None, False, late, False, int(chunk.received_ms[row]))
        if chunk.duplicate[row]:
            yield SampleEvent(dict(payload), None, False, late, True, int(chunk.resend_ms[row]))


def sample_events(config: SampleConfig) -> Iterator[SampleEvent]:
    """All events of a run as payloads (fine for thousands; the loader uses the columns)."""
    plan = run_plan(config)
    for chunk in range(config.chunk_count):
        yield from chunk_events(chunk_generate(plan, chunk))
