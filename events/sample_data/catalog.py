"""Vocabularies of the generated shop: event types, countries, devices, funnel rates, the
day/night rhythm's weights, the kinds of bad events, and the deterministic product catalog."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

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
    BadKind("invalid_event_name", 0.05, _ALL, field="event_type"),
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
    # session_id, device_type and country are derived when absent (ADR 0014), so never here.
    PAGE_VIEW: ("user_id", "event_type", "timestamp"),
    PRODUCT_VIEW: ("product_id", "user_id", "timestamp"),
    SEARCH: ("search_query", "user_id"),
    ADD_TO_CART: ("product_id", "quantity", "user_id"),
    REMOVE_FROM_CART: ("product_id", "quantity", "user_id"),
    CHECKOUT_START: ("user_id", "timestamp"),
    PURCHASE: ("order_id", "revenue", "user_id"),
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
