"""One chunk of events drawn as numpy columns: sessions walking the funnel, users coming back,
bad events, duplicates and late arrivals; event ids from a counter-based stream of the seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from events.sample_data.catalog import (
    ADD_TO_CART,
    BAD_KINDS,
    CATEGORIES,
    CHECKOUT_START,
    COUNTRIES,
    DEVICE_CONVERSION,
    DEVICE_WEIGHTS,
    DEVICES,
    EXTERNAL_REFERRERS,
    FUNNEL_RATES,
    PAGE_VIEW,
    PRODUCT_VIEW,
    PURCHASE,
    REMOVE_FROM_CART,
    SEARCH,
    Vocabulary,
    vocabulary,
)
from events.sample_data.plan import RunPlan

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
